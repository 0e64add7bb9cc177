"""The synthetic employers and the manpower office's companies (flows/generate.py).

Employers (`companies`, built from the participants' counts): each registers exactly the workers
and wages of the participants who work there; contributions are 5% of the capped wage base, and
about 15% are in arrears. The workforce report: about 70% of its companies are registered employers
(same NIB), most with more workers than they registered; the rest have an NIB the insurer does not know.
"""

from __future__ import annotations

from flows.generate_regions import uniform

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


def employer_id(number: str) -> str:
    return f"lpad(((({number}) * 48271 + 12345) % 100000000)::varchar, 8, '0')"


def business_id(number: str) -> str:
    return f"('9' || lpad(((({number}) * 2654435761 + 7) % 1000000000000)::varchar, 12, '0'))"


def company_name(number: str) -> str:
    words = "[" + ", ".join(f"'{word}'" for word in COMPANY_WORDS) + "]"
    count = len(COMPANY_WORDS)
    return (
        f"(['PT', 'PT', 'PT', 'CV', 'UD'][(1 + hash({number}, getvariable('seed'), 'form') % 5)::bigint] || ' ' || "
        f"{words}[(1 + hash({number}, getvariable('seed'), 'word1') % {count})::bigint] || ' ' || "
        f"{words}[(1 + hash({number}, getvariable('seed'), 'word2') % {count})::bigint] || ' ' || ({number} % 997 + 1))"
    )


# One row per employer of the registry, from the participants' counts (`people_counts`).
COMPANIES = f"""
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
    {employer_id("company")} as employer_id,
    {business_id("company")} as business_id,
    {company_name("company")} as name,
    region_code,
    coalesce(employed.workers, 0) as registered_workers,
    coalesce(employed.wages, 0)::decimal(20, 2) as reported_wage_total,
    round(coalesce(employed.base, 0) * {CONTRIBUTION_RATE}, 2)::decimal(20, 2) as contribution_due,
    case when {uniform("arrears", "company")} < 0.85 then 0
        else 1 + hash(company, getvariable('seed'), 'months') % 6 end as months_in_arrears
from numbered
left join employed on employed.employer_number = numbered.company
"""


def workforce_query(workforce: int, employers: int, regions: int) -> str:
    """The workforce report's rows: the first `matched` are registered employers, the rest unknown NIBs
    spread over the `regions` regions of the plan."""
    matched = min(employers, round(workforce * WORKFORCE_MATCHED_SHARE))
    return f"""
with listed as (select range as w from range({workforce})),
matched as (
    select w, companies.* from listed
    inner join companies on companies.company = (w * {employers}) // {max(matched, 1)}
    where w < {matched}
)
select business_id, upper(name) as name, region_code,
    -- most registered companies have workers they did not register
    registered_workers + case when {uniform("hidden", "w")} < 0.45
        then 1 + floor((registered_workers + 5) * {uniform("hidden_share", "w")})::bigint
        when registered_workers = 0 then 1 + hash(w, getvariable('seed'), 'small') % 20
        else 0 end as workers
from matched
union all
select {business_id(f"{employers} + w")}, {company_name(f"{employers} + w")}, region_plan.region_code,
    1 + hash(w, getvariable('seed'), 'size') % 150
from listed
inner join region_plan
    on region_plan.region_number = hash(w, getvariable('seed'), 'region') % {regions}
where w >= {matched}
order by 1
    """
