"""A deterministic demo landing folder shaped so DOMAIN.md's published figures hold.

Monthly `region_counts` for 2021-01 to 2022-12 and semester `population` for
the 12 regions of DOMAIN.md:
- branch Pekalongan in August 2022 at exactly the published participants
  (273,029 / 702,109 / 1,313,212 / 827,100) over the implied populations, so
  coverage is 86.18 / 85.73 / 85.16 / 83.70%;
- Banten in June 2022 at 90.28% coverage, with only Kota Tangerang (UHC
  throughout) and Kota Tangerang Selatan (UHC from March 2022) at >= 95%.
Each region follows a straight coverage path to its anchor month and another
pace after it, chosen so the trajectory statuses cover every case.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

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
    population_2022_s1: int  # implied by the published coverage where DOMAIN.md gives one
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
    shares = {**SEGMENT_SHARES, "PBI_APBN": SEGMENT_SHARES["PBI_APBN"] + tilt, "PPU_BU": SEGMENT_SHARES["PPU_BU"] - tilt}
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
