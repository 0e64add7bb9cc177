"""A deterministic demo landing folder shaped so docs/domain.md's published figures hold.

Monthly `region_counts` for 2021-01 to 2022-12 and semester `population` for
the 12 regions of docs/domain.md:
- branch Pekalongan in August 2022 at exactly the published participants
  (273,029 / 702,109 / 1,313,212 / 827,100) over the implied populations, so
  coverage is 86.18 / 85.73 / 85.16 / 83.70%;
- Banten in June 2022 at 90.28% coverage, with only Kota Tangerang (UHC
  throughout) and Kota Tangerang Selatan (UHC from March 2022) at >= 95%.
Each region follows a straight coverage path to its anchor month and another
pace after it, chosen so the trajectory statuses cover every case.

For December 2022 it also writes the insurer's employer registry
(`employers_2022-12.csv`) and the manpower office's workforce report
(`workforce_2022-12.csv`): a few dozen companies per region, matched by business
id (NIB), with Kab. Batang at exactly 74.2% of reported workers registered
(docs/domain.md), a few companies with workers but no registration, some average
wages under the 2022 minimum wage (seeds/minimum_wages.csv) and some arrears.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from flows.settings import PROJECT_ROOT

FIRST_MONTH = (2021, 1)
LAST_MONTH = (2022, 12)
SEMESTERS = ("2020-S2", "2021-S1", "2021-S2", "2022-S1", "2022-S2")
POPULATION_GROWTH_PER_SEMESTER = 0.004
BANTEN_COVERAGE_JUNE_2022 = 90.28

SEGMENT_SHARES = {"PBI_APBN": 0.42, "PBI_APBD": 0.15, "PPU_PN": 0.05, "PPU_BU": 0.20, "PBPU": 0.15, "BP": 0.03}
ACTIVE_RATES = {"PBI_APBN": 0.97, "PBI_APBD": 0.93, "PPU_PN": 0.99, "PPU_BU": 0.92, "PBPU": 0.45, "BP": 0.85}


@dataclass(frozen=True)
class DemoRegion:
    code: str
    population_2022_s1: int  # implied by the published coverage where docs/domain.md gives one
    start_pct: float  # coverage in 2021-01
    anchor: tuple[int, int]  # the month whose coverage is fixed
    anchor_pct: float | None  # None: solved so Banten's province coverage is as published
    pace_after_pp: float  # coverage change per month after the anchor month
    anchor_participants: int | None = None  # published participants in the anchor month


AUGUST_2022 = (2022, 8)
JUNE_2022 = (2022, 6)

REGIONS = (
    DemoRegion("3375", 316_812, 82.5, AUGUST_2022, 86.18, 0.30, 273_029),
    DemoRegion("3325", 818_977, 81.0, AUGUST_2022, 85.73, 0.25, 702_109),
    DemoRegion("3327", 1_542_053, 80.2, AUGUST_2022, 85.16, 0.28, 1_313_212),
    DemoRegion("3326", 988_172, 79.0, AUGUST_2022, 83.70, 0.20, 827_100),
    DemoRegion("3671", 1_923_221, 96.0, JUNE_2022, 97.20, 0.15),
    DemoRegion("3674", 1_396_142, 92.3, JUNE_2022, 95.60, 0.12),
    DemoRegion("3601", 1_309_452, 84.5, JUNE_2022, 88.40, 0.30),
    DemoRegion("3602", 1_419_911, 83.0, JUNE_2022, 86.90, -0.05),
    DemoRegion("3603", 3_310_487, 84.0, JUNE_2022, None, 0.20),
    DemoRegion("3604", 1_655_042, 87.0, JUNE_2022, 91.00, 0.20),
    DemoRegion("3672", 443_562, 91.0, JUNE_2022, 93.80, 0.17),
    DemoRegion("3673", 716_743, 89.5, JUNE_2022, 91.20, 0.20),
)


def months() -> list[tuple[int, int]]:
    year, month = FIRST_MONTH
    out = []
    while (year, month) <= LAST_MONTH:
        out.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _index(month: tuple[int, int]) -> int:
    return month[0] * 12 + month[1] - 1


def population(region: DemoRegion, semester: str) -> int:
    offset = SEMESTERS.index(semester) - SEMESTERS.index("2022-S1")
    return round(region.population_2022_s1 * (1 + POPULATION_GROWTH_PER_SEMESTER * offset))


def population_at_month_end(region: DemoRegion, month: tuple[int, int]) -> float:
    """The population between semester figures, as if counted at the month's end.

    Participants grow with it smoothly; coverage is then measured against the
    semester figure in force, as the published indicator is.
    """
    semesters_after_2022_s1 = (_index(month) - _index((2022, 6))) / 6
    return region.population_2022_s1 * (1 + POPULATION_GROWTH_PER_SEMESTER * semesters_after_2022_s1)


def _solved_anchor_pct(regions: tuple[DemoRegion, ...]) -> float:
    """Coverage of the one unfixed Banten region that puts Banten at the published 90.28%."""
    banten = [r for r in regions if r.code.startswith("36")]
    total = sum(population(r, "2022-S1") for r in banten)
    fixed = sum(population(r, "2022-S1") * r.anchor_pct / 100 for r in banten if r.anchor_pct is not None)
    free = next(r for r in banten if r.anchor_pct is None)
    return (BANTEN_COVERAGE_JUNE_2022 / 100 * total - fixed) / population(free, "2022-S1") * 100


def coverage_pct(region: DemoRegion, month: tuple[int, int], anchor_pct: float) -> float:
    start, anchor, now = _index(FIRST_MONTH), _index(region.anchor), _index(month)
    if now <= anchor:
        return region.start_pct + (anchor_pct - region.start_pct) * (now - start) / (anchor - start)
    return anchor_pct + region.pace_after_pp * (now - anchor)


def participants(region: DemoRegion, month: tuple[int, int], anchor_pct: float) -> int:
    if month == region.anchor and region.anchor_participants is not None:
        return region.anchor_participants
    return round(coverage_pct(region, month, anchor_pct) / 100 * population_at_month_end(region, month))


def _split(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Split an integer by weights so the parts add up exactly (largest remainder)."""
    raw = {key: total * weight / sum(weights.values()) for key, weight in weights.items()}
    parts = {key: int(value) for key, value in raw.items()}
    for key in sorted(raw, key=lambda k: raw[k] - parts[k], reverse=True)[: total - sum(parts.values())]:
        parts[key] += 1
    return parts


def region_rows(region: DemoRegion, month: tuple[int, int], anchor_pct: float) -> list[dict]:
    rows = []
    # Small deterministic variation of the segment mix between regions.
    tilt = (int(region.code) % 7 - 3) / 100
    shares = {
        **SEGMENT_SHARES,
        "PBI_APBN": SEGMENT_SHARES["PBI_APBN"] + tilt,
        "PPU_BU": SEGMENT_SHARES["PPU_BU"] - tilt,
    }
    for segment, count in _split(participants(region, month, anchor_pct), shares).items():
        active = round(count * ACTIVE_RATES[segment])
        rows.append({"segment": segment, "status": "ACTIVE", "participants": active})
        rows.append({"segment": segment, "status": "INACTIVE", "participants": count - active})
    return rows


def write_landing(landing: Path) -> list[Path]:
    """Write the demo extracts; return the files written. The same input gives the same bytes."""
    landing.mkdir(parents=True, exist_ok=True)
    solved = _solved_anchor_pct(REGIONS)
    written = []
    for semester in SEMESTERS:
        path = landing / f"population_{semester}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["region_code", "population"])
            for region in REGIONS:
                writer.writerow([region.code, population(region, semester)])
        written.append(path)
    written += write_employer_files(landing)
    for month in months():
        path = landing / f"region_counts_{month[0]}-{month[1]:02d}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["region_code", "segment", "status", "participants"])
            for region in REGIONS:
                anchor_pct = region.anchor_pct if region.anchor_pct is not None else solved
                for row in region_rows(region, month, anchor_pct):
                    writer.writerow([region.code, row["segment"], row["status"], row["participants"]])
        written.append(path)
    return written


# Employers and the workforce report, December 2022 ------------------------------------------------

EMPLOYER_MONTH = "2022-12"
# Share (%) of the workers in the workforce report whose employer registered them; Batang's is docs/domain.md's.
WORKER_REGISTRATION_PCT = {
    "3325": 74.2,
    "3326": 86.0,
    "3327": 81.5,
    "3375": 90.5,
    "3601": 84.0,
    "3602": 79.0,
    "3603": 88.0,
    "3604": 91.5,
    "3671": 96.5,
    "3672": 95.0,
    "3673": 92.0,
    "3674": 97.0,
}
CONTRIBUTION_WAGE_CAP = 12_000_000
NAME_WORDS = (
    "Batik",
    "Tekstil",
    "Garmen",
    "Sinar",
    "Jaya",
    "Makmur",
    "Abadi",
    "Sentosa",
    "Mulia",
    "Karya",
    "Logam",
    "Plastik",
    "Pangan",
    "Kimia",
    "Baja",
    "Kertas",
    "Sepatu",
    "Mebel",
    "Nusantara",
    "Indah",
)


@dataclass(frozen=True)
class DemoCompany:
    employer_id: str | None  # None: never registered with the insurer
    business_id: str
    name: str
    region_code: str
    workers: int | None  # None: not in the workforce report
    registered_workers: int
    average_wage: int
    paid_share: float  # of the contribution due
    months_in_arrears: int


@cache
def _minimum_wages() -> dict[tuple[str, int], float]:
    with (PROJECT_ROOT / "seeds" / "minimum_wages.csv").open(encoding="utf-8") as handle:
        return {
            (row["region_code"], int(row["year"])): float(row["monthly_minimum_wage"]) for row in csv.DictReader(handle)
        }


def minimum_wage(region_code: str, year: int) -> float:
    """The region's UMK from the seed the metrics use, so the demo's under-reporting is under that figure."""
    return _minimum_wages()[(region_code, year)]


def _headcounts(rng: random.Random, count: int) -> list[int]:
    """Company sizes: mostly small and medium, every eighth a large factory; the total a multiple of 1,000
    so a one-decimal registration share is an exact number of workers."""
    sizes = [rng.randint(150, 600) if index % 8 == 5 else rng.randint(8, 60) for index in range(count)]
    largest = sizes.index(max(sizes))
    sizes[largest] += -sum(sizes) % 1000
    return sizes


def _shortfalls(sizes: list[int], missing: int) -> list[int]:
    """Spread `missing` unregistered workers: whole companies first (every tenth, while they fit), then part
    of every third company's workforce, in proportion to size (largest remainder, so the total is exact)."""
    short = [0] * len(sizes)
    for index, size in enumerate(sizes):
        if index % 10 == 7 and size <= missing - sum(short):
            short[index] = size
    partial = [index for index in range(len(sizes)) if index % 3 == 1 and short[index] == 0]
    rest = missing - sum(short)
    capacity = sum(sizes[index] - 1 for index in partial)
    if rest > capacity:
        raise ValueError("demo registration share too low for the companies generated")
    if rest:
        weights = {index: sizes[index] - 1 for index in partial}
        for index, part in _split(rest, weights).items():
            short[index] = part
    return short


def region_companies(region_code: str) -> list[DemoCompany]:
    """The same companies for the same region on every run."""
    rng = random.Random(int(region_code) * 7919)
    umk = minimum_wage(region_code, 2022)
    count = 24 + int(region_code) % 13
    sizes = _headcounts(rng, count)
    missing = sum(sizes) - round(sum(sizes) * WORKER_REGISTRATION_PCT[region_code] / 100)
    short = _shortfalls(sizes, missing)
    companies = []
    for index in range(count + 1):
        # the last one is registered with the insurer but absent from the workforce report
        in_report = index < count
        workers = sizes[index] if in_report else None
        registered = (sizes[index] - short[index]) if in_report else rng.randint(3, 12)
        if index % 7 == 3:
            factor = rng.uniform(0.75, 0.95)  # wages reported under the minimum wage
        elif index % 11 == 5:
            factor = rng.uniform(4.0, 6.0)  # well-paid staff: the contribution base is capped
        else:
            factor = rng.uniform(1.05, 2.2)
        in_arrears = index % 6 == 4 and registered > 0
        words = rng.sample(NAME_WORDS, 2)
        companies.append(
            DemoCompany(
                employer_id=f"{region_code}{index:04d}" if registered > 0 else None,
                business_id=f"9{region_code}{index:08d}",
                name=f"{'CV' if index % 4 == 0 else 'PT'} {words[0]} {words[1]}",
                region_code=region_code,
                workers=workers,
                registered_workers=registered,
                average_wage=round(umk * factor),
                paid_share=rng.choice((0.0, 0.5)) if in_arrears else 1.0,
                months_in_arrears=rng.randint(1, 4) if in_arrears else 0,
            )
        )
    return companies


def employer_row(company: DemoCompany, umk: float) -> list:
    """The insurer's row: the wage total its workers report and the contribution billed on it."""
    wage_total = company.registered_workers * company.average_wage
    base = company.registered_workers * min(max(company.average_wage, umk), CONTRIBUTION_WAGE_CAP)
    due = round(base * 0.05)
    return [
        company.employer_id,
        company.business_id,
        company.name,
        company.region_code,
        company.registered_workers,
        wage_total,
        due,
        round(due * company.paid_share),
        company.months_in_arrears,
    ]


def write_employer_files(landing: Path) -> list[Path]:
    """Write the December 2022 employer registry and workforce report; return the two files."""
    landing.mkdir(parents=True, exist_ok=True)
    employers = landing / f"employers_{EMPLOYER_MONTH}.csv"
    workforce = landing / f"workforce_{EMPLOYER_MONTH}.csv"
    with (
        employers.open("w", newline="", encoding="utf-8") as registry,
        workforce.open("w", newline="", encoding="utf-8") as report,
    ):
        registry_writer = csv.writer(registry, lineterminator="\n")
        report_writer = csv.writer(report, lineterminator="\n")
        registry_writer.writerow(
            [
                "employer_id",
                "business_id",
                "name",
                "region_code",
                "registered_workers",
                "reported_wage_total",
                "contribution_due",
                "contribution_paid",
                "months_in_arrears",
            ]
        )
        report_writer.writerow(["business_id", "name", "region_code", "workers"])
        for region in REGIONS:
            umk = minimum_wage(region.code, 2022)
            for company in region_companies(region.code):
                if company.employer_id is not None:
                    registry_writer.writerow(employer_row(company, umk))
                if company.workers is not None:
                    # the manpower office spells names its own way; matching is by NIB
                    report_writer.writerow(
                        [company.business_id, company.name.upper(), company.region_code, company.workers]
                    )
    return [employers, workforce]
