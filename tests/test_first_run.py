"""The first run never fails for want of patience and always shows progress: Prefect's temporary
server gets a start-up timeout that fits a busy 2-core machine (and a clear message naming the setting
when it still does not start), and `jkn run` prints each stage as it starts and finishes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from tests.conftest import FIXTURES, TEST_KEY


def test_a_temporary_server_that_does_not_start_is_explained(jkn_env, tmp_path):
    shutil.copytree(FIXTURES / "landing_small", jkn_env / "landing")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "JKN_"))}
    env |= {
        "JKN_HOME": str(jkn_env),
        "JKN_PSEUDONYM_KEY": TEST_KEY,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Far too short for any machine: what a busy one sees with Prefect's own 20 s.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run"], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 1, done.stderr
    assert "Prefect's temporary server did not start within 1 s" in done.stderr
    assert "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in done.stderr and "PREFECT_API_URL" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (jkn_env / "jkn.duckdb").exists() or "Files:" not in done.stdout  # nothing ran


def test_jkn_raises_prefects_start_up_timeout_unless_it_is_set(monkeypatch):
    from flows import prefect_run

    monkeypatch.delenv(prefect_run.EPHEMERAL_TIMEOUT_SETTING, raising=False)
    prefect_run.quiet_prefect()
    assert os.environ[prefect_run.EPHEMERAL_TIMEOUT_SETTING] == "180"
    monkeypatch.setenv(prefect_run.EPHEMERAL_TIMEOUT_SETTING, "45")
    prefect_run.quiet_prefect()
    assert os.environ[prefect_run.EPHEMERAL_TIMEOUT_SETTING] == "45"  # the operator's own value wins


def test_jkn_run_prints_each_stage_with_rows_and_seconds(jkn_env, prefect_server, monkeypatch, capsys):
    from flows.cli import main

    shutil.copytree(FIXTURES / "landing_small", jkn_env / "landing")
    monkeypatch.setattr(sys, "argv", ["jkn", "run"])
    try:
        main()
    except SystemExit as exit_:
        assert exit_.code in (0, None)
    out = capsys.readouterr().out
    stages = ["ingest", "check staging", "build metrics", "check marts", "publish", "alerts", "report"]
    started = [line.split("  ", 1)[1] for line in out.splitlines() if line.endswith(" ...") and "  " in line]
    # alerts and report run side by side (flows/pipeline.py): either may start first
    assert started[:5] == [f"{stage} ..." for stage in stages[:5]]
    assert sorted(started[5:]) == ["alerts ...", "report ..."]
    for stage in stages:
        assert re.search(rf"^\d\d:\d\d:\d\d  {stage}: done in \d+\.\d s", out, re.MULTILINE), stage
    assert re.search(
        r"ingest: done in \d+\.\d s \(3 file\(s\) loaded, \d[\d,]* rows; 0 already loaded; 0 refused\)", out
    )
    # The stage lines come before the summary table.
    assert out.index("report: done") < out.index("Files: 3 loaded")
