"""A benchmark run's results: the stages made of the flow's tasks, the ratios, the targets met or not, the
machine and the code measured; and what the stage-by-stage database held."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import psutil

from bench.measure import PROJECT_ROOT, Measurement

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


def stage_of(task_name: str) -> str:
    return next(stage for stage, names in STAGES.items() if task_name in names)


def build_results(
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
    # the stage tasks' time with overlaps counted once (the report runs beside the alerts)
    intervals = flow.result.get("in_flow_task_intervals") or {}
    stage_tasks = {task for name in ordered for task in STAGES[name]}
    in_flow_busy_seconds = (
        busy_seconds([span for task, spans in intervals.items() if task in stage_tasks for span in spans])
        if intervals
        else in_flow_stages_seconds
    )
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
                **{
                    k: v
                    for k, v in flow.result.items()
                    if k not in ("returned", "in_flow_task_seconds", "in_flow_task_intervals")
                },
                "returned": flow.result.get("returned"),
            },
            "flow_seconds": round(flow_seconds, 3),
            # Within the flow run: the flow's time minus what its stage tasks' functions took in
            # that same run. Includes the artifacts task and the run's bookkeeping (ops.runs, lock).
            "in_flow_stages_seconds": round(in_flow_stages_seconds, 3),
            "in_flow_task_seconds": {name: round(value, 3) for name, value in in_flow.items()},
            # (tasks that ran side by side counted once: the report beside the alerts)
            "in_flow_busy_seconds": round(in_flow_busy_seconds, 3),
            "prefect_overhead_seconds": round(flow_seconds - in_flow_busy_seconds, 3),
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


def database_summary(home: Path) -> dict:
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


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """How long at least one of `intervals` was running (overlaps counted once)."""
    total, reached = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reached:
            total += end - max(start, reached)
            reached = end
    return total
