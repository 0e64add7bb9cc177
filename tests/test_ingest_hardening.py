"""What real offices, networks and disks do to a batch, with real files and processes: a file's
failure is that file's (the rest of the batch loads), a file still being written is not loaded as
if complete, a link out of the landing folder is not followed, and a full disk stops the run with
its real cause. (Small bad inputs are in the corpus, tests/test_ingest_corpus.py.)"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import time

import duckdb

from flows import ingest
from tests.conftest import FIXTURES, TEST_KEY
from tests.test_disk_full import fill, small_disk  # noqa: F401 - the fixture

GOOD = FIXTURES / "landing_small" / "region_counts_2022-07.csv"


def ingest_with_a_good_file(con, bad_path):
    good = bad_path.parent / "region_counts_2022-06.csv"
    shutil.copy(GOOD, good)
    bad, loaded = ingest.ingest_files(con, [bad_path, good], pseudonym_key=TEST_KEY)
    assert loaded.status == "staged" and loaded.rows_loaded > 0  # the rest of the batch still loads
    return bad


def test_twenty_megabytes_without_a_line_end_are_refused_and_the_batch_goes_on(con, tmp_path):
    path = tmp_path / "region_counts_2022-08.csv"
    path.write_bytes(b"3325,PBPU,ACTIVE,1," * (20 * 2**20 // 19))
    bad = ingest_with_a_good_file(con, path)
    assert bad.status == "rejected"
    assert bad.message == (
        "region_counts_2022-08.csv, line 1: no line end in its first 1 MB: not a CSV extract "
        "(or a header longer than that)"
    )


def test_a_field_of_five_megabytes_is_refused_naming_its_line(con, tmp_path):
    path = tmp_path / "region_counts_2022-08.csv"
    path.write_text(
        "region_code,segment,status,participants\n3325,PBPU,ACTIVE,5\n"
        f"3326,PBPU,{'A' * 5_000_000},5\n3327,PBPU,ACTIVE,5\n"
    )
    bad = ingest_with_a_good_file(con, path)
    assert bad.status == "rejected"
    assert bad.message.startswith("region_counts_2022-08.csv, line 3: unreadable: a line longer than 2 MB"), bad.message


def test_old_mac_line_ends_in_a_gzip_load(con, tmp_path):
    path = tmp_path / "region_counts_2022-08.csv.gz"
    path.write_bytes(gzip.compress(GOOD.read_bytes().replace(b"\n", b"\r")))
    [result] = ingest.ingest_files(con, [path], pseudonym_key=TEST_KEY)
    assert (result.status, result.rows_loaded) == ("staged", len(GOOD.read_text().splitlines()) - 1)


def test_a_link_out_of_the_landing_folder_is_refused_not_followed(con, tmp_path):
    secret = tmp_path / "elsewhere" / "secret.csv"
    secret.parent.mkdir()
    secret.write_text("region_code,segment,status,participants\n3325,PBPU,ACTIVE,424242\n")
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "region_counts_2022-08.csv").symlink_to(secret)
    [result] = ingest.ingest_files(con, ingest.discover(landing), pseudonym_key=TEST_KEY)
    assert result.status == "rejected" and "is a link to a file outside the landing folder" in result.message
    assert "424242" not in result.message and str(secret) not in result.message
    assert con.execute("select count(*) from raw.region_counts").fetchone()[0] == 0
    [again] = ingest.ingest_files(con, ingest.discover(landing), pseudonym_key=TEST_KEY)
    assert again.status == "skipped"  # refused once, not again every run


WRITER = """
import os, sys, time
# appends until told to stop (however long the read takes on a busy machine), at most 5 minutes
stop, deadline, number = sys.argv[2], time.monotonic() + 300, 0
with open(sys.argv[1], "a") as handle:
    while not os.path.exists(stop) and time.monotonic() < deadline:
        for _ in range(100):
            handle.write(f"91200{number:08d},PT {number},3325,{number}\\n")
            number += 1
        handle.flush()
        time.sleep(0.005)
"""


def test_a_file_still_being_written_is_not_loaded_until_it_is_complete(jkn_env, tmp_path):
    """A real writer process appends to the file while `jkn ingest` reads it (an upload in progress)."""
    path = tmp_path / "landing" / "workforce_2022-08.csv"
    path.parent.mkdir()
    path.write_text("business_id,name,region_code,workers\n")
    stop = tmp_path / "stop-writing"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(stop)])
    try:
        while path.stat().st_size < 100_000:  # the upload is under way
            assert writer.poll() is None, "the writer died"
            time.sleep(0.05)
        during = subprocess.run(
            [sys.executable, "-m", "flows.cli", "ingest", str(path)], capture_output=True, text=True, timeout=120
        )
        assert writer.poll() is None, "the writer finished before the read: nothing was tested"
    finally:
        stop.touch()
        writer.wait(timeout=60)
    assert "changed while it was read" in during.stdout, during.stdout + during.stderr
    after = subprocess.run(
        [sys.executable, "-m", "flows.cli", "ingest", str(path)], capture_output=True, text=True, timeout=120
    )
    assert after.returncode == 0, after.stdout + after.stderr
    con = duckdb.connect(str(jkn_env / "jkn.duckdb"), read_only=True)
    try:
        written = sum(1 for _ in path.open()) - 1  # every row the writer wrote, header aside
        assert con.execute("select count(*), count(distinct load_id) from raw.workforce").fetchone() == (written, 1)
        assert con.execute("select count(*) from ops.load_log").fetchone()[0] == 1  # the partial read left nothing
    finally:
        con.close()
    assert [p.name for p in (jkn_env / "jkn.duckdb.parts").rglob("*") if p.is_file()] == [
        f"{ingest.file_sha256(path)}.parquet"
    ]


def test_a_full_disk_during_ingest_names_the_real_cause(jkn_env, small_disk, monkeypatch):  # noqa: F811
    home = small_disk / "home"
    monkeypatch.setenv("JKN_HOME", str(home))
    landing = home / "landing"
    shutil.copytree(FIXTURES / "landing_small", landing)
    first = subprocess.run(
        [sys.executable, "-m", "flows.cli", "ingest"], env=dict(os.environ), capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    (landing / "region_counts_2022-09.csv").write_text(
        "region_code,segment,status,participants\n" + "".join(f"3325,PBPU,ACTIVE,{n}\n" for n in range(1))
    )
    fill(small_disk)
    full = subprocess.run(
        [sys.executable, "-m", "flows.cli", "ingest"], env=dict(os.environ), capture_output=True, text=True, timeout=300
    )
    output = full.stdout + full.stderr
    assert full.returncode == 1, output
    assert "Traceback" not in output and "no transaction is active" not in output
    assert "no space left" in output.lower(), output
