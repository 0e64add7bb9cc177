"""Operations across processes, the way data engineers run it: a real Prefect server on 127.0.0.1,
`prefect deploy` from prefect.yaml, a process worker, `jkn serve`, two `jkn run` at once, and a run
killed half-way through the metrics stage.

Every subprocess gets its own environment: PREFECT_HOME under tmp_path, PREFECT_API_URL pointing at
this module's server (never the session's test harness), analytics off, and only the JKN_ settings
the test sets.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from flows.settings import PROJECT_ROOT
from tests.conftest import FIXTURES, TEST_KEY

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
LANDING = FIXTURES / "landing_small"
AUGUST = "region_counts_2022-08.csv"
PUBLISHED_AUGUST = {"3375": 86.18, "3325": 85.73, "3327": 85.16, "3326": 83.70}
WAIT = 180  # seconds; generous for a loaded 2-core machine, never reached when things work


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _clean_environment() -> dict:
    return {name: value for name, value in os.environ.items() if not name.upper().startswith(("PREFECT_", "JKN_"))}


def _wait_for(condition, what: str, timeout: float = WAIT, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            pytest.fail(f"{what}: the process ended first (exit {process.returncode})")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


class Server:
    def __init__(self, url: str, home: Path):
        self.url = url
        self.home = home

    def environment(self, jkn_home: Path | None = None, **extra: str) -> dict:
        env = {
            **_clean_environment(),
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            **extra,
        }
        if jkn_home is not None:
            env |= {"JKN_HOME": str(jkn_home), "JKN_PSEUDONYM_KEY": TEST_KEY}
        return env

    def client(self):
        from prefect.client.orchestration import SyncPrefectClient

        return SyncPrefectClient(self.url)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`prefect server start` on a free 127.0.0.1 port, with its own PREFECT_HOME; the
    scheduler is off so no scheduled run appears while the tests trigger theirs."""
    home = tmp_path_factory.mktemp("prefect")
    port = _free_port()
    env = {
        **_clean_environment(),
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    }
    log = (home / "server.log").open("w")
    process = subprocess.Popen(
        [BIN / "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"

    def healthy():
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        _wait_for(healthy, "the Prefect server", process=process)
        yield Server(url, home)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _prefect(server: Server, *args: str, env: dict | None = None) -> str:
    result = subprocess.run(
        [BIN / "prefect", "--no-prompt", *args],
        cwd=PROJECT_ROOT,
        env=env or server.environment(),
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert result.returncode == 0, f"prefect {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _landing(home: Path, names=None) -> Path:
    landing = home / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    for name in names or [path.name for path in LANDING.iterdir()]:
        shutil.copy2(LANDING / name, landing / name)
    return landing


def _query(home: Path, sql: str, params=()):
    con = duckdb.connect(str(home / "jkn.duckdb"), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


# What a login shell or a service manager typically sets: files world-readable unless jkn says otherwise.
OFFICE_UMASK = 0o022


def _jkn(server: Server, home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "jkn", *args],
        env=server.environment(home, **extra),
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=WAIT,
        umask=OFFICE_UMASK,
    )


def _start_jkn(server: Server, home: Path, *args: str, argv=None, **extra: str) -> subprocess.Popen:
    out = (home.parent / f"jkn-{time.monotonic_ns()}.log").open("w")
    process = subprocess.Popen(
        argv or [BIN / "jkn", *args],
        env=server.environment(home, **extra),
        cwd=home.parent,
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
        umask=OFFICE_UMASK,
    )
    process.log_path = Path(out.name)
    return process


def _output(process: subprocess.Popen) -> str:
    return process.log_path.read_text()


def _flow_run_id(stdout: str) -> str:
    return next(line.split("UUID:")[1].strip() for line in stdout.splitlines() if "UUID:" in line)


def _final_state(server: Server, flow_run_id: str):
    with server.client() as client:
        return _wait_for(
            lambda: (state := client.read_flow_run(flow_run_id).state) and state.is_final() and state,
            f"flow run {flow_run_id} to finish",
        )


def _artifacts(server: Server, flow_run_id: str) -> dict:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with server.client() as client:
        found = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {artifact.key: artifact for artifact in found}


def _schedules(server: Server) -> dict:
    with server.client() as client:
        found = {}
        for name in ("monthly", "landing-watch"):
            deployment = client.read_deployment_by_name(f"jkn-pipeline/{name}")
            found[name] = {
                "schedules": [item.schedule.model_dump(exclude={"anchor_date"}) for item in deployment.schedules],
                "parameters": deployment.parameters,
                "limit": deployment.global_concurrency_limit.limit,
                "collision_strategy": deployment.concurrency_options.collision_strategy.value,
            }
    return found


def test_deploy_from_prefect_yaml_run_by_worker_and_by_serve(server, tmp_path):
    home = tmp_path / "home"
    _landing(home)
    env = server.environment(home)
    _prefect(server, "work-pool", "create", "jkn", "--type", "process", env=env)
    _prefect(server, "deploy", "--all", env=env)

    deployed = _schedules(server)
    assert deployed["monthly"]["schedules"] == [{"cron": "0 6 5 * *", "timezone": "Asia/Jakarta", "day_or": True}]
    assert deployed["landing-watch"]["schedules"][0]["interval"] == timedelta(minutes=15)
    assert deployed["monthly"]["collision_strategy"] == "ENQUEUE"
    assert deployed["landing-watch"]["collision_strategy"] == "CANCEL_NEW"
    assert {item["limit"] for item in deployed.values()} == {1}

    # The monthly deployment, triggered by hand and executed by a process worker.
    flow_run_id = _flow_run_id(_prefect(server, "deployment", "run", "jkn-pipeline/monthly", env=env))
    worker = subprocess.run(
        [BIN / "prefect", "worker", "start", "--pool", "jkn", "--run-once"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert worker.returncode == 0, worker.stdout + worker.stderr
    state = _final_state(server, flow_run_id)
    assert state.is_completed(), f"{state}\n{worker.stdout}\n{worker.stderr}"
    artifacts = _artifacts(server, flow_run_id)
    assert set(artifacts) == {"jkn-run-summary", "jkn-coverage-by-region", "jkn-report"}
    assert "3 loaded, 0 already loaded, 0 refused" in artifacts["jkn-run-summary"].data
    coverage = {row["region_code"]: row["coverage_pct"] for row in json.loads(artifacts["jkn-coverage-by-region"].data)}
    assert coverage == pytest.approx(PUBLISHED_AUGUST, abs=0.01)
    assert (home / "report" / "index.html").resolve().as_uri() in artifacts["jkn-report"].data
    assert _query(home, "select distinct status from ops.load_log") == [("published",)]

    # `jkn serve` registers the same deployments from the same file, and runs them itself.
    serve = _start_jkn(server, home, "serve", PREFECT_RUNNER_POLL_FREQUENCY="1")
    try:
        _wait_for(lambda: "polling for scheduled runs" in _output(serve), "jkn serve to start", process=serve)
        assert _schedules(server) == deployed
        flow_run_id = _flow_run_id(_prefect(server, "deployment", "run", "jkn-pipeline/landing-watch", env=env))
        state = _final_state(server, flow_run_id)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=WAIT)
    assert state.is_completed(), _output(serve)
    summary = _artifacts(server, flow_run_id)["jkn-run-summary"].data
    assert "nothing new" in summary  # the watch found no new file and did nothing


@pytest.fixture(scope="module")
def contended(server, tmp_path_factory) -> dict:
    """Three `jkn run` on one database at once: the first is frozen (SIGSTOP) while it holds the
    database; a second, told not to wait, is refused; a third waits; then the first goes on."""
    home = tmp_path_factory.mktemp("contended") / "home"
    _landing(home)
    lock = home / "jkn.duckdb.lock"
    first = _start_jkn(server, home, "run")

    def holder():
        try:
            return json.loads(lock.read_text() or "{}").get("pid") == first.pid
        except (OSError, ValueError):
            return False

    _wait_for(holder, "the first run to take the database", process=first)
    os.kill(first.pid, signal.SIGSTOP)  # hold it mid-run, the lock taken
    try:
        refused = _start_jkn(server, home, "run", JKN_LOCK_TIMEOUT="0")
        waiting = _start_jkn(server, home, "run", JKN_LOCK_TIMEOUT="300")
        refused.wait(timeout=WAIT)
        _wait_for(lambda: "waiting up to 300 s" in _output(waiting), "the third run to wait", process=waiting)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    first.wait(timeout=WAIT)
    waiting.wait(timeout=WAIT)
    return {"home": home, "first": first, "refused": refused, "waiting": waiting}


def test_two_runs_at_once_one_waits_or_is_refused(contended):
    home, first, refused, waiting = (contended[key] for key in ("home", "first", "refused", "waiting"))
    assert refused.returncode == 4, _output(refused)
    assert f"pid {first.pid} on {socket.gethostname()} (jkn run " in _output(refused)
    assert "since 20" in _output(refused) and "Traceback" not in _output(refused)
    assert first.returncode == 0, _output(first)
    assert waiting.returncode == 0, _output(waiting)
    assert "Files: 3 loaded" in _output(first)
    assert "Files: 0 loaded, 3 already loaded" in _output(waiting)

    # The data is intact: each file loaded once, every row once, the published figures.
    assert _query(home, "select file_name, status from ops.load_log order by file_name") == [
        (name, "published") for name in sorted(path.name for path in LANDING.iterdir())
    ]
    assert _query(home, "select count(*) from raw.region_counts") == _query(
        home, "select sum(rows_loaded) from ops.load_log where kind = 'region_counts'"
    )
    coverage = dict(
        _query(home, "select code, coverage_pct from mart.coverage where level = 'region' and month = '2022-08-01'")
    )
    assert coverage == pytest.approx(PUBLISHED_AUGUST, abs=0.01)


def test_what_the_runs_created_is_readable_by_the_owner_only(contended):
    """Database, lock, outbox, report, Data Docs, DuckDB's spill folder: none readable by group or others,
    although the runs started with umask 022. The landing folder is the test's, not jkn's."""
    home = contended["home"]
    created = [path for path in home.rglob("*") if "landing" not in path.relative_to(home).parts]
    names = {path.relative_to(home).parts[0] for path in created}
    assert {"jkn.duckdb", "jkn.duckdb.lock", "outbox", "report", "tmp"} <= names, names
    readable = [
        f"{path.relative_to(home)} {stat.S_IMODE(path.stat().st_mode):o}"
        for path in created
        if path.stat().st_mode & 0o077
    ]
    assert readable == []


# Run `jkn run` with metrics.build stopping half-way: the intermediate models are rebuilt in `build`,
# the marts are not yet; it says so on stdout and waits to be killed. The hook lives here, in the
# test; production code has no test-only path.
HALF_WAY = r"""
import os
import sys
from flows import metrics
from flows.cli import main

original = metrics.build


def build(con, population_lag_months=0, layers=("staging", "intermediate", "marts")):
    if "marts" not in layers:
        return original(con, population_lag_months, layers)
    original(con, population_lag_months, tuple(layer for layer in layers if layer != "marts"))
    # (the marker is joined at run time so that no echo of this source can match it)
    os.write(1, ("PAUSED " + "IN THE METRICS STAGE\n").encode())
    import time
    time.sleep(600)


metrics.build = build
sys.argv = ["jkn", "run"]
main()
"""


def _marts(home: Path) -> dict:
    from flows.metrics import mart_names

    con = duckdb.connect(str(home / "jkn.duckdb"), read_only=True)
    try:
        present = {
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables where table_schema = 'mart'"
            ).fetchall()
        }
        return {
            name: con.execute(f"select * from mart.{name} order by all").fetchall()
            for name in mart_names()
            if name in present
        }
    finally:
        con.close()


def test_run_killed_in_the_metrics_stage_is_finished_by_the_next_run(server, contended, tmp_path):
    # For comparison: the same three files through uninterrupted runs (the contended ones above).
    reference_home = contended["home"]
    assert contended["first"].returncode == 0

    home = tmp_path / "crashed" / "home"
    landing = _landing(home, ["population_2022-S1.csv", "region_counts_2022-07.csv"])
    first = _jkn(server, home, "run")
    assert first.returncode == 0, first.stdout + first.stderr
    published_before = _marts(home)
    assert published_before["coverage"]

    shutil.copy2(LANDING / AUGUST, landing / AUGUST)
    crashing = _start_jkn(server, home, argv=[sys.executable, "-c", HALF_WAY])
    _wait_for(
        lambda: "PAUSED IN THE METRICS STAGE" in _output(crashing),
        "the run to reach the metrics stage",
        process=crashing,
    )
    crashing.send_signal(signal.SIGKILL)
    crashing.wait(timeout=WAIT)

    # Killed: August is staged, built into the intermediate tables, but nothing reached `mart`.
    assert _query(home, "select status from ops.load_log where file_name = ?", [AUGUST]) == [("staged",)]
    august_load = _query(home, "select load_id, rows_loaded from ops.load_log where file_name = ?", [AUGUST])
    built_with_month = [
        row[0]
        for row in _query(
            home,
            "select table_name from information_schema.columns where table_schema = 'build' "
            "and column_name = 'month' and table_name <> 'coverage'",
        )
    ]
    assert any(
        _query(home, f"select count(*) from build.{name} where month = '2022-08-01'")[0][0] for name in built_with_month
    )
    assert _query(home, "select count(*) from build.coverage where month = '2022-08-01'") == [(0,)]
    assert _marts(home) == published_before
    assert _query(home, "select status from ops.runs order by started_at") == [("completed",), ("running",)]

    rerun = _jkn(server, home, "run")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "Files: 0 loaded, 3 already loaded" in rerun.stdout  # nothing loaded again
    assert _query(home, "select load_id, rows_loaded from ops.load_log where file_name = ?", [AUGUST]) == august_load
    assert _query(home, "select distinct status from ops.load_log") == [("published",)]
    assert _query(home, "select status from ops.runs order by started_at") == [
        ("completed",),
        ("crashed",),
        ("completed",),
    ]

    assert _marts(home) == _marts(reference_home)


def test_readers_on_the_snapshot_never_block_a_run_and_see_one_published_state(server, tmp_path):
    """`jkn status` and a notebook-style reader loop while `jkn run` ingests, publishes and alerts:
    the run succeeds, every read succeeds, and each read sees one whole published state (the
    snapshot's own record of its month matches the marts it holds)."""
    home = tmp_path / "home"
    landing = home / "landing"
    landing.mkdir(parents=True)
    for name in ("population_2022-S1.csv", "region_counts_2022-07.csv"):
        shutil.copy(LANDING / name, landing / name)
    first = _jkn(server, home, "run")
    assert first.returncode == 0, first.stdout + first.stderr
    snapshot = home / "jkn.published.duckdb"
    shutil.copy(LANDING / AUGUST, landing / AUGUST)
    run = _start_jkn(server, home, "run")
    months, statuses = set(), []
    while run.poll() is None:
        con = duckdb.connect(str(snapshot), read_only=True)
        try:
            recorded, latest = con.execute(
                "select (select latest_month from ops.snapshot), (select max(month) from mart.coverage)"
            ).fetchone()
        finally:
            con.close()
        assert recorded == latest
        months.add(latest.isoformat())
        if len(statuses) < 3:
            statuses.append(_jkn(server, home, "status"))
    assert run.wait(timeout=WAIT) == 0, _output(run)
    assert all(status.returncode == 0 for status in statuses), [s.stderr for s in statuses]
    assert "Could not set lock" not in _output(run)
    assert months <= {"2022-07-01", "2022-08-01"} and statuses
    after = _jkn(server, home, "status")
    assert after.returncode == 0 and "2022-08" in after.stdout
