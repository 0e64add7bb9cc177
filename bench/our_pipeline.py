"""Our pipeline as the benchmark runs it (bench/workloads.py): each of the flow's tasks alone, called without
Prefect (`stage`, optionally timing every SQL statement), and the whole Prefect flow with each task's time
inside it clocked (`flow`). Only the standard library is imported at the top; `bench.workloads` imports
Prefect and the pipeline before the clock starts.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import time


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
    intervals: dict[str, list[tuple[float, float]]] = {}
    for name, pipeline_task in pipeline_tasks().items():
        pipeline_task.fn = _clocked(pipeline_task.fn, name, in_flow, intervals)

    started = time.perf_counter()
    noop_flow(task_count)
    prefect_start_seconds = time.perf_counter() - started
    time.sleep(SERVER_SETTLE_SECONDS)
    started = time.perf_counter()
    noop_flow(task_count)
    noop_flow_seconds = time.perf_counter() - started
    time.sleep(SERVER_SETTLE_SECONDS)
    started = time.perf_counter()
    result = pipeline()
    flow_seconds = time.perf_counter() - started
    return {
        "flow_seconds": flow_seconds,
        "in_flow_task_seconds": in_flow,
        "in_flow_task_intervals": intervals,
        "prefect_start_seconds": prefect_start_seconds,
        "noop_flow_seconds": noop_flow_seconds,
        "noop_tasks": task_count,
        "prefect_api_url": os.environ.get("PREFECT_API_URL") or "temporary server",
        "returned": _jsonable(result),
    }


# Between the flows measured in one process: Prefect's temporary server records a run's task runs from their
# events after the run has ended, in its SQLite file, and a flow run created meanwhile is refused (503) and
# created again after the client's 2 s back-off. `jkn run` runs one flow on a server no other run is writing to;
# so does the benchmark, once the server has had this long to finish recording the run before.
SERVER_SETTLE_SECONDS = 3


def _clocked(function, name: str, seconds: dict, intervals: dict | None = None):
    """`function`, its time added to `seconds[name]` (and its (start, end) to `intervals[name]`: tasks the
    flow runs side by side, the report beside the alerts, overlap)."""

    @functools.wraps(function)  # Prefect reads the task's parameters from the signature
    def clocked(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            ended = time.perf_counter()
            seconds[name] = seconds.get(name, 0.0) + ended - started
            if intervals is not None:
                intervals.setdefault(name, []).append((started, ended))

    return clocked


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))
