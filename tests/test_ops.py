"""Operations, in process: the writer lock, the landing watch, backfill, artifacts, exit codes,
and prefect.yaml read the same way by `prefect deploy` and `jkn serve`.

Real Prefect (the session's test server), real DuckDB files under tmp_path. The tests that start
their own Prefect server and run `jkn` in subprocesses are in tests/test_ops_processes.py.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import shutil
import socket
import subprocess
import sys
from contextlib import contextmanager
from datetime import timedelta

import duckdb
import pytest
import yaml

from tests.conftest import FIXTURES, TEST_KEY

LANDING = FIXTURES / "landing_small"
BATCH_ONE = ("population_2022-S1.csv", "region_counts_2022-07.csv")
AUGUST = "region_counts_2022-08.csv"


def _land(home, names=None):
    landing = home / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    for name in names or [path.name for path in LANDING.iterdir()]:
        shutil.copy2(LANDING / name, landing / name)
    return landing


def _query(home, sql, params=()):
    con = duckdb.connect(str(home / "jkn.duckdb"), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _main(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """`jkn ARGS` through the real entry point (exit-code mapping included), in this process."""
    from flows.cli import main

    monkeypatch.setattr(sys, "argv", ["jkn", *args])
    code = 0
    try:
        main()
    except SystemExit as exit_:
        code = 0 if exit_.code is None else exit_.code
    out, err = capsys.readouterr()
    return code, out, err


# -- the writer lock -------------------------------------------------------------------------------

# Another process taking the lock (within one process the lock is re-entrant).
HOLDER = """
import sys
from flows import database
from flows.settings import load_settings
with database.writer_lock(load_settings(), sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


@contextmanager
def held_elsewhere(purpose: str):
    """The writer lock held by another process until the block ends; yields its pid."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, purpose], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_second_writer_is_refused_or_waits_with_the_holder_named(settings, monkeypatch):
    from flows import database
    from flows.errors import DatabaseLocked

    with held_elsewhere("jkn run 1234abcd") as pid:
        with pytest.raises(DatabaseLocked) as refused:
            with database.writer_lock(settings, "second"):
                pass
        message = str(refused.value)
        assert f"pid {pid} on {socket.gethostname()} (jkn run 1234abcd), since 20" in message
        assert "JKN_LOCK_TIMEOUT" in message
        waiting = subprocess.Popen(
            [sys.executable, "-c", HOLDER, "waiter"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "JKN_LOCK_TIMEOUT": "60"},
        )
        line = waiting.stderr.readline()
        assert "waiting up to 60 s" in line and f"pid {pid}" in line and "jkn run 1234abcd" in line
    # the holder is gone: the waiting writer gets the lock
    try:
        assert waiting.stdout.readline().strip() == "held"
    finally:
        waiting.stdin.close()
        waiting.wait(timeout=30)
    assert waiting.returncode == 0


def test_lock_is_reentrant_within_one_process_and_cleared_after(settings):
    from flows import database

    with database.writer_lock(settings, "outer"):
        with database.writer_lock(settings, "inner"):
            assert "outer" in database.lock_path(settings).read_text()
    assert database.lock_path(settings).read_text() == ""


def test_cli_stage_commands_honour_the_lock(jkn_env, monkeypatch, capsys):
    _land(jkn_env)
    with held_elsewhere("jkn run held-by-test") as pid:
        code, _, err = _main(monkeypatch, capsys, "ingest")
    assert code == 4
    assert "held-by-test" in err and f"pid {pid}" in err
    assert not (jkn_env / "jkn.duckdb").exists()


# -- backfill window -------------------------------------------------------------------------------


def test_backfill_window_parsing():
    from datetime import date

    from flows.errors import ConfigError
    from flows.runs import Window

    assert Window.parse(None, None) is None
    window = Window.parse("2021-01", "2022-12")
    assert (window.first, window.last) == (date(2021, 1, 1), date(2022, 12, 1))
    assert str(window) == "2021-01 to 2022-12"
    assert str(Window.parse("2022-03", None)) == "2022-03 to the latest month"
    for bad in (("2021-13", None), ("2021-1", None), ("2022-05", "2022-01"), (None, "May 2022")):
        with pytest.raises(ConfigError):
            Window.parse(*bad)


# -- prefect.yaml and jkn serve --------------------------------------------------------------------


def test_prefect_yaml_deployments_and_serve_read_the_same_schedules():
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy

    from flows import deployments

    document = yaml.safe_load(deployments.PREFECT_YAML.read_text())
    by_name = {spec["name"]: spec for spec in document["deployments"]}
    assert set(by_name) == {"monthly", "landing-watch"}
    monthly, watch = by_name["monthly"], by_name["landing-watch"]
    assert monthly["schedules"] == [{"cron": "0 6 5 * *", "timezone": "Asia/Jakarta"}]
    assert watch["schedules"][0]["interval"] == 15 * 60
    assert monthly["parameters"]["skip_if_nothing_new"] is False
    assert watch["parameters"]["skip_if_nothing_new"] is True
    for spec in (monthly, watch):
        assert spec["concurrency_limit"]["limit"] == 1
        assert spec["work_pool"]["name"] == "jkn"
        assert spec["entrypoint"] == "flows/pipeline.py:pipeline"

    served = {deployment.name: deployment for deployment in deployments.runner_deployments()}
    assert set(served) == set(by_name)
    for name, spec in by_name.items():
        deployment = served[name]
        assert deployment.work_pool_name is None  # served from this machine
        assert deployment.parameters == spec["parameters"]
        assert deployment.concurrency_limit == 1
        assert deployment.concurrency_options.collision_strategy == ConcurrencyLimitStrategy(
            spec["concurrency_limit"]["collision_strategy"]
        )
        [schedule] = [item.schedule for item in deployment.schedules]
        assert schedule.timezone == "Asia/Jakarta"
    assert served["monthly"].schedules[0].schedule.cron == "0 6 5 * *"
    assert served["landing-watch"].schedules[0].schedule.interval == timedelta(minutes=15)
    assert served["monthly"].entrypoint == "flows.pipeline.pipeline"


# -- the flow in process: watch, artifacts, backfill, exit codes -----------------------------------


@pytest.fixture(scope="module")
def published_home(tmp_path_factory, prefect_server):
    """One uninterrupted run over the fixture landing folder; tests work on copies of it."""
    from flows.pipeline import pipeline

    home = tmp_path_factory.mktemp("published") / "home"
    _land(home)
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.upper().startswith("JKN_"):
                patch.delenv(name)
        patch.setenv("JKN_HOME", str(home))
        patch.setenv("JKN_PSEUDONYM_KEY", TEST_KEY)
        result = pipeline()
    assert sorted(item["status"] for item in result["files"]) == ["staged"] * 3
    return home


def _copy(published_home, home):
    shutil.copytree(published_home, home)
    return home


def _artifacts(flow_run_id) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))

    return {artifact.key: artifact for artifact in asyncio.run(read())}


def _state_counts(home) -> dict:
    report = home / "report" / "index.html"
    return {
        "dq_results": _query(home, "select count(*) from ops.dq_results"),
        "runs": _query(home, "select run_id, status from ops.runs order by started_at"),
        "alert_events": _query(home, "select count(*) from ops.alert_events"),
        "load_log": _query(home, "select load_id, status from ops.load_log order by load_id"),
        "coverage": _query(home, "select * from mart.coverage order by all"),
        "outbox": sorted(path.name for path in (home / "outbox").glob("*")),
        "report": report.stat().st_mtime_ns,
    }


@pytest.mark.slow
def test_landing_watch_works_only_when_there_is_work(jkn_env, published_home):
    from flows import database, runs
    from flows.pipeline import ingest_stage, pipeline
    from flows.settings import load_settings

    home = _copy(published_home, jkn_env)
    before = _state_counts(home)
    state = pipeline(skip_if_nothing_new=True, return_state=True)
    idle = state.result()
    assert idle["status"] == "nothing_new"
    assert idle["pending"] == {"new_files": [], "staged_files": [], "unfinished_runs": []}
    assert _state_counts(home) == before  # no checks, metrics, alerts, report, not even a run record

    # Every run leaves its three artifacts; these describe the published marts.
    artifacts = _artifacts(state.state_details.flow_run_id)
    assert set(artifacts) == {"jkn-run-summary", "jkn-coverage-by-region", "jkn-report"}
    summary = artifacts["jkn-run-summary"].data
    assert ": nothing new" in summary and "regions behind in 2022-08" in summary
    published = dict(
        _query(
            home,
            "select code, round(coverage_pct, 2) from mart.coverage where level = 'region' and month = '2022-08-01'",
        )
    )
    table = json.loads(artifacts["jkn-coverage-by-region"].data)
    assert {row["region_code"]: row["coverage_pct"] for row in table} == published
    assert (home / "report" / "index.html").resolve().as_uri() in artifacts["jkn-report"].data

    # A corrected August file was ingested by a run that then crashed: staged, never published.
    # That is work for the watch, which publishes it without loading it again.
    corrected = home / "landing" / AUGUST
    corrected.write_text(corrected.read_text().replace("33.26;PBI_APBN;AKTIF;700.000", "33.26;PBI_APBN;AKTIF;710.000"))
    [staged] = ingest_stage.fn(load_settings(), "a-run-that-crashed", [str(corrected)])
    assert staged["status"] == "staged"
    state = pipeline(skip_if_nothing_new=True, return_state=True)
    worked = state.result()
    assert worked["status"] == "completed"
    assert worked["pending"]["staged_files"] == [AUGUST] and worked["pending"]["new_files"] == []
    assert {item["status"] for item in worked["files"]} == {"skipped"}  # not loaded twice
    assert _query(home, "select status from ops.load_log where file_name = ? order by load_id", [AUGUST]) == [
        ("superseded",),
        ("published",),
    ]
    [(participants,)] = _query(
        home, "select participants from mart.coverage where code = '3326' and month = '2022-08-01'"
    )
    assert participants == 827_100 + 10_000
    summary = _artifacts(state.state_details.flow_run_id)["jkn-run-summary"].data
    assert ": completed" in summary and "0 loaded, 3 already loaded, 0 refused" in summary
    assert "expectation(s) checked" in summary

    # A run that started and never finished (it crashed after publishing) is work too.
    con = database.connect(load_settings())
    try:
        con.execute(
            "insert into ops.runs (run_id, command, started_at, status) values ('dead', 'run', now(), 'running')"
        )
    finally:
        con.close()
    assert runs.pending_work(load_settings())["unfinished_runs"] == ["dead"]


@pytest.mark.slow
def test_backfill_recomputes_only_its_months_and_sends_nothing(jkn_env, published_home, monkeypatch, capsys):
    from flows.settings import PROJECT_ROOT

    home = _copy(published_home, jkn_env)
    before = {
        "trajectory": _query(home, "select * from mart.trajectory order by all"),
        "events": _query(home, "select count(*) from ops.alert_events"),
        "outbox": sorted(path.name for path in (home / "outbox").glob("*")),
        "load_log": _query(home, "select load_id, status from ops.load_log order by all"),
    }
    assert {row[0].strftime("%Y-%m") for row in before["trajectory"]} == {"2022-07", "2022-08"}

    # The national target is raised; a backfill of July recomputes July only.
    seeds = jkn_env.parent / "seeds"
    shutil.copytree(PROJECT_ROOT / "seeds", seeds)
    with (seeds / "targets.csv").open() as handle:
        targets = list(csv.DictReader(handle))
    for row in targets:
        if row["scope_code"] == "ID" and row["target_date"] == "2024-12-31":
            row["target_pct"] = "99.5"
    with (seeds / "targets.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(targets[0]))
        writer.writeheader()
        writer.writerows(targets)
    monkeypatch.setenv("JKN_SEEDS", str(seeds))

    code, out, _ = _main(monkeypatch, capsys, "run", "--from", "2022-07", "--to", "2022-07")
    assert code == 0, out
    assert "Backfill 2022-07 to 2022-07" in out
    assert "does not reach the latest month 2022-08" in out

    after = _query(home, "select * from mart.trajectory order by all")
    august_before = [row for row in before["trajectory"] if row[0].month == 8]
    assert [row for row in after if row[0].month == 8] == august_before  # outside the window: as published
    july_targets = {
        row[0]
        for row in _query(
            home, "select target_pct from mart.trajectory where month = '2022-07-01' and level = 'region'"
        )
    }
    assert july_targets == {99.5}
    assert _query(home, "select count(*) from ops.alert_events") == before["events"]
    assert sorted(path.name for path in (home / "outbox").glob("*")) == before["outbox"]
    assert _query(home, "select load_id, status from ops.load_log order by all") == before["load_log"]
    assert _query(home, "select command, status from ops.runs order by started_at desc limit 1") == [
        ("backfill", "completed")
    ]


def test_exit_codes_and_one_line_errors(jkn_env, prefect_server, monkeypatch, capsys):
    code, _, err = _main(monkeypatch, capsys, "run", "--from", "2021-13")
    assert code == 2 and "--from '2021-13'" in err

    _land(jkn_env, BATCH_ONE)
    with held_elsewhere("jkn run held-by-test") as pid:
        code, _, err = _main(monkeypatch, capsys, "run")
    assert code == 4
    assert "another run holds the database" in err and "held-by-test" in err and f"pid {pid}" in err
    assert "Traceback" not in err

    # Something nobody planned for (here the database file is not a DuckDB file): exit 1,
    # one line, the traceback in a log file.
    (jkn_env / "jkn.duckdb").write_text("not a database\n")
    code, _, err = _main(monkeypatch, capsys, "run")
    assert code == 1
    assert "Traceback" not in err
    [line, where] = err.strip().splitlines()
    assert line.startswith("error: the pipeline failed: ") and "not a valid DuckDB database" in line
    log_file = where.split("full traceback: ")[1]
    assert "Traceback" in open(log_file).read()


# Exit 3 (a critical check failed) through `jkn run` is tested in tests/test_checks_gate.py.


def test_runs_are_recorded_and_an_unfinished_one_is_marked_crashed(settings):
    from flows import database, runs
    from flows.errors import DataQualityError

    first = runs.Run("first-run")
    with pytest.raises(DataQualityError):
        with runs.recorded(settings, first, "run"):
            raise DataQualityError(
                "critical data-quality checks failed: build.coverage ...",
                failures=[{"suite": "build.coverage", "expectation": "at most 110%"}],
                details=["build.coverage ..."],
            )
    assert (first.status, first.exit_code, first.failures[0]["suite"]) == ("failed", 3, "build.coverage")
    assert first.error == "critical data-quality checks failed"

    con = database.connect(settings)
    try:
        con.execute(
            "insert into ops.runs (run_id, command, started_at, status) values ('killed-run', 'run', now(), 'running')"
        )
    finally:
        con.close()
    second = runs.Run("second-run")
    with runs.recorded(settings, second, "backfill"):
        pass
    con = database.connect(settings, read_only=True)
    try:
        rows = con.execute(
            "select run_id, command, status, finished_at is not null, summary->>'error' from ops.runs order by run_id"
        ).fetchall()
    finally:
        con.close()
    assert rows == [
        ("first-run", "run", "failed", True, "critical data-quality checks failed"),
        ("killed-run", "run", "crashed", False, None),
        ("second-run", "backfill", "completed", True, None),
    ]


# -- retries: network steps only -------------------------------------------------------------------


def test_only_network_steps_retry_and_time_out():
    from flows import pipeline

    network = {pipeline.download_stage, pipeline.alerts_stage}
    stages = [value for value in vars(pipeline).values() if hasattr(value, "retries") and hasattr(value, "fn")]
    assert network <= set(stages) and len(stages) > len(network)
    for stage in stages:
        if stage in network:
            assert stage.retries >= 1 and stage.timeout_seconds, stage.name
        else:
            assert not stage.retries, f"{stage.name} is not a network step and must not retry"


def test_a_download_that_keeps_failing_is_retried_by_prefect_but_a_bad_request_is_not(
    jkn_env, prefect_server, httpserver
):
    from werkzeug import Response

    from flows.errors import ConfigError
    from flows.pipeline import download_stage
    from flows.settings import load_settings

    body = (LANDING / "region_counts_2022-07.csv").read_bytes()
    calls = []

    def flaky(request):
        calls.append(request.path)
        # the download function itself tries 4 times; only Prefect's retry gets past this outage
        return Response("busy", status=503) if len(calls) <= 4 else Response(body, status=200)

    httpserver.expect_request("/region_counts_2022-07.csv").respond_with_handler(flaky)
    httpserver.expect_request("/notes.txt").respond_with_data("not an extract")
    settings = load_settings()
    quick = download_stage.with_options(retry_delay_seconds=0)

    path = quick(settings, httpserver.url_for("/region_counts_2022-07.csv"))
    assert len(calls) == 5
    assert open(path, "rb").read() == body

    with pytest.raises(ConfigError):
        quick(settings, httpserver.url_for("/notes.txt"))
    assert [entry[0].path for entry in httpserver.log].count("/notes.txt") == 1  # not retried
