"""What the benchmark measures, each run inside its own process by `bench.measure`.

Every workload names the modules it needs; `run_workload` imports them before
starting the clock, so a figure is the work itself and not Python importing
GX (about 4 s) or Prefect. Import time is recorded next to it. This module
imports only the standard library at the top: the floor's process must hold
DuckDB alone, not Prefect or pandas. Our pipeline's workloads are in
bench/our_pipeline.py, the pandas + GX baseline's in bench/baseline.py (standard
library only at their top, too).
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path

from bench.baseline import baseline
from bench.our_pipeline import pipeline_flow, pipeline_task

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


if __name__ == "__main__":
    run_workload(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4], json.loads(sys.argv[5]), sys.argv[6])
