"""One benchmark run: generate national-shaped data once, then measure on the same files
the DuckDB floor, our pipeline stage by stage and as one Prefect flow, the pandas + GX
baseline and the polars peer (bench/peer.py); print a table with the ratios and write the
results as JSON."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import psutil

from bench.measure import PROJECT_ROOT, BenchError, Measurement, Runner

DEFAULT_WORK_DIR = PROJECT_ROOT / "data" / "bench"
RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
SUITE_PATH = PROJECT_ROOT / "expectations" / "staging.participants.json"
BENCH_PSEUDONYM_KEY = "bench-pseudonym-key-not-a-secret"

# The five stages the issue names, made of the flow's tasks (by Prefect task name) in the
# order `flows.pipeline.pipeline` runs them on a normal run. The flow's other tasks are
# Prefect's own business: `find-new-work` runs only for the landing watch, and `artifacts`
# writes Prefect artifacts through the Prefect API; with the run bookkeeping around the
# tasks they count in the flow's total, that is in "Prefect overhead".
STAGES = {
    "ingest": ("ingest",),
    "checks": ("check-staging", "check-marts"),
    "metrics": ("build-metrics", "publish"),
    "alerts": ("alerts",),
    "report": ("report",),
}
TASK_ORDER = ("ingest", "check-staging", "build-metrics", "check-marts", "publish", "alerts", "report")

# Used only while expectations/staging.participants.json does not exist yet: the same
# expectation types as the project's staging suites, on the participants columns.
STAND_IN_SUITE = {
    "name": "staging.participants",
    "expectations": [
        {
            "type": "expect_table_columns_to_match_set",
            "kwargs": {
                "column_set": [
                    "month",
                    "card_no",
                    "person_key",
                    "sex",
                    "birth_year",
                    "region_code",
                    "segment",
                    "status",
                    "employer_id",
                    "wage",
                    "file_name",
                ],
                "exact_match": True,
            },
            "severity": "critical",
        },
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "month"}, "severity": "critical"},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "card_no"}, "severity": "critical"},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "region_code"}, "severity": "critical"},
        {
            "type": "expect_column_values_to_match_regex",
            "kwargs": {"column": "card_no", "regex": r"^\d{13}$"},
            "severity": "critical",
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "segment", "value_set": ["PBI_APBN", "PBI_APBD", "PPU_PN", "PPU_BU", "PBPU", "BP"]},
            "severity": "critical",
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "status", "value_set": ["ACTIVE", "INACTIVE"]},
            "severity": "critical",
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "wage", "min_value": 0},
            "severity": "critical",
        },
        {
            "type": "expect_compound_columns_to_be_unique",
            "kwargs": {"column_list": ["month", "card_no"]},
            "severity": "critical",
        },
        {
            "type": "unexpected_rows_expectation",
            "kwargs": {
                "unexpected_rows_query": "select * from {batch} where region_code not in "
                "(select region_code from ref.regions)"
            },
            "severity": "critical",
        },
    ],
}


# name: (what, how the value compares, threshold), by size: the storage issue's (13) for ingest and
# issue 15's for the whole flow; below 10 M rows only "faster than pandas + GX" and memory apply.
def targets_for(rows: int) -> dict[str, tuple[str, str, float]]:
    large = rows >= 30_000_000
    targets = {
        "faster_than_baseline": (
            "pandas + GX baseline / whole pipeline",
            ">=",
            4.0 if large else 2.0 if rows >= 10_000_000 else 1.0,
        ),
        "peak_memory_under_2gb": ("peak RSS of the pipeline's process tree, MB", "<", 2048.0),
        "ingest_memory_under_1_5gb": ("peak RSS of ingest, MB", "<", 1536.0),
    }
    if rows >= 10_000_000:
        targets["pipeline_near_floor"] = ("whole pipeline (Prefect flow) / DuckDB floor", "<=", 1.5 if large else 2.0)
        targets["ingest_near_floor"] = ("ingest / DuckDB floor", "<=", 1.1 if large else 1.2)
    if large:
        targets["faster_than_peer"] = ("hand-written peer / whole pipeline", ">=", 1.0)
    return targets


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

    generation, landing = _landing(args, work, runner)
    files = _extract_files(landing)
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
    from bench.workloads import pipeline_tasks

    known = pipeline_tasks()
    missing = [name for name in TASK_ORDER if name not in known]
    if missing:
        raise BenchError(
            f"flows/pipeline.py has no task(s) {', '.join(missing)}; update bench/run.py TASK_ORDER "
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
    stage_database = _database_summary(stage_home)
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
    suite, suite_source = _participants_suite()
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

    results = _results(
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


# --- data ------------------------------------------------------------------------------------------


def _landing(args, work: Path, runner: Runner) -> tuple[dict, Path]:
    """The landing folder to measure: given, cached from an earlier run with the same
    parameters and generator, or generated now (timed, not part of any comparison)."""
    if args.data is not None:
        return {"source": "given", "folder": str(args.data.resolve())}, args.data.resolve()
    generator = PROJECT_ROOT / "flows" / "generate.py"
    if not generator.exists():
        raise BenchError(
            "flows/generate.py (jkn generate, issue 3) does not exist yet; pass --data with a landing folder"
        )
    parameters = {
        "participants": args.rows,
        "employers": args.employers,
        "workforce": args.workforce,
        "regions": args.regions,
        "seed": args.seed,
        **({"month": args.month} if args.month else {}),
    }
    key = "-".join(f"{name}{value}" for name, value in parameters.items())
    landing = work / "landing" / key
    manifest_path = landing / ".bench-manifest.json"  # a dot file: ingest's discovery skips it
    manifest = {"parameters": parameters, "generator_sha256": _sha256(generator)}
    if not args.regenerate and manifest_path.exists():
        if json.loads(manifest_path.read_text(encoding="utf-8")) == manifest:
            return {"source": "cached", "folder": str(landing), "parameters": parameters}, landing
    shutil.rmtree(landing, ignore_errors=True)
    landing.mkdir(parents=True)
    measured = runner.fresh(
        "generate", "generate", {"out_dir": str(landing), "arguments": parameters}, {}, landing.parent
    )
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    return {"source": "generated", "folder": str(landing), "parameters": parameters, **measured.as_dict()}, landing


def _extract_files(landing: Path) -> dict:
    """The participants file (the newest month), and the population file the baseline joins to."""
    participants = sorted(landing.glob("participants_*.csv*"))
    population = sorted(landing.glob("population_*.csv*"))
    if not participants or not population:
        raise BenchError(f"{landing}: needs a participants_YYYY-MM.csv and a population_YYYY-Sn.csv file")
    month = re.match(r"participants_(\d{4}-\d{2})", participants[-1].name).group(1)
    return {
        "participants": participants[-1],
        "population": population[-1],
        "month": month,
        "all": {path.name: path.stat().st_size for path in sorted(landing.iterdir()) if not path.name.startswith(".")},
    }


def _participants_suite() -> tuple[dict, str]:
    if SUITE_PATH.exists():
        return json.loads(SUITE_PATH.read_text(encoding="utf-8")), str(SUITE_PATH.relative_to(PROJECT_ROOT))
    return STAND_IN_SUITE, "stand-in (expectations/staging.participants.json does not exist yet)"


def _database_summary(home: Path) -> dict:
    """Rows per raw view and mart table, the database file's size, and the parts' size and bytes per
    participant row, of the stage-by-stage database."""
    import duckdb

    path = home / "jkn.duckdb"
    if not path.exists():
        return {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [
            row[0]
            for row in con.execute(
                "select schema_name || '.' || table_name from duckdb_tables() where schema_name = 'mart' "
                "union all select schema_name || '.' || view_name from duckdb_views() where schema_name = 'raw' "
                "order by 1"
            ).fetchall()
        ]
        rows = {name: con.execute(f"select count(*) from {name}").fetchone()[0] for name in names}
        status = con.execute("select status, count(*) from ops.load_log group by status order by 1").fetchall()
    finally:
        con.close()
    parts = path.with_name(path.name + ".parts")
    participants = (
        sum(file.stat().st_size for file in (parts / "participants").rglob("*.parquet"))
        if (parts / "participants").exists()
        else 0
    )
    return {
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "parts_mb": round(sum(f.stat().st_size for f in parts.rglob("*") if f.is_file()) / 2**20, 1)
        if parts.exists()
        else 0,
        "participant_part_bytes_per_row": round(participants / rows["raw.participants"], 1)
        if rows.get("raw.participants")
        else None,
        "rows": rows,
        "load_log": dict(status),
    }


# --- results ---------------------------------------------------------------------------------------


def stage_of(task_name: str) -> str:
    return next(stage for stage, names in STAGES.items() if task_name in names)


def _results(
    args,
    started_at,
    load_before,
    generation,
    files,
    floor: Measurement,
    tasks: dict[str, Measurement],
    known_tasks: list[str],
    stage_database: dict,
    flow: Measurement,
    baseline: Measurement,
    suite_source: str,
    peer: Measurement,
) -> dict:
    stages: dict[str, dict] = {}
    for name, measured in tasks.items():
        stage = stages.setdefault(
            stage_of(name), {"seconds": 0.0, "cpu_seconds": 0.0, "peak_rss_mb": 0.0, "peak_spill_mb": 0.0, "tasks": {}}
        )
        stage["seconds"] += measured.seconds
        stage["cpu_seconds"] += measured.cpu_seconds
        stage["peak_rss_mb"] = max(stage["peak_rss_mb"], measured.peak_rss_mb)
        stage["peak_spill_mb"] = max(stage["peak_spill_mb"], measured.peak_spill_mb)
        stage["tasks"][name] = {**measured.as_dict(), "returned": measured.result.get("returned")}
        if "profile" in measured.result:
            stage["tasks"][name]["profile"] = measured.result["profile"]
    ordered = {name: stages[name] for name in STAGES}
    stages_seconds = sum(stage["seconds"] for stage in ordered.values())
    flow_seconds = flow.result["flow_seconds"]
    in_flow = flow.result["in_flow_task_seconds"]
    for name, stage in ordered.items():
        stage["in_flow_seconds"] = sum(in_flow.get(task, 0.0) for task in STAGES[name])
    in_flow_stages_seconds = sum(stage["in_flow_seconds"] for stage in ordered.values())
    baseline_seconds = baseline.seconds
    pipeline_peak = max(flow.peak_rss_mb, *(stage["peak_rss_mb"] for stage in ordered.values()))
    ratios = {
        "ours_over_floor": flow_seconds / floor.seconds,
        "stages_over_floor": stages_seconds / floor.seconds,
        "ingest_over_floor": ordered["ingest"]["seconds"] / floor.seconds if "ingest" in ordered else None,
        "baseline_over_ours": baseline_seconds / flow_seconds,
        "baseline_over_stages": baseline_seconds / stages_seconds,
        "baseline_peak_rss_over_ours": baseline.peak_rss_mb / pipeline_peak,
        "peer_over_ours": peer.seconds / flow_seconds,
        "peer_over_stages": peer.seconds / stages_seconds,
    }
    values = {
        "faster_than_baseline": ratios["baseline_over_ours"],
        "peak_memory_under_2gb": pipeline_peak,
        "ingest_memory_under_1_5gb": ordered["ingest"]["peak_rss_mb"] if "ingest" in ordered else float("nan"),
        "pipeline_near_floor": ratios["ours_over_floor"],
        "ingest_near_floor": ratios["ingest_over_floor"] if ratios["ingest_over_floor"] is not None else float("nan"),
        "faster_than_peer": ratios["peer_over_ours"],
    }
    targets = {}
    for name, (what, comparison, threshold) in targets_for(args.rows).items():
        value = values[name]
        met = (
            value <= threshold
            if comparison == "<="
            else value >= threshold
            if comparison == ">="
            else (value < threshold)
        )
        targets[name] = {"what": what, "target": f"{comparison} {threshold:g}", "value": round(value, 3), "met": met}
    measured = [floor, *tasks.values(), flow, baseline, peer]
    others_share = sum(m.other_cpu_seconds for m in measured) / (
        sum(m.process_seconds for m in measured) * (os.cpu_count() or 1)
    )
    return {
        "benchmark": "jkn national-scale benchmark (issue 9)",
        # Share of the machine's CPU that other work (other people's tests) used while the
        # benchmark's processes ran: near 0 is a quiet machine; 0.5 is one core taken away.
        "contention_share": round(others_share, 3),
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(args.work, load_before),
        "code": _code_version(),
        "parameters": {
            "rows": args.rows,
            "regions": args.regions,
            "employers": args.employers,
            "workforce": args.workforce,
            "month": files["month"],
            "seed": args.seed,
            "memory_limit": args.memory_limit,
            "threads": args.threads or os.cpu_count(),
            "rss_sample_interval_seconds": args.sample_interval,
        },
        "data": {
            "generation": generation,
            "files_bytes": files["all"],
            "participants_file": files["participants"].name,
            "population_file": files["population"].name,
        },
        "floor": {**floor.as_dict(), **floor.result},
        "pipeline": {
            "stages": ordered,
            "stages_seconds": round(stages_seconds, 3),
            "stages_peak_rss_mb": round(max(stage["peak_rss_mb"] for stage in ordered.values()), 1),
            "other_flow_tasks": sorted(set(known_tasks) - set(tasks)),
            "flow": {
                **flow.as_dict(),
                **{k: v for k, v in flow.result.items() if k not in ("returned", "in_flow_task_seconds")},
                "returned": flow.result.get("returned"),
            },
            "flow_seconds": round(flow_seconds, 3),
            # Within the flow run: the flow's time minus what its stage tasks' functions took in
            # that same run. Includes the artifacts task and the run's bookkeeping (ops.runs, lock).
            "in_flow_stages_seconds": round(in_flow_stages_seconds, 3),
            "in_flow_task_seconds": {name: round(value, 3) for name, value in in_flow.items()},
            "prefect_overhead_seconds": round(flow_seconds - in_flow_stages_seconds, 3),
            # The same against the stage-by-stage run, where every stage pays its process's
            # first-use costs (GX context, chart engine) again: can come out negative.
            "flow_minus_fresh_stages_seconds": round(flow_seconds - stages_seconds, 3),
            "prefect_noop_flow_seconds": round(flow.result["noop_flow_seconds"], 3),
            "prefect_start_seconds": round(flow.result["prefect_start_seconds"], 3),
            "peak_rss_mb": round(pipeline_peak, 1),
            "database": stage_database,
            "memory_limit": args.memory_limit,
        },
        "baseline": {**baseline.as_dict(), **baseline.result, "suite": suite_source},
        "peer": {**peer.as_dict(), **peer.result},
        "ratios": {name: (round(value, 3) if value is not None else None) for name, value in ratios.items()},
        "targets": targets,
    }


def _machine(work: Path, load_before) -> dict:
    memory = psutil.virtual_memory()
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    disk = shutil.disk_usage(work)
    device = ""
    try:
        device = (
            subprocess.run(["df", "--output=source,fstype", str(work)], capture_output=True, text=True, check=False)
            .stdout.splitlines()[-1]
            .strip()
        )
    except (OSError, IndexError):
        pass
    versions = {}
    for package in ("duckdb", "great-expectations", "prefect", "pandas", "pyarrow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_total_gb": round(memory.total / 2**30, 1),
        "disk": {"device_fstype": device, "total_gb": round(disk.total / 2**30), "free_gb": round(disk.free / 2**30)},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        # Other work on the machine (tests of other engineers, for example) shows up here.
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
    }


def _code_version() -> dict:
    """The commit measured, and which of the pipeline's files differed from it."""

    def git(*arguments: str) -> str:
        try:
            return subprocess.run(
                ["git", *arguments], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
            ).stdout.strip()
        except OSError:
            return ""

    changed = git("status", "--porcelain", "--", "flows", "sql", "expectations", "seeds")
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted": [line[3:] for line in changed.splitlines()]}


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


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
