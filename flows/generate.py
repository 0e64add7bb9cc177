"""Synthetic extracts of any size, for tests and benchmarks, generated set-wise in DuckDB.

`generate(out_dir, participants=..., employers=..., workforce=..., regions=..., month=..., seed=...)`
writes one file per kind for one month, named as the landing folder expects:

- `participants_<month>`: one row per person; each region's segment mix and active rate
  differ (cities have more wage workers, poorer regions more PBI; PBPU is the segment in
  arrears); valid NIKs (the region's code, a district, a birth date with day + 40 for
  women, a serial; unique within a region of up to ~990,000 people) and unique 13-digit
  card numbers with leading zeros; `PPU_BU` people work for an employer of their region
  and have a wage, some of it below the regional minimum wage.
- `region_counts_<month>`: exactly the participants counted by region x segment x status.
- `population_<semester>`: the population figure the month is measured against
  (`YYYY-S1` from June, `YYYY-S2` in December, else the previous year's S2), every region
  a little above its participants (coverage 78-99%).
- `employers_<month>`: `registered_workers` and `reported_wage_total` are exactly those of
  the participants who work there; contributions are 5% of the capped wage base; about
  15% are in arrears.
- `workforce_<month>`: the manpower office's report. About 70% of its companies are
  registered employers (same NIB), most with more workers than they registered; the rest
  have an NIB the insurer does not know (unregistered companies).

The seed fixes each region's size, mix and population; for a series of months keep the seed and
let `participants` grow, so every month is measured against a consistent population.

Rows are produced by `unnest(range(n))` per region and typed by hashing the row number
with the seed, so nothing is held per row in Python and 10-30 million participants stream
straight to the file through DuckDB's COPY. The same arguments give the same bytes.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import duckdb

from flows.errors import ConfigError
from flows.settings import PROJECT_ROOT

FORMATS = {"csv": "csv", "csv.gz": "csv.gz", "parquet": "parquet"}
MAX_PARTICIPANTS = 1_000_000_000  # the card number permutation needs i * multiplier to fit in a bigint

# Base segment mix (shares of participants) and active rates; each region varies around them.
SEGMENT_SHARES = {"PBI_APBN": 0.40, "PBI_APBD": 0.14, "PPU_PN": 0.06, "PPU_BU": 0.18, "PBPU": 0.18, "BP": 0.04}
ACTIVE_RATES = {"PBI_APBN": 0.97, "PBI_APBD": 0.93, "PPU_PN": 0.99, "PPU_BU": 0.92, "BP": 0.85}  # PBPU per region
COMPANY_WORDS = (
    "Sinar",
    "Maju",
    "Jaya",
    "Makmur",
    "Sentosa",
    "Abadi",
    "Karya",
    "Mandiri",
    "Sejahtera",
    "Bersama",
    "Utama",
    "Nusantara",
    "Mulia",
    "Prima",
    "Sumber",
    "Agung",
    "Cahaya",
    "Harapan",
    "Indah",
    "Lestari",
)
WAGE_CAP = 12_000_000  # contribution base cap (docs/domain.md)
CONTRIBUTION_RATE = 0.05
WORKFORCE_MATCHED_SHARE = 0.7  # share of workforce companies that are registered employers


def semester_for(month: str) -> str:
    """The population semester a month is measured against (its as-of date is the latest not after the month)."""
    year, number = (int(part) for part in month.split("-"))
    if number == 12:
        return f"{year}-S2"
    if number >= 6:
        return f"{year}-S1"
    return f"{year - 1}-S2"


def generate(
    out_dir: Path,
    participants: int = 10_000,
    employers: int = 200,
    workforce: int = 250,
    regions: str | int | Sequence[str] = "all",
    month: str = "2024-06",
    seed: int = 0,
    format: str = "csv",
    seeds_dir: Path = PROJECT_ROOT / "seeds",
    threads: int | None = None,
    memory_limit: str = "2GB",
) -> list[Path]:
    """Write synthetic extracts for `month` into `out_dir`; return the files written.

    regions: "all", a number of regions (chosen by the seed), or a list of region codes.
    format: "csv", "csv.gz" or "parquet". A kind whose count is 0 is not written
    (participants 0: no participants, region_counts or population file).
    """
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise ConfigError(f"month {month!r}: expected YYYY-MM")
    if format not in FORMATS:
        raise ConfigError(f"format {format!r}: expected one of {', '.join(FORMATS)}")
    for name, count in (("participants", participants), ("employers", employers), ("workforce", workforce)):
        if count < 0 or (name == "participants" and count > MAX_PARTICIPANTS):
            raise ConfigError(f"{name} must be between 0 and {MAX_PARTICIPANTS:,}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    temp_dir = Path(tempfile.mkdtemp(prefix=".generate-", dir=out_dir))
    config: dict[str, str | int] = {"memory_limit": memory_limit, "temp_directory": str(temp_dir)}
    if threads:
        config["threads"] = threads
    try:
        with duckdb.connect(config=config) as con:
            con.execute("set enable_progress_bar = false")  # a benchmark's log is no place for a progress bar
            con.execute("set variable seed = ?", [seed])
            con.execute("set variable year = ?", [int(month[:4])])
            _plan_regions(con, seeds_dir / "regions.csv", regions, seed, participants, employers)
            return _write(con, out_dir, participants, employers, workforce, month, format)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def _uniform(label: str, *keys: str) -> str:
    """SQL: a uniform number in [0, 1) from the keys, the seed and a label (one stream per use)."""
    return f"((hash({', '.join(keys)}, getvariable('seed'), '{label}') % 1000000) / 1000000.0)"


def _plan_regions(con, regions_csv: Path, regions, seed: int, participants: int, employers: int) -> None:
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
                0.2 + 3.0 * pow({_uniform("size", "region_code")}, 2) as weight,
                0.78 + 0.21 * {_uniform("coverage", "region_code")} as coverage,
                (case when kind = 'KOTA' then 0.10 else 0 end) as city_shift,
                ({_uniform("tilt", "region_code")} - 0.5) * 0.10 as tilt,
                0.40 + 0.30 * {_uniform("pbpu_active", "region_code")} as pbpu_active_rate,
                1900000 + round(3300000 * {_uniform("umk", "region_code")}, -3) as minimum_wage
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


def _card_no(number: str) -> str:
    # 000 + 10 digits from a bijection of [0, 9 * 10^9) (the multiplier is coprime with it),
    # shifted to [10^9, 10^10): unique, not sequential, always 13 digits with leading zeros.
    return f"('000' || (1000000000 + (({number}) * 2862933557 + 1442695041) % 9000000000)::varchar)"


def _employer_id(number: str) -> str:
    return f"lpad(((({number}) * 48271 + 12345) % 100000000)::varchar, 8, '0')"


def _business_id(number: str) -> str:
    return f"('9' || lpad(((({number}) * 2654435761 + 7) % 1000000000000)::varchar, 12, '0'))"


def _company_name(number: str) -> str:
    words = "[" + ", ".join(f"'{word}'" for word in COMPANY_WORDS) + "]"
    count = len(COMPANY_WORDS)
    return (
        f"(['PT', 'PT', 'PT', 'CV', 'UD'][(1 + hash({number}, getvariable('seed'), 'form') % 5)::bigint] || ' ' || "
        f"{words}[(1 + hash({number}, getvariable('seed'), 'word1') % {count})::bigint] || ' ' || "
        f"{words}[(1 + hash({number}, getvariable('seed'), 'word2') % {count})::bigint] || ' ' || ({number} % 997 + 1))"
    )


PEOPLE = f"""
create view people as
with numbered as (
    select region_plan.*, person_number - first_person as j
    from person_numbers inner join region_plan using (region_number)
),
drawn as (
    -- two hashes per person, cut into independent bit fields: far cheaper than one hash per draw
    select
        *,
        first_person + j as i,
        -- as bigint: mixing the unsigned hash with signed numbers would make DuckDB use slow 128-bit integers
        (hash(first_person + j, getvariable('seed')) >> 1)::bigint as h1,
        (hash(first_person + j, getvariable('seed') + 7919) >> 1)::bigint as h2
    from numbered
),
typed as (
    select
        *,
        ((h1 >> 20) & 1048575) / 1048576.0 as u_status,
        ((h1 >> 40) & 1048575) / 1048576.0 as u_wage,
        -- born 1 to 85 years before the month's year, so never after the month
        (getvariable('year') - 1 - h2 % 85) % 100 as birth_yy,
        1 + (h2 >> 8) % 12 as birth_month,
        1 + (h2 >> 16) % 28 + case when (h2 >> 24) & 1 = 1 then 40 else 0 end as nik_day,
        h2 >> 32 as h_employer,
        case
            when (h1 & 1048575) / 1048576.0 < c_pbi_apbn then 'PBI_APBN'
            when (h1 & 1048575) / 1048576.0 < c_pbi_apbd then 'PBI_APBD'
            when (h1 & 1048575) / 1048576.0 < c_ppu_pn then 'PPU_PN'
            when (h1 & 1048575) / 1048576.0 < c_ppu_bu then 'PPU_BU'
            when (h1 & 1048575) / 1048576.0 < c_pbpu then 'PBPU'
            else 'BP'
        end as segment
    from drawn
)
select
    i,
    -- region of issue (>= 1101, so 16 digits), district, birth day (+40 for women), month, year, serial
    (
        region_code::bigint * 1000000000000 + (j % 99 + 1) * 10000000000 + nik_day * 100000000
        + birth_month * 1000000 + birth_yy * 10000 + (j // 99) % 9999 + 1
    )::varchar as nik,
    region_code,
    segment,
    case when u_status < case segment
        when 'PBI_APBN' then {ACTIVE_RATES["PBI_APBN"]} when 'PBI_APBD' then {ACTIVE_RATES["PBI_APBD"]}
        when 'PPU_PN' then {ACTIVE_RATES["PPU_PN"]} when 'PPU_BU' then {ACTIVE_RATES["PPU_BU"]}
        when 'BP' then {ACTIVE_RATES["BP"]} else pbpu_active_rate end
        then 'ACTIVE' else 'INACTIVE' end as status,
    case when segment = 'PPU_BU' then
        case when companies > 0 then first_company + h_employer % companies
            else h_employer % getvariable('employers') end
    end as employer_number,
    case when segment in ('PPU_PN', 'PPU_BU') then
        -- about 8% are reported below the regional minimum wage (under-reporting); whole thousands
        round(minimum_wage * case when u_wage < 0.08 then 0.7 + 3 * u_wage else 1 + 2.5 * (u_wage - 0.08) end, -3)
        ::bigint
    end as wage,
    minimum_wage
from typed
"""


def _write(
    con, out_dir: Path, participants: int, employers: int, workforce: int, month: str, format: str
) -> list[Path]:
    con.execute("set variable employers = ?", [max(employers, 1)])
    # One row per person number, as a table: scanning it runs on every thread, in row-group sized
    # batches that COPY writes in order. Unnesting per region inside the view would make the
    # whole generation one batch on one thread, buffered in memory.
    con.execute(
        "create table person_numbers as "
        "select region_number, first_person + unnest(range(people)) as person_number from region_plan "
        "order by person_number"
    )
    con.execute(PEOPLE)
    written = []

    def copy(kind: str, period: str, query: str) -> None:
        path = out_dir / f"{kind}_{period}.{FORMATS[format]}"
        options = {
            "csv": "format csv, header",
            "csv.gz": "format csv, header, compression gzip",
            "parquet": "format parquet",
        }[format]
        con.execute(f"copy ({query}) to '{str(path).replace(chr(39), chr(39) * 2)}' ({options})")
        written.append(path)

    # Aggregates of the participants in one pass; every other file is built from them.
    con.execute(
        f"""
        create table people_counts as
        select region_code, segment, status, employer_number, count(*) as participants, sum(wage) as wages,
            sum(least(greatest(wage, minimum_wage), {WAGE_CAP})) as wage_base
        from people group by all
        """
    )
    if participants:
        copy(
            "participants",
            month,
            f"select {_card_no('i')} as card_no, nik, region_code, segment, status, "
            f"{_employer_id('employer_number')} as employer_id, wage from people",
        )
        copy(
            "region_counts",
            month,
            "select region_code, segment, status, sum(participants)::bigint as participants "
            "from people_counts group by all order by all",
        )
        copy(
            "population",
            semester_for(month),
            "select region_code, greatest(ceil(people / coverage)::bigint, people, 1) as population "
            "from region_plan order by region_code",
        )
    con.execute(
        f"""
        create table companies as
        with numbered as (
            select region_code, first_company + unnest(range(companies)) as company from region_plan
        ),
        employed as (
            select employer_number, sum(participants)::bigint as workers, sum(wages) as wages, sum(wage_base) as base
            from people_counts where segment = 'PPU_BU' group by employer_number
        )
        select
            company,
            {_employer_id("company")} as employer_id,
            {_business_id("company")} as business_id,
            {_company_name("company")} as name,
            region_code,
            coalesce(employed.workers, 0) as registered_workers,
            coalesce(employed.wages, 0)::decimal(20, 2) as reported_wage_total,
            round(coalesce(employed.base, 0) * {CONTRIBUTION_RATE}, 2)::decimal(20, 2) as contribution_due,
            case when {_uniform("arrears", "company")} < 0.85 then 0
                else 1 + hash(company, getvariable('seed'), 'months') % 6 end as months_in_arrears
        from numbered
        left join employed on employed.employer_number = numbered.company
        """
    )
    if employers:
        copy(
            "employers",
            month,
            "select employer_id, business_id, name, region_code, registered_workers, reported_wage_total, "
            "contribution_due, case when months_in_arrears = 0 then contribution_due else 0 end::decimal(20, 2) "
            "as contribution_paid, months_in_arrears from companies order by company",
        )
    if workforce:
        matched = min(employers, round(workforce * WORKFORCE_MATCHED_SHARE))
        regions = con.execute("select count(*) from region_plan").fetchone()[0]
        copy(
            "workforce",
            month,
            f"""
            with listed as (select range as w from range({workforce})),
            matched as (
                select w, companies.* from listed
                inner join companies on companies.company = (w * {employers}) // {max(matched, 1)}
                where w < {matched}
            )
            select business_id, upper(name) as name, region_code,
                -- most registered companies have workers they did not register
                registered_workers + case when {_uniform("hidden", "w")} < 0.45
                    then 1 + floor((registered_workers + 5) * {_uniform("hidden_share", "w")})::bigint
                    when registered_workers = 0 then 1 + hash(w, getvariable('seed'), 'small') % 20
                    else 0 end as workers
            from matched
            union all
            select {_business_id(f"{employers} + w")}, {_company_name(f"{employers} + w")}, region_plan.region_code,
                1 + hash(w, getvariable('seed'), 'size') % 150
            from listed
            inner join region_plan
                on region_plan.region_number = hash(w, getvariable('seed'), 'region') % {regions}
            where w >= {matched}
            order by 1
        """,
        )
    return written
