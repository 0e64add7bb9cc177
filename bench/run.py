"""One benchmark run: generate national-shaped data once, then measure on the same files
the DuckDB floor, our pipeline stage by stage and as one Prefect flow, the pandas + GX
baseline and the polars peer (bench/peer.py); print a table with the ratios and write the
results as JSON. The data measured is bench/data.py's, the results bench/results.py's."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench.data import extract_files, landing_folder, participants_suite
from bench.measure import PROJECT_ROOT, BenchError, Runner
from bench.results import TASK_ORDER, build_results, database_summary

DEFAULT_WORK_DIR = PROJECT_ROOT / "data" / "bench"
RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
BENCH_PSEUDONYM_KEY = "bench-pseudonym-key-not-a-secret"


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark jkn at national scale: DuckDB floor vs our pipeline vs pandas + GX, on the same "
        "generated files. Prints a table and writes results JSON.",
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="participant rows (default 10,000,000)")
    parser.add_argument("--regions", type=int, default=514, help="regions (kab/kota) to spread them over")
    parser.add_argument("--employers", type=int, default=200_000, help="employers in the employers extract")
    parser.add_argument("--workforce", type=int, default=250_000, help="companies in the workforce report")
    parser.add_argument("--month", default=None, help="extract month YYYY-MM (default: the generator's)")
    parser.add_argument("--seed", type=int, default=42, help="generator seed")
    parser.add_argument("--memory-limit", default="2GB", help="JKN_MEMORY_LIMIT for the pipeline and the floor")
    parser.add_argument("--threads", type=int, default=None, help="JKN_THREADS (default: all cores)")
    parser.add_argument(
        "--work",
        type=Path,
        default=DEFAULT_WORK_DIR,
        help="folder for generated data, databases and logs (default data/bench)",
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="measure an existing landing folder instead of generating one"
    )
    parser.add_argument("--regenerate", action="store_true", help="generate even if the same data is cached")
    parser.add_argument(
        "--out", type=Path, default=None, help="results JSON path (default bench/results/bench-<rows>-<time>.json)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases after the run")
    parser.add_argument("--floor-runs", type=int, default=2, help="runs of the floor; the fastest counts")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="time every SQL statement of each stage and keep the slowest in the results",
    )
    parser.add_argument("--sample-interval", type=float, default=0.05, help="seconds between RSS samples")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    try:
        results = run(args)
    except BenchError as error:
        print(f"benchmark failed: {error}")
        return 1
    from bench.summary import print_table

    print_table(results)
    print(f"results: {results['results_path']}")
    return 0


def run(args: argparse.Namespace) -> dict:
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    work = args.work.resolve()
    run_dir = work / f"run-{stamp}-{uuid.uuid4().hex[:6]}"
    runner = Runner(run_dir, args.sample_interval)
    prefect_environment = _prefect_environment(work)
    os.environ.update(prefect_environment)  # the forkserver started below inherits it
    load_before = os.getloadavg()

    generation, landing = landing_folder(args, work, runner)
    files = extract_files(landing)
    month = files["month"]

    jkn_environment = {
        "JKN_LANDING": str(landing),
        "JKN_PSEUDONYM_KEY": BENCH_PSEUDONYM_KEY,
        "JKN_MEMORY_LIMIT": args.memory_limit,
        **({"JKN_THREADS": str(args.threads)} if args.threads else {}),
    }

    # 1. The floor: DuckDB alone loading the participants file; the fastest of a few runs, as
    # the least a load of this file costs here (one run varies by +-20% on this machine).
    floor_runs = []
    for attempt in range(1, args.floor_runs + 1):
        floor_home = run_dir / f"floor-{attempt}"
        (floor_home / "tmp").mkdir(parents=True)
        floor_runs.append(
            runner.fresh(
                f"floor {attempt}",
                "floor",
                {
                    "participants_csv": str(files["participants"]),
                    "database": str(floor_home / "floor.duckdb"),
                    "memory_limit": args.memory_limit,
                    "threads": args.threads,
                    "temp_dir": str(floor_home / "tmp"),
                },
                {},
                run_dir,
                spill_dir=floor_home / "tmp",
            )
        )
        shutil.rmtree(floor_home, ignore_errors=True)
    floor = min(floor_runs, key=lambda measured: measured.seconds)
    floor.result["runs_seconds"] = [round(measured.seconds, 3) for measured in floor_runs]
    floor.peak_rss_mb = max(measured.peak_rss_mb for measured in floor_runs)

    # 2. Our pipeline, stage by stage: each of the flow's tasks in a fresh process, in order, on one database.
    from bench.our_pipeline import pipeline_tasks

    known = pipeline_tasks()
    missing = [name for name in TASK_ORDER if name not in known]
    if missing:
        raise BenchError(
            f"flows/pipeline.py has no task(s) {', '.join(missing)}; update bench/results.py TASK_ORDER "
            f"(the flow's tasks are {', '.join(known)})"
        )
    task_names = list(TASK_ORDER)
    runner.warm_forkserver()
    stage_home = run_dir / "stages"
    stage_environment = {**jkn_environment, "JKN_HOME": str(stage_home)}
    run_id = uuid.uuid4().hex
    tasks = {}
    for name in task_names:
        tasks[name] = runner.forked(
            f"task {name}",
            "stage",
            {"task_name": name, "run_id": run_id, "profile": args.profile},
            stage_environment,
            run_dir,
            spill_dir=stage_home / "tmp",
        )
    stage_database = database_summary(stage_home)
    if not args.keep:
        shutil.rmtree(stage_home, ignore_errors=True)

    # 3. Our pipeline as one Prefect flow, as `jkn run` runs it, on a fresh database.
    flow_home = run_dir / "flow"
    flow = runner.forked(
        "flow",
        "flow",
        {"task_count": len(task_names)},
        {**jkn_environment, "JKN_HOME": str(flow_home), **prefect_environment},
        run_dir,
        spill_dir=flow_home / "tmp",
    )
    if not args.keep:
        shutil.rmtree(flow_home, ignore_errors=True)

    # 4. The baseline: pandas + GX on pandas, on the same files.
    suite, suite_source = participants_suite()
    baseline = runner.fresh(
        "baseline",
        "baseline",
        {
            "participants_csv": str(files["participants"]),
            "population_csv": str(files["population"]),
            "regions_csv": str(PROJECT_ROOT / "seeds" / "regions.csv"),
            "suite": suite,
            "month": month,
        },
        {},
        run_dir,
    )

    # 5. The strong hand-written peer: polars, lazy and streaming, the same row rules, uniqueness and coverage.
    from flows.ingest.kinds import SEGMENT_ALIASES, STATUS_ALIASES

    peer = runner.fresh(
        "peer",
        "peer",
        {
            "participants_csv": str(files["participants"]),
            "population_csv": str(files["population"]),
            "regions_csv": str(PROJECT_ROOT / "seeds" / "regions.csv"),
            "segment_aliases": SEGMENT_ALIASES,
            "status_aliases": STATUS_ALIASES,
        },
        {},
        run_dir,
    )

    results = build_results(
        args,
        started_at,
        load_before,
        generation,
        files,
        floor,
        tasks,
        list(known),
        stage_database,
        flow,
        baseline,
        suite_source,
        peer,
    )
    out = args.out or RESULTS_DIR / f"bench-{args.rows}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    results["results_path"] = str(out)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    return results


def _prefect_environment(work: Path) -> dict:
    """Prefect's own state under the work folder, so the benchmark neither reads nor writes
    the user's profile. With PREFECT_API_URL set, the flow runs against that server."""
    environment = {
        "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        # The temporary server's 20 s default is too short on 2 busy cores; its start is timed anyway.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }
    if os.environ.get("PREFECT_API_URL"):
        environment["PREFECT_API_URL"] = os.environ["PREFECT_API_URL"]
    return environment
