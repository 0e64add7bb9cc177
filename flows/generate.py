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

The plan of regions is flows/generate_regions.py, the participants flows/generate_people.py, the employers
and the workforce report flows/generate_companies.py; this module checks the arguments and writes the files.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import duckdb

from flows.errors import ConfigError
from flows.generate_companies import COMPANIES, WAGE_CAP, employer_id, workforce_query
from flows.generate_people import PEOPLE, card_no
from flows.generate_regions import SEGMENT_SHARES, plan_regions
from flows.settings import PROJECT_ROOT

__all__ = ["FORMATS", "MAX_PARTICIPANTS", "SEGMENT_SHARES", "generate", "semester_for"]

FORMATS = {"csv": "csv", "csv.gz": "csv.gz", "parquet": "parquet"}
MAX_PARTICIPANTS = 1_000_000_000  # the card number permutation needs i * multiplier to fit in a bigint


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
            plan_regions(con, seeds_dir / "regions.csv", regions, seed, participants, employers)
            return _write(con, out_dir, participants, employers, workforce, month, format)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


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
            f"select {card_no('i')} as card_no, nik, region_code, segment, status, "
            f"{employer_id('employer_number')} as employer_id, wage from people",
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
    con.execute(COMPANIES)
    if employers:
        copy(
            "employers",
            month,
            "select employer_id, business_id, name, region_code, registered_workers, reported_wage_total, "
            "contribution_due, case when months_in_arrears = 0 then contribution_due else 0 end::decimal(20, 2) "
            "as contribution_paid, months_in_arrears from companies order by company",
        )
    if workforce:
        regions = con.execute("select count(*) from region_plan").fetchone()[0]
        copy("workforce", month, workforce_query(workforce, employers, regions))
    return written
