"""Smoke run of the national-scale benchmark at 30,000 rows (one floor run), so `python -m bench` keeps working.

No timed assertions: the figures belong in BENCHMARKS.md. This checks that one run
generates data with the project's generator, measures every stage of the pipeline, the
floor, the Prefect flow, the pandas + GX baseline and the polars peer, and computes the ratios."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.results import targets_for

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ROWS = 30_000


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory, prefect_server) -> tuple[dict, str]:
    from prefect.settings import PREFECT_API_URL

    work = tmp_path_factory.mktemp("bench")
    out = work / "results.json"
    environment = {name: value for name, value in os.environ.items() if not name.upper().startswith("JKN_")}
    # The session's Prefect test server, so the flow does not start a temporary one of its own.
    environment["PREFECT_API_URL"] = PREFECT_API_URL.value()
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--rows",
            str(ROWS),
            "--employers",
            "2000",
            "--workforce",
            "2500",
            "--work",
            str(work),
            "--out",
            str(out),
            "--sample-interval",
            "0.02",
            "--floor-runs",
            "1",
        ],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads(out.read_text(encoding="utf-8")), completed.stdout


def _positive(measured: dict, what: str) -> None:
    assert measured["seconds"] > 0, f"{what}: no wall time"
    assert measured["peak_rss_mb"] > 0, f"{what}: no peak memory"


@pytest.mark.slow
def test_every_step_is_measured(bench_run):
    results, _ = bench_run
    _positive(results["floor"], "floor")
    stages = results["pipeline"]["stages"]
    assert set(stages) >= {"ingest", "checks", "metrics", "alerts", "report"}
    for name, stage in stages.items():
        _positive(stage, f"stage {name}")
        assert stage["tasks"], f"stage {name} has no task"
        for task_name, task in stage["tasks"].items():
            _positive(task, f"task {task_name}")
            assert task["rss_samples"] > 0
    flow = results["pipeline"]["flow"]
    _positive(flow, "flow")
    assert results["pipeline"]["flow_seconds"] > 0
    _positive(results["baseline"], "baseline")
    _positive(results["peer"], "peer")
    assert results["peer"]["engine"].startswith("polars") and results["peer"]["rss_samples"] > 0
    assert set(results["baseline"]["steps"]) == {"read", "coverage", "validate"}
    assert all(seconds > 0 for seconds in results["baseline"]["steps"].values())
    assert results["parameters"]["memory_limit"] == results["pipeline"]["memory_limit"] == "2GB"


@pytest.mark.slow
def test_all_three_read_the_same_generated_rows(bench_run):
    results, _ = bench_run
    assert results["data"]["generation"]["source"] == "generated"
    assert results["floor"]["rows"] == ROWS
    assert results["baseline"]["rows"] == ROWS
    returned = results["pipeline"]["stages"]["ingest"]["tasks"]["ingest"]["returned"]
    ingested = {item["file_name"]: item for item in returned}
    participants = ingested[results["data"]["participants_file"]]
    assert participants["status"] == "staged"
    assert participants["rows_loaded"] + participants["rows_rejected"] == ROWS
    assert results["pipeline"]["database"]["rows"]["raw.participants"] == participants["rows_loaded"]
    assert results["pipeline"]["database"]["rows"]["mart.coverage"] > 0
    assert results["baseline"]["expectations_run"], "the baseline validated nothing"
    # the peer applied ingest's row rules and key checks to the same file and found what ingest found
    peer = results["peer"]
    assert peer["rows"] == ROWS
    assert peer["bad_rows"] + peer["repeated_card_rows"] == participants["rows_rejected"]
    assert peer["regions"] == results["baseline"]["regions"]
    assert peer["national_coverage_pct"] == pytest.approx(results["baseline"]["national_coverage_pct"], rel=0.05)


@pytest.mark.slow
def test_ratios_and_overhead_are_computed(bench_run):
    results, stdout = bench_run
    floor = results["floor"]["seconds"]
    pipeline = results["pipeline"]
    flow = pipeline["flow_seconds"]
    stages_seconds = sum(stage["seconds"] for stage in pipeline["stages"].values())
    assert pipeline["stages_seconds"] == pytest.approx(stages_seconds, abs=0.01)
    in_flow = sum(stage["in_flow_seconds"] for stage in pipeline["stages"].values())
    assert all(stage["in_flow_seconds"] > 0 for stage in pipeline["stages"].values())
    # the stage tasks' time, the report and the alerts (side by side) counted once where they overlap
    busy = pipeline["in_flow_busy_seconds"]
    assert max(stage["in_flow_seconds"] for stage in pipeline["stages"].values()) < busy <= in_flow + 0.01
    assert pipeline["prefect_overhead_seconds"] == pytest.approx(flow - busy, abs=0.01)
    assert pipeline["flow_minus_fresh_stages_seconds"] == pytest.approx(flow - stages_seconds, abs=0.01)
    assert pipeline["prefect_noop_flow_seconds"] > 0
    ratios = results["ratios"]
    assert ratios["ours_over_floor"] == pytest.approx(flow / floor, rel=0.01, abs=0.001)
    assert ratios["baseline_over_ours"] == pytest.approx(results["baseline"]["seconds"] / flow, rel=0.01, abs=0.001)
    # a small run is held to the targets every size has; 10 M and 30 M add the floor and peer ones
    assert set(results["targets"]) == {"faster_than_baseline", "peak_memory_under_2gb", "ingest_memory_under_1_5gb"}
    assert set(targets_for(30_000_000)) == set(results["targets"]) | {
        "pipeline_near_floor",
        "ingest_near_floor",
        "faster_than_peer",
    }
    assert all(isinstance(target["met"], bool) for target in results["targets"].values())
    assert ratios["peer_over_ours"] == pytest.approx(results["peer"]["seconds"] / flow, rel=0.01, abs=0.001)
    assert "ours / floor" in stdout and "baseline / ours" in stdout and "peer / ours" in stdout
