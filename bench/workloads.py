"""What the benchmark measures, each run inside its own process by `bench.measure`.

Every workload names the modules it needs; `run_workload` imports them before
starting the clock, so a figure is the work itself and not Python importing
GX (about 4 s) or Prefect. Import time is recorded next to it. This module
imports only the standard library at the top: the floor's process must hold
DuckDB alone, not Prefect or pandas.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import inspect
import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path

BASELINE_DTYPES = {"card_no": str, "nik": str, "region_code": str, "segment": str, "status": str, "employer_id": str}

# GX expectations that only exist for SQL data sources; the pandas baseline cannot run them.
SQL_ONLY_EXPECTATIONS = {"unexpected_rows_expectation"}


def pandas_equivalents(region_codes: list[str]) -> list[dict]:
    """What a pandas team would write for the row rules (ours enforces them at ingest, and the
    staging suite keeps only batch-level rules over a profile) and the uniqueness checks, on the
    file's columns, so the baseline checks as much as our pipeline does where it can."""
    filled = [
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": column},
            "meta": {"description": f"{column} is always filled in"},
        }
        for column in ("month", "card_no", "region_code", "segment", "status")
    ]
    return [
        *filled,
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "segment", "value_set": ["PBI_APBN", "PBI_APBD", "PPU_PN", "PPU_BU", "PBPU", "BP"]},
            "meta": {"description": "segment is one of the six JKN segments"},
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "status", "value_set": ["ACTIVE", "INACTIVE"]},
            "meta": {"description": "status is ACTIVE or INACTIVE"},
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "wage", "min_value": 0.0},
            "meta": {"description": "wages are never negative"},
        },
        {
            "type": "expect_column_values_to_match_regex",
            "kwargs": {"column": "card_no", "regex": r"^[0-9]{13}$"},
            "meta": {"description": "card numbers are 13 digits"},
        },
        {
            "type": "expect_column_values_to_match_regex",
            "kwargs": {"column": "nik", "regex": r"^[0-9]{16}$"},
            "meta": {"description": "NIKs are 16 digits (ours checks this at ingest and person_key in the suite)"},
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "region_code", "value_set": region_codes},
            "meta": {"description": "region_code is a kab/kota code listed in seeds/regions.csv"},
        },
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "employer_id", "row_condition": 'segment=="PPU_BU"', "condition_parser": "pandas"},
            "meta": {"description": "wage earners in private companies (PPU_BU) carry their employer_id"},
        },
        {
            "type": "expect_compound_columns_to_be_unique",
            "kwargs": {"column_list": ["month", "card_no"]},
            "meta": {"description": "a card number appears once per month"},
        },
        {
            "type": "expect_compound_columns_to_be_unique",
            "kwargs": {"column_list": ["month", "nik"]},
            "meta": {"description": "a person holds one card per month (ours checks person_key)"},
        },
    ]


# --- the DuckDB floor -------------------------------------------------------------------------

FLOOR_SQL = "create table participants as select * from read_csv(?)"


def floor(participants_csv: str, database: str, memory_limit: str, threads: int | None, temp_dir: str) -> dict:
    """DuckDB alone loading the participants file into a table of a database file: the
    least any ingest of this file can cost on this machine."""
    import duckdb

    config: dict[str, str | int] = {"memory_limit": memory_limit, "temp_directory": temp_dir}
    if threads:
        config["threads"] = threads
    con = duckdb.connect(database, config=config)
    try:
        con.execute(FLOOR_SQL, [participants_csv])
        rows = con.execute("select count(*) from participants").fetchone()[0]
        con.execute("checkpoint")
    finally:
        con.close()
    return {"rows": rows, "sql": FLOOR_SQL, "duckdb_config": config}


# --- our pipeline ---------------------------------------------------------------------------------


def pipeline_tasks() -> dict:
    """The flow's Prefect tasks by name (`flows.pipeline`)."""
    from prefect import Task

    from flows import pipeline

    return {value.name: value for value in vars(pipeline).values() if isinstance(value, Task)}


def pipeline_task(task_name: str, run_id: str, profile: bool = False) -> dict:
    """One stage of the pipeline: the function the flow's task wraps, called without Prefect.

    With `profile`, every SQL statement the stage runs (on our DuckDB connections, and the
    ones GX sends through SQLAlchemy) is timed, and the slowest are returned."""
    from flows.settings import load_settings

    statements: list[tuple[float, str, str]] = []
    if profile:
        _time_statements(statements)

    task = pipeline_tasks()[task_name]
    settings = load_settings()
    arguments = {}
    for name, parameter in inspect.signature(task.fn).parameters.items():
        if name == "settings":
            arguments[name] = settings
        elif name == "run_id":
            arguments[name] = run_id
        elif parameter.default is inspect.Parameter.empty:
            raise RuntimeError(f"bench does not know what to pass to task {task_name!r} parameter {name!r}")
    outcome = {"task": task_name, "returned": _jsonable(task.fn(**arguments))}
    if profile:
        outcome["profile"] = {
            "statements": len(statements),
            "statements_seconds": sum(seconds for seconds, _, _ in statements),
            "slowest": [
                {"seconds": round(seconds, 3), "via": via, "sql": " ".join(sql.split())[:PROFILE_SQL_CHARS]}
                for seconds, via, sql in sorted(statements, reverse=True)[:PROFILE_TOP]
            ],
        }
    return outcome


PROFILE_TOP = 12
PROFILE_SQL_CHARS = 600


class TimedConnection:
    """A DuckDB connection that records how long each `execute` took (bench --profile)."""

    def __init__(self, connection, statements: list):
        self._connection = connection
        self._statements = statements

    def execute(self, query, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self._connection.execute(query, *args, **kwargs)
        finally:
            self._statements.append((time.perf_counter() - started, "duckdb", str(query)))

    def close(self):
        # Closing a file database checkpoints it: the WAL is written into the file here.
        started = time.perf_counter()
        try:
            return self._connection.close()
        finally:
            self._statements.append((time.perf_counter() - started, "duckdb", "close (checkpoint)"))

    def __getattr__(self, name):
        return getattr(self._connection, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return self._connection.__exit__(*exc_info)


def _time_statements(statements: list) -> None:
    """Time the statements of every connection `flows.database.connect` opens, and GX's."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from flows import database

    connect = database.connect

    def timed_connect(*args, **kwargs):
        return TimedConnection(connect(*args, **kwargs), statements)

    database.connect = timed_connect

    @event.listens_for(Engine, "before_cursor_execute")
    def started(conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    @event.listens_for(Engine, "after_cursor_execute")
    def finished(conn, cursor, statement, parameters, context, executemany):
        begun = conn.info["bench_started"].pop()
        statements.append((time.perf_counter() - begun, "gx", str(statement)))


def pipeline_flow(task_count: int) -> dict:
    """The whole Prefect flow once, as `jkn run` runs it.

    Each task's function is wrapped with a clock, so the time every stage took inside
    this flow run is known and the rest of the flow's time is Prefect's (and the run's
    bookkeeping). Before it, an empty flow with as many no-op tasks runs twice: the first
    run starts Prefect's temporary server when no PREFECT_API_URL is set (a cost `jkn run`
    pays once per process), the second is Prefect's per-run cost for that many tasks."""
    from prefect import flow, task

    from flows.pipeline import pipeline

    @task(name="noop")
    def noop(index: int) -> int:
        return index

    @flow(name="bench-noop")
    def noop_flow(count: int) -> None:
        for index in range(count):
            noop(index)

    in_flow: dict[str, float] = {}
    for name, pipeline_task in pipeline_tasks().items():
        pipeline_task.fn = _clocked(pipeline_task.fn, name, in_flow)

    started = time.perf_counter()
    noop_flow(task_count)
    prefect_start_seconds = time.perf_counter() - started
    started = time.perf_counter()
    noop_flow(task_count)
    noop_flow_seconds = time.perf_counter() - started
    started = time.perf_counter()
    result = pipeline()
    flow_seconds = time.perf_counter() - started
    return {
        "flow_seconds": flow_seconds,
        "in_flow_task_seconds": in_flow,
        "prefect_start_seconds": prefect_start_seconds,
        "noop_flow_seconds": noop_flow_seconds,
        "noop_tasks": task_count,
        "prefect_api_url": os.environ.get("PREFECT_API_URL") or "temporary server",
        "returned": _jsonable(result),
    }


def _clocked(function, name: str, seconds: dict):
    @functools.wraps(function)  # Prefect reads the task's parameters from the signature
    def clocked(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started

    return clocked


# --- the baseline: pandas + GX on pandas ----------------------------------------------------------


def baseline(participants_csv: str, population_csv: str, regions_csv: str, suite: dict, month: str) -> dict:
    """What a team would otherwise write: pandas reads the extract, computes coverage by
    region, and GX validates the participants suite on the pandas DataFrame."""
    import great_expectations as gx
    import pandas as pd

    steps = {}
    started = time.perf_counter()
    participants = pd.read_csv(participants_csv, dtype=BASELINE_DTYPES)
    participants["month"] = pd.Timestamp(f"{month}-01")
    steps["read"] = time.perf_counter() - started

    started = time.perf_counter()
    population = pd.read_csv(population_csv, dtype={"region_code": str})
    regions = pd.read_csv(regions_csv, dtype=str)
    counts = (
        participants.assign(is_active=participants["status"].eq("ACTIVE"))
        .groupby("region_code", as_index=False)
        .agg(participants=("is_active", "size"), active_participants=("is_active", "sum"))
    )
    coverage = (
        regions[["region_code", "region_name"]]
        .merge(population, on="region_code")
        .merge(counts, on="region_code", how="left")
    )
    coverage = coverage.fillna({"participants": 0, "active_participants": 0})
    coverage["coverage_pct"] = coverage["participants"] / coverage["population"] * 100
    coverage["active_rate_pct"] = coverage["active_participants"] / coverage["participants"] * 100
    steps["coverage"] = time.perf_counter() - started

    started = time.perf_counter()
    runnable, skipped = pandas_expectations(suite, set(participants.columns))
    runnable += pandas_equivalents(sorted(regions["region_code"]))
    logging_quiet()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    asset = context.data_sources.add_pandas(name="baseline").add_dataframe_asset(name="participants")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": participants})
    suite_object = context.suites.add(gx.ExpectationSuite(name=suite["name"], expectations=runnable))
    validation = batch.validate(suite_object, result_format="SUMMARY")
    steps["validate"] = time.perf_counter() - started

    failed = [result.expectation_config.type for result in validation.results if not result.success]
    return {
        "steps": steps,
        "rows": len(participants),
        "regions": len(coverage),
        "national_coverage_pct": float(coverage["participants"].sum() / coverage["population"].sum() * 100),
        "expectations_run": [_label(item) for item in runnable],
        "expectations_skipped": skipped,
        "expectations_failed": failed,
    }


def pandas_expectations(suite: dict, columns: set[str]) -> tuple[list[dict], list[dict]]:
    """The suite's expectations the pandas DataFrame can run, and those it cannot, with why.

    The suite checks the staging view (pseudonymised, with `person_key`, `file_name`, ...);
    the DataFrame holds the file's own columns, so expectations on columns it does not have,
    the exact column-set check, and SQL-only expectations are left out and listed."""
    runnable, skipped = [], []
    for expectation in suite["expectations"]:
        expectation = {key: value for key, value in expectation.items() if key != "id"}
        kwargs = expectation.get("kwargs", {})
        needed = [kwargs["column"]] if "column" in kwargs else list(kwargs.get("column_list", []))
        needed += [kwargs[key] for key in ("column_A", "column_B") if key in kwargs]
        if expectation["type"] in SQL_ONLY_EXPECTATIONS:
            skipped.append({"expectation": _label(expectation), "why": "SQL data sources only"})
        elif expectation["type"] in ("expect_table_columns_to_match_set", "expect_table_columns_to_match_ordered_list"):
            skipped.append({"expectation": _label(expectation), "why": "checks the staging view's columns"})
        elif missing := [name for name in needed if name not in columns]:
            skipped.append({"expectation": _label(expectation), "why": f"no column {', '.join(missing)} in the file"})
        else:
            runnable.append(expectation)
    return runnable, skipped


def _label(expectation: dict) -> str:
    kwargs = expectation.get("kwargs", {})
    target = kwargs.get("column") or ", ".join(kwargs.get("column_list", []))
    if target:
        return f"{expectation['type']}({target})"
    description = expectation.get("description") or (expectation.get("meta") or {}).get("description")
    return f"{expectation['type']}: {description}" if description else expectation["type"]


def logging_quiet() -> None:
    import logging

    logging.getLogger("great_expectations").setLevel(logging.WARNING)


# --- the strong peer: polars, lazy and streaming (bench/peer.py) ---------------------------------


def peer(**arguments) -> dict:
    from bench import peer as polars_peer

    return polars_peer.run(**arguments)


# --- data generation ----------------------------------------------------------------------------


def generate(out_dir: str, arguments: dict) -> dict:
    """The project's generator (`jkn generate`), writing the landing folder."""
    from flows import generate as generator

    files = generator.generate(Path(out_dir), **arguments)
    return {"files": [str(path) for path in files]}


WORKLOADS = {
    # name: (modules imported before the clock starts, function)
    "floor": (("duckdb",), floor),
    "stage": (("flows.pipeline", "great_expectations"), pipeline_task),
    "flow": (("flows.pipeline", "great_expectations"), pipeline_flow),
    "baseline": (("pandas", "great_expectations"), baseline),
    "generate": (("flows.generate",), generate),
    "peer": (("polars", "bench.peer"), peer),
}


def run_workload(name: str, arguments: dict, result_path: str, log_path: str, environment: dict, cwd: str) -> None:
    """Run one workload in this process and write what happened to `result_path` as JSON.

    Called in a fresh process (a new interpreter, or a fork of the pre-imported server in
    `bench.measure`); its output goes to `log_path`. Exit handlers run before the result is
    written: a forked process ends with os._exit, which would skip them, and Prefect stops
    its temporary server and flushes its logs in one."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    for variable in [variable for variable in os.environ if variable.upper().startswith("JKN_")]:
        del os.environ[variable]
    os.environ.update(environment)
    os.chdir(cwd)
    modules, function = WORKLOADS[name]
    outcome: dict = {"workload": name}
    try:
        started = time.perf_counter()
        for module in modules:
            importlib.import_module(module)
        outcome["import_seconds"] = time.perf_counter() - started
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        outcome["result"] = function(**arguments)
        outcome["seconds"] = time.perf_counter() - started
        # CPU over wall shows how much of the 2 cores a step used (1.0 = one core busy).
        outcome["cpu_seconds"] = _cpu_seconds() - cpu_before
        outcome["ok"] = True
    except BaseException as error:  # the parent reports it; the log has the traceback
        traceback.print_exc()
        outcome["ok"] = False
        outcome["error"] = f"{type(error).__name__}: {error}"[:4000]
    # ru_maxrss is in KiB on Linux: the largest RSS this process (and, separately, any of
    # its waited-for children) ever had; a floor for the sampled whole-tree peak.
    atexit._run_exitfuncs()
    outcome["cpu_total_seconds"] = _cpu_seconds()
    outcome["maxrss_self_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    outcome["maxrss_children_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    Path(result_path).write_text(json.dumps(outcome, default=str), encoding="utf-8")
    sys.stdout.flush()
    sys.stderr.flush()


def _cpu_seconds() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


if __name__ == "__main__":
    run_workload(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4], json.loads(sys.argv[5]), sys.argv[6])
