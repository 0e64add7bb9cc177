"""Every failure reaches someone: a refused file (exit 5, the rest published), a failed critical
check (exit 3), a crash (exit 1) and a delivery pending too long each send a notice to the `ops`
recipients, in their language, naming the file or batch month, the reason and the command to retry.
Through `jkn run` (the real entry point) on the session's Prefect test server, with the ops webhook
a real HTTP server on 127.0.0.1; the flow run's state and logs are read back from Prefect."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time

import duckdb
import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import FIXTURES

LANDING = FIXTURES / "landing_small"
# An employer paying more than it owes fails a critical check (a missing region is only a warning).
OVERPAID = FIXTURES / "checks" / "overpaid_employer" / "employers_2022-09.csv"


def _jkn(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    from flows.cli import main

    monkeypatch.setattr(sys, "argv", ["jkn", *args])
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = 0 if exit_.code is None else exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def _routing(tmp_path, httpserver: HTTPServer, language: str) -> str:
    routing = tmp_path / "recipients.csv"
    routing.write_text(
        "scope_code,channel,address,language,digest\n"
        f"ops,webhook,{httpserver.url_for('/ops')},{language},true\n"
        "ID,outbox,,en,true\n"
    )
    return str(routing)


def _ops_posts(httpserver: HTTPServer) -> list[dict]:
    return [json.loads(request.data) for request, _ in httpserver.log if request.path == "/ops"]


def _latest_flow_run():
    """The newest jkn-pipeline flow run on the Prefect server, with its log lines."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)

    async def read():
        async with get_client() as client:
            [flow_run] = await client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)
            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run.id])))
            return flow_run, [log.message for log in logs]

    return asyncio.run(read())


@pytest.fixture
def ops_webhook(jkn_env, tmp_path, httpserver, monkeypatch):
    httpserver.expect_request("/ops", method="POST").respond_with_data("ok")
    monkeypatch.setenv("JKN_RECIPIENTS", _routing(tmp_path, httpserver, "en"))
    monkeypatch.setenv("JKN_DELIVERY_RETRIES", "0")
    return httpserver


@pytest.mark.slow
def test_a_refused_file_exits_5_publishes_the_rest_and_tells_ops(
    jkn_env, prefect_server, ops_webhook, monkeypatch, capsys
):
    landing = jkn_env / "landing"
    shutil.copytree(LANDING, landing)
    # September without its counts column: refused whole.
    (landing / "region_counts_2022-09.csv").write_text("kode_wilayah;segmen;status_peserta\n33.25;PBPU;AKTIF\n")

    code, out, err = _jkn(monkeypatch, capsys, "run")

    assert code == 5, err
    assert "Files: 3 loaded, 0 already loaded, 1 refused" in out
    assert "region_counts_2022-09.csv" in err and "refused whole" in err
    con = duckdb.connect(str(jkn_env / "jkn.duckdb"), read_only=True)
    try:
        published = con.execute("select count(*) from mart.coverage where month = '2022-08-01'").fetchone()[0]
        statuses = dict(con.execute("select file_name, status from ops.load_log").fetchall())
        runs = con.execute("select status from ops.runs").fetchall()
    finally:
        con.close()
    assert published > 0  # the rest of the batch was published
    assert statuses["region_counts_2022-09.csv"] == "rejected"
    assert runs == [("completed",)]

    [notice] = [post for post in _ops_posts(ops_webhook) if post["alerts"][0]["rule"] == "file_refused"]
    assert notice["month"] == "2022-09" and notice["recipient"] == "ops"
    [item] = notice["alerts"]
    assert item["code"] == "region_counts_2022-09.csv"
    assert "participants" in item["detail"]  # the missing column is the reason
    assert item["retry_command"] == f"jkn ingest {landing / 'region_counts_2022-09.csv'} && jkn run"
    assert "September 2022" in notice["text"] and item["retry_command"] in notice["text"]

    flow_run, logs = _latest_flow_run()
    assert flow_run.state.is_failed()  # a scheduled run shows Failed
    assert any("1 landing file(s) refused whole" in line for line in logs)

    # The next run has nothing new: the refused file is not tried again, nobody is told again, exit 0.
    code, out, err = _jkn(monkeypatch, capsys, "run")
    assert code == 0, err
    assert len([p for p in _ops_posts(ops_webhook) if p["alerts"][0]["rule"] == "file_refused"]) == 1


@pytest.mark.slow
def test_a_failed_critical_check_tells_ops_the_batch_month_files_and_retry_in_their_language(
    jkn_env, prefect_server, httpserver, tmp_path, monkeypatch, capsys
):
    httpserver.expect_request("/ops", method="POST").respond_with_data("ok")
    monkeypatch.setenv("JKN_RECIPIENTS", _routing(tmp_path, httpserver, "id"))
    landing = jkn_env / "landing"
    shutil.copytree(LANDING, landing)
    assert _jkn(monkeypatch, capsys, "run")[0] == 0
    shutil.copy(OVERPAID, landing)  # September: E002 paid more than it owed

    code, _, err = _jkn(monkeypatch, capsys, "run")

    assert code == 3
    # One line per failed check on the terminal.
    assert "\n  staging.employers: contribution paid is never above contribution due" in err
    [notice] = [post for post in _ops_posts(httpserver) if post["alerts"][0]["rule"] == "checks_failed"]
    [item] = notice["alerts"]
    assert notice["month"] == "2022-09"  # the failing batch, not the last published month (August)
    assert "Batch September 2022 gagal" in notice["text"]  # Indonesian, as routed
    assert "file: employers_2022-09.csv" in item["items"]
    assert any("employer_id=E002" in line for line in item["items"])
    assert item["retry_command"].startswith("jkn run")
    assert "Untuk mengulang: jkn run" in notice["text"]

    flow_run, logs = _latest_flow_run()
    assert flow_run.state.is_failed()
    assert "\\n" not in flow_run.state.message  # Prefect's state line holds no literal \n
    assert not any("\\n" in line for line in logs), [line for line in logs if "\\n" in line]
    [lines] = [line for line in logs if line.startswith("critical data-quality checks failed")]
    assert "\n  staging.employers:" in lines  # the log shows the checks as lines


def test_a_crash_tells_ops_even_when_the_database_is_what_failed(
    jkn_env, prefect_server, ops_webhook, monkeypatch, capsys
):
    shutil.copytree(LANDING, jkn_env / "landing")
    (jkn_env / "jkn.duckdb").write_text("not a database\n")

    code, _, err = _jkn(monkeypatch, capsys, "run")

    assert code == 1 and "error: the pipeline failed" in err
    [notice] = [post for post in _ops_posts(ops_webhook) if post["alerts"][0]["rule"] == "run_failed"]
    [item] = notice["alerts"]
    assert "not a valid DuckDB database" in item["detail"]
    assert item["retry_command"].startswith("jkn run")
    assert "The pipeline run stopped on an error" in notice["text"] and "To retry: jkn run" in notice["text"]
    flow_run, logs = _latest_flow_run()
    assert flow_run.state.is_failed()
    assert any("not a valid DuckDB database" in line for line in logs)


def test_a_configuration_error_in_a_run_reaches_ops_on_one_line(
    jkn_env, prefect_server, ops_webhook, tmp_path, monkeypatch, capsys
):
    shutil.copytree(LANDING, jkn_env / "landing")
    seeds = tmp_path / "seeds"
    shutil.copytree(FIXTURES.parent.parent / "seeds", seeds)
    (seeds / "regions.csv").write_text("region_code,region_name\n3325,Kab. Batang,too,many,fields\n")
    monkeypatch.setenv("JKN_SEEDS", str(seeds))

    code, _, err = _jkn(monkeypatch, capsys, "run")

    assert code == 2 and "regions.csv: cannot read seed" in err
    [notice] = [post for post in _ops_posts(ops_webhook) if post["alerts"][0]["rule"] == "run_failed"]
    assert "regions.csv: cannot read seed" in notice["alerts"][0]["detail"]
    flow_run, _ = _latest_flow_run()
    assert flow_run.state.is_failed() and "\\n" not in flow_run.state.message  # DuckDB's lines joined


@pytest.mark.slow
def test_a_delivery_pending_too_long_reaches_ops_once(
    jkn_env, prefect_server, httpserver, tmp_path, monkeypatch, capsys
):
    # The nation's webhook keeps answering 503; ops reads its outbox.
    httpserver.expect_request("/national", method="POST").respond_with_data("busy", status=503)
    routing = tmp_path / "recipients.csv"
    routing.write_text(
        "scope_code,channel,address,language,digest\n"
        f"ID,webhook,{httpserver.url_for('/national')},en,true\nops,outbox,,en,true\n"
    )
    monkeypatch.setenv("JKN_RECIPIENTS", str(routing))
    monkeypatch.setenv("JKN_DELIVERY_RETRIES", "0")
    monkeypatch.setenv("JKN_PENDING_ALERT_HOURS", "0.0005")  # 1.8 s
    shutil.copytree(LANDING, jkn_env / "landing")
    outbox = jkn_env / "outbox"

    assert _jkn(monkeypatch, capsys, "run")[0] == 0  # pending is not a failure of the run
    assert not list(outbox.glob("*delivery_pending*.json"))  # not late yet
    time.sleep(2)
    assert _jkn(monkeypatch, capsys, "run")[0] == 0
    [notice_file] = outbox.glob("*delivery_pending*.json")
    notice = json.loads(notice_file.read_text())
    [item] = notice["alerts"]
    assert item["rule"] == "delivery_pending" and notice["month"] == "2022-08"
    assert "still undelivered" in item["detail"] and "HTTP 503" in item["detail"]
    assert item["retry_command"].startswith("jkn alerts")
    assert httpserver.url_for("/national") not in notice_file.read_text()  # the URL may hold a token

    assert _jkn(monkeypatch, capsys, "run")[0] == 0
    assert len(list(outbox.glob("*delivery_pending*.json"))) == 1  # told once per message
