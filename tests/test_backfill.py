"""A backfill rebuilds its window month by month (flows/backfill.py), and gives a full rebuild's marts.

Three generated months are loaded and published; then the UHC rule and the targets change (a
seed changes every month's `is_uhc` and trajectory), and months are backfilled. The window's
rows must equal a full rebuild's, EXCEPT ALL both ways on every mart; the months outside it keep
their rows (which a full rebuild would have changed: the history really was not rebuilt).
"""

from __future__ import annotations

import csv
import shutil
from datetime import date

from flows import database, generate, ingest, metrics
from flows.backfill import build_window
from flows.settings import PROJECT_ROOT
from tests.conftest import TEST_KEY

MONTHS = ("2022-06", "2022-07", "2022-08")
JULY, AUGUST, JUNE = date(2022, 7, 1), date(2022, 8, 1), date(2022, 6, 1)


def _load_three_months(con, tmp_path) -> None:
    landing = tmp_path / "landing"
    for number, month in enumerate(MONTHS):
        generate.generate(
            landing / month,
            participants=300,
            employers=6,
            workforce=8,
            regions="3171,3325,3326",
            month=month,
            seed=number + 1,
        )
    files = sorted(path for path in landing.rglob("*") if path.is_file())
    results = ingest.ingest_files(con, files, 100.0, pseudonym_key=TEST_KEY)
    assert {result.status for result in results} == {"staged"}
    metrics.build(con)
    metrics.publish(con)


def _changed_seeds(tmp_path):
    """The seeds with a UHC rule and national targets that change every month's marts."""
    seeds = tmp_path / "seeds"
    shutil.copytree(PROJECT_ROOT / "seeds", seeds)
    for name, column, value in (("uhc_rules.csv", "min_coverage_pct", "1"), ("targets.csv", "target_pct", "99.5")):
        with (seeds / name).open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            row[column] = value
        with (seeds / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    return seeds


def _differences(con, left: str, right: str, where: str = "true") -> int:
    """Rows in one relation and not the other, EXCEPT ALL both ways."""
    return con.execute(
        f"select (select count(*) from (select * from {left} where {where} except all "
        f"select * from {right} where {where})) + (select count(*) from (select * from {right} where {where} "
        f"except all select * from {left} where {where}))"
    ).fetchone()[0]


def _keep(con, prefix: str) -> None:
    for name in metrics.mart_names():
        con.execute(f"create or replace table main.{prefix}_{name} as select * from mart.{name}")


def test_a_backfill_rebuilds_its_months_one_by_one_and_gives_a_full_rebuilds_marts(con, tmp_path):
    _load_three_months(con, tmp_path)
    _keep(con, "before")
    database.load_seeds(con, _changed_seeds(tmp_path))

    done = build_window(con, JULY, AUGUST)
    assert done == {"months": [JULY, AUGUST], "full": []}  # month by month, nothing rebuilt whole
    metrics.publish_months(con, JULY, AUGUST)
    _keep(con, "partial")
    done = build_window(con, JUNE, AUGUST)  # the whole history, still month by month
    assert done == {"months": [JUNE, JULY, AUGUST], "full": []}
    metrics.publish_months(con, JUNE, AUGUST)
    _keep(con, "whole")

    metrics.build(con)  # the full rebuild, into build.*
    in_window = "month between '2022-07-01' and '2022-08-01'"
    for name in metrics.mart_names():
        assert con.execute(f"select count(*) from build.{name}").fetchone()[0] > 0, name
        assert _differences(con, f"whole_{name}", f"build.{name}") == 0, name
        assert _differences(con, f"partial_{name}", f"build.{name}", in_window) == 0, name
        assert _differences(con, f"partial_{name}", f"before_{name}", f"not ({in_window})") == 0, name
    # the seeds changed June too: a full rebuild would have changed it, the July-August backfill did not
    assert _differences(con, "before_coverage", "build.coverage", "month = '2022-06-01'") > 0
    assert _differences(con, "before_trajectory", "build.trajectory", "month = '2022-06-01'") > 0

    # Not month by month when the build tables may not be of the current loads: here a correction
    # loaded since the last build (`jkn ingest` alone).
    corrected = tmp_path / "fix" / "region_counts_2022-07.csv"
    corrected.parent.mkdir()
    corrected.write_text("region_code,segment,status,participants\n3171,BP,ACTIVE,5\n", encoding="utf-8")
    [result] = ingest.ingest_files(con, [corrected], 100.0, pseudonym_key=TEST_KEY)
    assert result.status == "staged"
    done = build_window(con, JULY, AUGUST)
    assert done["months"] == [] and "build.coverage" in done["full"]
    # and a model whose table lost a column (a new release changed it) is rebuilt whole, the others by month
    con.execute("alter table build.coverage_by_segment drop column share_pct")
    done = build_window(con, JULY, AUGUST)
    assert done == {"months": [JULY, AUGUST], "full": ["build.coverage_by_segment"]}
    # and a backfill that crashed half-way (its build tables a mix of old and new) leaves the next one a full build
    con.execute("update build.built_from set current_loads = null")
    assert build_window(con, JULY, AUGUST)["months"] == []


def test_a_backfill_in_a_connection_of_its_own_makes_the_temp_models_again(settings, tmp_path):
    """The intermediate models that are temp tables (metrics.TEMP_MODELS) are not in the file: a backfill's
    stage opens the database afresh, makes them again for its window, and gives a full rebuild's marts;
    a model it rebuilds whole after them (its table changed) reads every month of them."""
    with database.connected(settings) as con:
        database.load_seeds(con, settings.seeds)
        _load_three_months(con, tmp_path)
        assert {metrics.TEMP_MODELS[0]} <= {
            name for (name,) in con.execute("select table_name from duckdb_tables() where temporary").fetchall()
        }
        stored = con.execute("select table_name from duckdb_tables() where schema_name = 'build'").fetchall()
        assert not {name for (name,) in stored} & set(metrics.TEMP_MODELS)
    seeds = _changed_seeds(tmp_path)
    with database.connected(settings) as con:
        database.load_seeds(con, seeds)
        done = build_window(con, JULY, AUGUST)
        assert done == {"months": [JULY, AUGUST], "full": []}
        _keep_build(con, "window")
        # employer_compliance's table changed: rebuilt whole, from every month's companies
        con.execute(f"alter table {metrics.built_table('employer_compliance')} drop column name")
        done = build_window(con, JULY, AUGUST)
        assert done == {"months": [JULY, AUGUST], "full": ["build.employer_compliance"]}
        _keep_build(con, "rebuilt")
    with database.connected(settings) as con:
        database.load_seeds(con, seeds)
        metrics.build(con)
        in_window = "month between '2022-07-01' and '2022-08-01'"
        for name in metrics.mart_names():
            assert con.execute(f"select count(*) from build.{name} where {in_window}").fetchone()[0] > 0, name
            assert _differences(con, f"window_{name}", f"build.{name}", in_window) == 0, name
        assert _differences(con, "rebuilt_employer_compliance", "build.employer_compliance") == 0
        assert con.execute("select count(distinct month) from rebuilt_employer_compliance").fetchone()[0] == 3


def _keep_build(con, prefix: str) -> None:
    for name in metrics.mart_names():
        con.execute(f"create or replace table main.{prefix}_{name} as select * from build.{name}")
