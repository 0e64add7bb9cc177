"""The strong hand-written peer (issue 15): what a team that knows polars would write instead of jkn.

One lazy polars query over the same participants file, run by polars' streaming engine: the row
rules ingest enforces (`flows/ingest/rules.py`: card number of 13 digits, a valid NIK with a known
province and a possible birth day and month, a known region code written `3326` or `33.26`, a known
segment and status under their aliases, an employer for PPU_BU, a wage that is a number and not
negative), the uniqueness checks (a card number once in the file, a person once per month), and
coverage by region (good rows per region over the semester's population). No pseudonymisation,
no database, nothing published: it is the least the same checks and figures cost in polars.

Imported only by the peer's own process (`bench.workloads.peer`); polars is a test/bench extra. The
segment and status aliases come from `flows.ingest.kinds` through the arguments (`bench.run`), so
the peer's process holds polars alone, not DuckDB.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

IDENTIFIERS = ("card_no", "nik", "region_code", "segment", "status", "employer_id", "wage")


def _canonical(column: str, aliases: dict[str, str]):
    """The canonical value of an alias (as ingest's `_lookup`), null for an unknown value."""
    import polars as pl

    normalised = pl.col(column).str.to_uppercase().str.replace_all(" ", "_").str.replace_all("-", "_")
    return normalised.replace_strict(aliases, default=None, return_dtype=pl.String)


def checked_rows(
    participants_csv: str, region_codes: list[str], segment_aliases: dict[str, str], status_aliases: dict[str, str]
):
    """The file as a lazy frame with `is_bad` (any row rule fails) and the normalised columns."""
    import polars as pl

    provinces = sorted({code[:2] for code in region_codes})
    nik = pl.col("nik")
    day = nik.str.slice(6, 2).cast(pl.Int32, strict=False)
    month = nik.str.slice(8, 2).cast(pl.Int32, strict=False)
    region = pl.col("region_code").str.replace_all(r"[.\s]", "")
    wage = pl.col("wage").cast(pl.Float64, strict=False)
    frame = pl.scan_csv(participants_csv, schema_overrides={name: pl.String for name in IDENTIFIERS})
    frame = frame.with_columns(
        region.alias("region"),
        _canonical("segment", segment_aliases).alias("segment_canonical"),
        _canonical("status", status_aliases).alias("status_canonical"),
    )
    nik_ok = (
        nik.str.contains(r"^[0-9]{16}$")
        & nik.str.slice(0, 2).is_in(provinces)
        & (day.is_between(1, 31) | day.is_between(41, 71))
        & month.is_between(1, 12)
    )
    good = (
        pl.col("card_no").str.contains(r"^[0-9]{13}$")
        & nik_ok
        & pl.col("region").is_in(region_codes)
        & pl.col("segment_canonical").is_not_null()
        & pl.col("status_canonical").is_not_null()
        & ((pl.col("segment_canonical") != "PPU_BU") | (pl.col("employer_id").str.strip_chars().str.len_chars() > 0))
        & (pl.col("wage").is_null() | (wage.is_not_null() & (wage >= 0)))
    )
    return frame.with_columns(is_bad=~good.fill_null(False))


def run(
    participants_csv: str,
    population_csv: str,
    regions_csv: str,
    segment_aliases: dict[str, str],
    status_aliases: dict[str, str],
) -> dict:
    import polars as pl

    steps = {}
    started = time.perf_counter()
    with Path(regions_csv).open(encoding="utf-8", newline="") as handle:
        region_codes = sorted(row["region_code"] for row in csv.DictReader(handle))
    rows = checked_rows(participants_csv, region_codes, segment_aliases, status_aliases)
    good = rows.filter(~pl.col("is_bad"))
    totals = rows.select(rows=pl.len(), bad_rows=pl.col("is_bad").sum())
    # Ingest keeps the first row of a card number and rejects the others; a person with two
    # cards is a warning of the checks (counted, not rejected).
    repeated_cards = good.select(repeated_card_rows=pl.len() - pl.col("card_no").n_unique())
    several_cards = (
        good.group_by("nik").agg(cards=pl.len()).filter(pl.col("cards") > 1).select(people_with_several_cards=pl.len())
    )
    counts = (
        good.group_by("region")
        .agg(participants=pl.len(), active_participants=(pl.col("status_canonical") == "ACTIVE").sum())
        .rename({"region": "region_code"})
    )
    population = pl.scan_csv(population_csv, schema_overrides={"region_code": pl.String})
    coverage = (
        population.join(counts, on="region_code", how="left")
        .with_columns(pl.col("participants").fill_null(0), pl.col("active_participants").fill_null(0))
        .with_columns(coverage_pct=pl.col("participants") / pl.col("population") * 100)
    )
    totals, repeated_cards, several_cards, coverage = pl.collect_all(
        [totals, repeated_cards, several_cards, coverage], engine="streaming"
    )
    steps["check_and_coverage"] = time.perf_counter() - started
    national = coverage.select(pl.col("participants").sum() / pl.col("population").sum() * 100).item()
    return {
        "steps": steps,
        "engine": f"polars {pl.__version__} (lazy, streaming engine)",
        "rows": totals["rows"].item(),
        "bad_rows": totals["bad_rows"].item(),
        "repeated_card_rows": repeated_cards["repeated_card_rows"].item(),
        "people_with_several_cards": several_cards["people_with_several_cards"].item(),
        "regions": coverage.height,
        "national_coverage_pct": float(national),
    }
