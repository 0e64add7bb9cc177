"""A backfill (`jkn run --from/--to`) rebuilds the months of its window, month by month, not the history.

A backfill recomputes months from what is already loaded (after a seed, a setting or a model
changed). Rebuilding every model from every part, as a regular run does, costs the whole history
each time: years of national months are billions of participant rows read again to republish a
few months. Instead each model's rows of the window are replaced in its `build` table
(`delete` the months, `insert` the model's SELECT filtered to them, one set-based statement each,
in one transaction per statement):

  - the model that reads the participant rows (`MONTH_BY_MONTH`: the wages per company, the only
    input of national size; the counts per region read the loads' profiles) one month at a time. The month filter
    reaches the Parquet scan (each part holds one period, and its statistics say which), so a
    month reads that month's parts only, and memory is bounded by one month whatever the
    window's length;
  - every other model (populations, minimum wages, coverage, compliance, and those that look
    back over the months: the trajectory's baseline and recent pace, the worklist's months of
    non-compliance) in one statement for the whole window, from the `build` tables, which hold
    every month (small: scopes or companies x months). One statement per model and month would
    cost a plan and a scan's set-up each, about 0.1 s, for nothing.

The rows a model gives for a month are, by construction, its full SELECT's rows for that month,
so the window's rows are what a full rebuild gives, provided the other months' `build` rows are
what a full rebuild would give them. That holds when the current loads are those the `build`
tables were last completed from; `build.built_from` records that set (`CURRENT_LOADS`). When it
differs (a batch failed its checks after the marts were built, a correction was loaded since),
or a model's table is missing or its columns changed (a new release), that model, or with a
changed set of loads the whole build, is rebuilt in full as a regular run does. A backfill that
crashed half-way leaves `build.built_from` empty, so the next one rebuilds in full too. Months
outside the window keep their `build` (and, by `metrics.publish_months`, their published) rows.
"""

from __future__ import annotations

import logging
from datetime import date

import duckdb

from flows import metrics, participant_profile
from flows.ingest import slices
from flows.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

# The model that reads the participant rows: recomputed one month at a time. (region_month_counts reads
# the loads' profiles, ops.participant_profile: a few thousand rows a month, one statement for the window.)
MONTH_BY_MONTH = ("employer_worker_wages",)


def _built_from(con: duckdb.DuckDBPyConnection) -> str | None:
    try:
        return con.execute("select current_loads from build.built_from").fetchone()[0]
    except duckdb.CatalogException:
        return None


def build_window(con: duckdb.DuckDBPyConnection, first: date, last: date, population_lag_months: int = 0) -> dict:
    """Build the intermediate and mart models' rows of months `first`..`last` (see the module
    docstring); return how: `{"months": [...], "full": [models rebuilt whole]}`."""
    if _built_from(con) != con.execute(metrics.CURRENT_LOADS_LIST).fetchone()[0]:
        log.info("the build tables were not made from the loads current now: the whole history is rebuilt")
        built = metrics.build(con, population_lag_months, layers=("intermediate", "marts"))
        return {"months": [], "full": built}
    metrics.set_parameters(con, population_lag_months)
    participant_profile.profile_loads(con)  # what region_month_counts reads (metrics.build does the same)
    months = _months(con, first, last)
    full = []
    # Until the window is done the build tables are a mix: a crash here makes the next backfill rebuild all.
    fingerprint = con.execute("select current_loads from build.built_from").fetchone()[0]
    con.execute("update build.built_from set current_loads = null")
    windowed: list[metrics.Model] = []  # temp tables holding the window's months only
    with metrics.build_writes(con):
        for model in (model for model in metrics.models() if model.layer != "staging"):
            _build_window_model(con, model, months, (first, last), full, windowed)
    con.execute("update build.built_from set current_loads = ?", [fingerprint])
    log.info("backfill: %d month(s) rebuilt month by month; rebuilt whole: %s", len(months), full or "none")
    return {"months": months, "full": full}


def _build_window_model(
    con: duckdb.DuckDBPyConnection,
    model: metrics.Model,
    months: list[date],
    bounds: tuple[date, date],
    full: list[str],
    windowed: list[metrics.Model],
) -> None:
    """One model's rows of the window replaced, or the model rebuilt whole (added to `full`). A temp model
    (metrics.TEMP_MODELS) is made again in this connection with the window's months only (added to
    `windowed`): all that the window's rows of the models after it read, until one of those is rebuilt whole."""
    sql = model.path.read_text(encoding="utf-8")
    window = {"first": bounds[0], "last": bounds[1]}
    try:
        if model.name in metrics.TEMP_MODELS:
            metrics.drop_stored_temp_model(con, model)
            con.execute(
                f"create or replace temp table {model.name} as select * from (\n{sql}\n) "
                "where month between $first and $last",
                window,
            )
            windowed.append(model)
            return
        if not _same_columns(con, model.relation, sql):
            for temp in windowed:  # a model rebuilt whole reads every month of the temp models before it
                metrics.run_model(con, temp)
            windowed.clear()
            metrics.build_model(con, model)
            full.append(model.relation)
            return
        # a swapped mart's rows are replaced in the table it is built into (metrics.SWAPPED_MARTS)
        table = metrics.writable_build(con, model)
        if model.name in MONTH_BY_MONTH:
            for month in months:
                _replace(con, table, sql, "month = $month", {"month": month})
        else:
            _replace(con, table, sql, "month between $first and $last", window)
    except duckdb.Error as error:
        raise RuntimeError(f"{model.path.relative_to(PROJECT_ROOT)}: {error}") from error


def _replace(con: duckdb.DuckDBPyConnection, relation: str, sql: str, where: str, parameters: dict) -> None:
    """One model's rows of some months replaced, in one transaction (a crash leaves the old rows)."""
    con.begin()
    try:
        con.execute(f"delete from {relation} where {where}", parameters)
        con.execute(f"insert into {relation} by name select * from (\n{sql}\n) where {where}", parameters)
        con.commit()
    except BaseException:
        con.rollback()
        raise


def _same_columns(con: duckdb.DuckDBPyConnection, relation: str, sql: str) -> bool:
    """Whether `relation` exists with the columns (names and types) the model's SELECT gives now."""
    try:
        stored = con.execute(f"select column_name, column_type from (describe {relation})").fetchall()
    except duckdb.CatalogException:
        return False
    wanted = con.execute(f"select column_name, column_type from (describe ({sql}))").fetchall()
    return "month" in {name for name, _ in stored} and stored == wanted


def _months(con: duckdb.DuckDBPyConnection, first: date, last: date) -> list[date]:
    """The window's months that have a current load or rows in a build table."""
    loaded = {
        date.fromisoformat(f"{period}-01")
        for (period,) in con.execute(
            f"select distinct period from ops.load_log where load_id in ({slices.CURRENT_LOADS}) "
            "and period not like '%S%'"
        ).fetchall()
    }
    built = set()
    for model in metrics.models():
        if model.layer != "staging":
            try:
                built |= {
                    month
                    for (month,) in con.execute(
                        f"select distinct month from {model.relation} where month between ? and ?", [first, last]
                    ).fetchall()
                }
            except (duckdb.CatalogException, duckdb.BinderException):  # a model new or changed: rebuilt whole
                continue
    return sorted(month for month in loaded | built if first <= month <= last)
