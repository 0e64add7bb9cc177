"""Which regions a synthetic extract covers and how each one differs (flows/generate.py): its size, segment
mix, active rate of informal workers, minimum wage, and the range of person and company numbers it holds.

Every draw hashes the region code with the seed, so the same seed gives every region the same size and mix
in every month generated from it.
"""

from __future__ import annotations

from pathlib import Path

from flows.errors import ConfigError

# Base segment mix (shares of participants); each region varies around it.
SEGMENT_SHARES = {"PBI_APBN": 0.40, "PBI_APBD": 0.14, "PPU_PN": 0.06, "PPU_BU": 0.18, "PBPU": 0.18, "BP": 0.04}


def uniform(label: str, *keys: str) -> str:
    """SQL: a uniform number in [0, 1) from the keys, the seed and a label (one stream per use)."""
    return f"((hash({', '.join(keys)}, getvariable('seed'), '{label}') % 1000000) / 1000000.0)"


def plan_regions(con, regions_csv: Path, regions, seed: int, participants: int, employers: int) -> None:
    """One row per chosen region: its size, segment mix, active rate, minimum wage, and the range
    of participant and employer numbers it holds."""
    con.execute(
        "create table region_seed as select region_code, kind from read_csv(?, header = true, "
        "columns = {'region_code': 'varchar', 'region_name': 'varchar', 'kind': 'varchar', "
        "'province_code': 'varchar', 'province_name': 'varchar', 'branch_office': 'varchar'})",
        [str(regions_csv)],
    )
    if isinstance(regions, str) and regions != "all":
        regions = int(regions) if regions.isdigit() else [code.strip() for code in regions.split(",") if code.strip()]
    if isinstance(regions, int):
        if regions < 1:
            raise ConfigError("regions must be 'all', a number of regions (at least 1), or region codes")
        con.execute(
            "create table chosen as select * from region_seed order by hash(region_code, getvariable('seed')) limit ?",
            [regions],
        )
    elif regions == "all":
        con.execute("create table chosen as select * from region_seed")
    else:
        codes = [code.replace(".", "") for code in regions]
        unknown = sorted(set(codes) - {row[0] for row in con.execute("select region_code from region_seed").fetchall()})
        if unknown:
            raise ConfigError(f"unknown region code(s): {', '.join(unknown)} (see seeds/regions.csv)")
        con.execute("create table chosen as select * from region_seed where list_contains(?, region_code)", [codes])
    shares = dict(SEGMENT_SHARES)
    if employers == 0:  # nobody to work for: wage workers in companies become informal workers
        shares["PBPU"] += shares.pop("PPU_BU")
        shares["PPU_BU"] = 0.0
    con.execute(
        f"""
        create table region_plan as
        with drawn as (
            select
                region_code,
                kind,
                0.2 + 3.0 * pow({uniform("size", "region_code")}, 2) as weight,
                0.78 + 0.21 * {uniform("coverage", "region_code")} as coverage,
                (case when kind = 'KOTA' then 0.10 else 0 end) as city_shift,
                ({uniform("tilt", "region_code")} - 0.5) * 0.10 as tilt,
                0.40 + 0.30 * {uniform("pbpu_active", "region_code")} as pbpu_active_rate,
                1900000 + round(3300000 * {uniform("umk", "region_code")}, -3) as minimum_wage
            from chosen
        ),
        shared as (
            select
                *,
                {shares["PBI_APBN"]} - city_shift + tilt as s_pbi_apbn,
                {shares["PBI_APBD"]} as s_pbi_apbd,
                {shares["PPU_PN"]} as s_ppu_pn,
                case when {shares["PPU_BU"]} > 0 then {shares["PPU_BU"]} + city_shift else 0 end as s_ppu_bu,
                {shares["PBPU"]} - tilt as s_pbpu
            from drawn
        ),
        {_apportion("people", participants)},
        {_apportion("companies", employers)}
        select
            shared.*,
            s_pbi_apbn as c_pbi_apbn,
            s_pbi_apbn + s_pbi_apbd as c_pbi_apbd,
            s_pbi_apbn + s_pbi_apbd + s_ppu_pn as c_ppu_pn,
            s_pbi_apbn + s_pbi_apbd + s_ppu_pn + s_ppu_bu as c_ppu_bu,
            s_pbi_apbn + s_pbi_apbd + s_ppu_pn + s_ppu_bu + s_pbpu as c_pbpu,
            people.n as people,
            people.first as first_person,
            companies.n as companies,
            companies.first as first_company,
            (row_number() over (order by shared.region_code) - 1)::bigint as region_number
        from shared
        inner join people using (region_code)
        inner join companies using (region_code)
        """
    )


def _apportion(name: str, total: int) -> str:
    """A CTE `name` splitting `total` over the regions by weight (largest remainder, exact sum),
    with the first number of each region's range."""
    return f"""
        {name}_quota as (
            select region_code, {total} * weight / sum(weight) over () as quota from shared
        ),
        {name}_floor as (
            select region_code, quota, floor(quota)::bigint as base from {name}_quota
        ),
        {name}_counted as (
            select
                region_code,
                base + case when row_number() over (order by quota - base desc, region_code)
                    <= {total} - sum(base) over () then 1 else 0 end as n
            from {name}_floor
        ),
        {name} as (
            select region_code, n::bigint as n, (sum(n) over (order by region_code) - n)::bigint as first
            from {name}_counted
        )"""
