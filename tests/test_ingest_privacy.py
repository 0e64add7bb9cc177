"""A known NIK goes into an extract; afterwards it is nowhere: not in the DuckDB file or its WAL,
not in any file under JKN_HOME, not in the logs or what the command printed."""

from __future__ import annotations

import logging
import subprocess
import sys

import duckdb

from flows import database, ingest
from tests.conftest import TEST_KEY

KNOWN_NIK = "3326016208950123"  # valid: a woman born 22 Aug 1995, registered in 33.26
BAD_DAY_NIK = "3326013508950456"  # day 35: rejected, must appear masked only
CARD_NO = "0004242424242"  # stored in clear: proves the byte search can find a stored value


def all_bytes(home) -> bytes:
    """Every file's bytes, and for each Parquet part (compressed, so a byte search would miss a value)
    every value of every column, decoded, as text."""
    found = []
    for path in sorted(home.rglob("*")):
        if not path.is_file():
            continue
        found.append(path.read_bytes())
        if path.suffix == ".parquet":
            con = duckdb.connect()
            try:
                values = con.execute(
                    f"select columns(*)::varchar from read_parquet('{path}', hive_partitioning = false)"
                ).fetchall()
            finally:
                con.close()
            found.append(repr(values).encode())
    return b"".join(found)


def test_a_known_nik_is_nowhere_after_ingest(jkn_env, settings, caplog, tmp_path):
    extract = tmp_path / "participants_2022-09.csv"
    extract.write_text(
        "noka,nik,kode_wilayah,segmen,status_peserta\n"
        f"{CARD_NO},{KNOWN_NIK},33.26,PBPU,AKTIF\n"
        f"0004242424243,{BAD_DAY_NIK},33.26,PBPU,AKTIF\n"
        "0004242424244,3326011503900009,33.26,PBPU,AKTIF\n",
        encoding="utf-8",
    )
    caplog.set_level(logging.DEBUG)
    con = database.connect(settings)
    # Store strings as they are, so a NIK written anywhere would show up byte for byte.
    con.execute("pragma force_compression = 'uncompressed'")
    database.load_seeds(con, settings.seeds)
    [result] = ingest.ingest_files(con, [extract], 50.0, pseudonym_key=TEST_KEY)
    assert result.status == "staged" and (result.rows_loaded, result.rows_rejected) == (2, 1)
    assert con.execute("select value from ops.rejects").fetchall() == [("3326************",)]

    # The same file refused whole (threshold 0), through the command line this time.
    refused = tmp_path / "refused" / "participants_2022-10.csv"
    refused.parent.mkdir()
    refused.write_text(extract.read_text(encoding="utf-8").replace(CARD_NO, "0004242424249"), encoding="utf-8")
    before_checkpoint = all_bytes(jkn_env)
    con.close()
    cli = subprocess.run(
        [sys.executable, "-m", "flows.cli", "ingest", str(refused)],
        capture_output=True,
        text=True,
        env={**_environment(), "JKN_REJECT_THRESHOLD_PCT": "0"},
    )
    assert cli.returncode == 1 and "more than the 0% allowed" in cli.stdout, cli.stdout + cli.stderr
    con = database.connect(settings)
    con.execute("checkpoint")
    con.close()
    after_checkpoint = all_bytes(jkn_env)

    assert CARD_NO.encode() in before_checkpoint + after_checkpoint  # the search does see stored values
    for nik in (KNOWN_NIK, BAD_DAY_NIK):
        assert nik.encode() not in before_checkpoint
        assert nik.encode() not in after_checkpoint
        assert nik not in caplog.text
        assert nik not in cli.stdout + cli.stderr
    assert any(path.suffix == ".duckdb" for path in jkn_env.rglob("*"))
    assert any(path.suffix == ".parquet" for path in jkn_env.rglob("*"))  # the parts were searched too


def _environment() -> dict[str, str]:
    import os

    return {name: value for name, value in os.environ.items()}
