"""The synthetic participants (flows/generate.py): the view `people`, one row per person of
`person_numbers`, with a valid NIK, a segment and status drawn from the region's mix, an employer of the
region for wage workers in companies, and a wage (some below the regional minimum wage).

Two hashes per person, cut into bit fields, give every draw; nothing is held per row in Python.
"""

from __future__ import annotations

# Active rates per segment; PBPU's is drawn per region (flows/generate_regions.py).
ACTIVE_RATES = {"PBI_APBN": 0.97, "PBI_APBD": 0.93, "PPU_PN": 0.99, "PPU_BU": 0.92, "BP": 0.85}


def card_no(number: str) -> str:
    # 000 + 10 digits from a bijection of [0, 9 * 10^9) (the multiplier is coprime with it),
    # shifted to [10^9, 10^10): unique, not sequential, always 13 digits with leading zeros.
    return f"('000' || (1000000000 + (({number}) * 2862933557 + 1442695041) % 9000000000)::varchar)"


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
