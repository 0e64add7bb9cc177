"""`jkn ingest URL`: downloads against a real HTTP server on 127.0.0.1 (pytest-httpserver)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time

import pytest
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug import Response

from flows import download
from flows.errors import ConfigError, PipelineError

EXTRACT = (
    b"kode_wilayah;segmen;status_peserta;jumlah_peserta\n33.25;PBI_APBN;AKTIF;600.000\n33.25;PBPU;NONAKTIF;102.109\n"
)
SHA256 = hashlib.sha256(EXTRACT).hexdigest()
PATH = "/extracts/region_counts_2022-08.csv"


@pytest.fixture
def httpserver():
    """A real HTTP server on 127.0.0.1 (pytest-httpserver's), one per test."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def fast(url, landing, expected=None, **options):
    """A download with short waits between attempts, so tests do not sleep long."""
    return download.download(url, landing, expected, backoff=0.01, **options)


def part_files(folder):
    return [path.name for path in folder.iterdir() if path.name.endswith(".part")] if folder.exists() else []


def test_downloads_into_the_landing_folder_under_the_extract_name(httpserver, tmp_path):
    httpserver.expect_request(PATH).respond_with_data(EXTRACT, content_type="text/csv")
    result = fast(httpserver.url_for(PATH), tmp_path / "landing", SHA256)
    assert result.path == tmp_path / "landing" / "region_counts_2022-08.csv"
    assert result.path.read_bytes() == EXTRACT
    assert (result.sha256, result.size, result.attempts) == (SHA256, len(EXTRACT), 1)
    assert part_files(tmp_path / "landing") == []


def test_a_server_that_fails_twice_is_retried_until_it_answers(httpserver, tmp_path):
    httpserver.expect_oneshot_request(PATH).respond_with_data("busy", status=503)
    httpserver.expect_oneshot_request(PATH).respond_with_data("oops", status=500)
    httpserver.expect_request(PATH).respond_with_data(EXTRACT)
    result = fast(httpserver.url_for(PATH), tmp_path)
    assert result.attempts == 3
    assert result.path.read_bytes() == EXTRACT
    assert len(httpserver.log) == 3


def test_a_timeout_is_retried(httpserver, tmp_path):
    def slow(request):
        time.sleep(1.0)
        return Response(EXTRACT)

    httpserver.expect_oneshot_request(PATH).respond_with_handler(slow)
    httpserver.expect_request(PATH).respond_with_data(EXTRACT)
    result = fast(httpserver.url_for(PATH), tmp_path, timeout=(5.0, 0.3))
    assert result.attempts == 2 and result.path.read_bytes() == EXTRACT


def test_retries_give_up_with_a_clear_error(httpserver, tmp_path):
    httpserver.expect_request(PATH).respond_with_data("busy", status=503)
    with pytest.raises(PipelineError, match=r"download failed after 3 attempts: HTTP 503"):
        fast(httpserver.url_for(PATH), tmp_path, retries=2)
    assert len(httpserver.log) == 3
    assert list(tmp_path.iterdir()) == []


def test_a_checksum_mismatch_keeps_nothing(httpserver, tmp_path):
    httpserver.expect_request(PATH).respond_with_data(EXTRACT)
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(PipelineError, match=f"checksum mismatch.*expected sha256 {wrong}, got {SHA256}"):
        fast(httpserver.url_for(PATH), tmp_path, wrong)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its partial download
    assert len(httpserver.log) == 1  # not retried: the same bytes would come again


def test_a_missing_file_is_not_retried(httpserver, tmp_path):
    httpserver.expect_request(PATH).respond_with_data("no", status=404)
    with pytest.raises(PipelineError, match="HTTP 404"):
        fast(httpserver.url_for(PATH), tmp_path)
    assert len(httpserver.log) == 1


def test_the_name_can_come_from_content_disposition(httpserver, tmp_path):
    httpserver.expect_request("/export").respond_with_data(
        EXTRACT, headers={"Content-Disposition": 'attachment; filename="../region_counts_2022-08.csv"'}
    )
    result = fast(httpserver.url_for("/export") + "?token=secret", tmp_path)
    assert result.path == tmp_path / "region_counts_2022-08.csv"  # a name only, never a path


def test_a_url_that_names_no_extract_is_a_usage_error(httpserver, tmp_path):
    httpserver.expect_request("/export").respond_with_data(EXTRACT)
    with pytest.raises(ConfigError, match="is not an extract file name"):
        fast(httpserver.url_for("/export"), tmp_path)
    assert part_files(tmp_path) == []


def test_messages_show_no_credentials_or_query():
    assert download.shown_url("https://user:pw@example.org:8443/a/b.csv?sig=abc") == "https://example.org:8443/a/b.csv"


def test_jkn_ingest_url_downloads_and_loads_after_two_failures(httpserver, jkn_env):
    from flows.cli import app

    httpserver.expect_oneshot_request(PATH).respond_with_data("busy", status=503)
    httpserver.expect_oneshot_request(PATH).respond_with_data("busy", status=502)
    httpserver.expect_request(PATH).respond_with_data(EXTRACT)
    result = CliRunner().invoke(app, ["ingest", httpserver.url_for(PATH), "--sha256", SHA256.upper()])
    assert result.exit_code == 0, result.output
    assert "region_counts_2022-08.csv" in result.output and "staged" in result.output
    assert (jkn_env / "landing" / "region_counts_2022-08.csv").read_bytes() == EXTRACT
    import duckdb

    con = duckdb.connect(str(jkn_env / "jkn.duckdb"), read_only=True)
    try:
        assert con.execute("select sum(participants) from raw.region_counts").fetchone()[0] == 702_109
        assert con.execute("select sha256 from ops.load_log").fetchall() == [(SHA256,)]
    finally:
        con.close()


def test_jkn_ingest_url_with_a_wrong_checksum_exits_1_and_loads_nothing(httpserver, jkn_env):
    httpserver.expect_request(PATH).respond_with_data(EXTRACT)
    wrong = "0" * 64
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "ingest", httpserver.url_for(PATH), "--sha256", wrong],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "checksum mismatch for region_counts_2022-08.csv" in done.stderr
    assert not (jkn_env / "landing").exists() or list((jkn_env / "landing").iterdir()) == []
    assert not (jkn_env / "jkn.duckdb").exists()


def test_sha256_goes_with_exactly_one_url(jkn_env, tmp_path):
    from flows.cli import app

    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "x.csv"), "--sha256", SHA256])
    assert result.exit_code == 2
    assert "--sha256 goes with exactly one URL" in result.output
    with pytest.raises(ConfigError, match="64 hexadecimal digits"):
        download.check_sha256("abc")
