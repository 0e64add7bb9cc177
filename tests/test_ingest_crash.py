"""A load killed half-way (SIGKILL) leaves no partial data, and the next run completes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import duckdb

from flows import generate

# Runs ingest in a child process that kills itself (SIGKILL: no cleanup, no rollback) right
# after the rows went into raw.participants, before the file's transaction commits.
KILLED_MID_LOAD = """
import os, signal, sys
from pathlib import Path
from flows import database, ingest
from flows.settings import load_settings

class KilledAfterInsert:
    def __init__(self, con):
        self.con = con
    def execute(self, sql, *args):
        result = self.con.execute(sql, *args)
        if sql.startswith("insert into raw.participants"):
            print("inserted, not committed", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    def __getattr__(self, name):
        return getattr(self.con, name)

settings = load_settings()
con = database.connect(settings)
database.load_seeds(con, settings.seeds)
ingest.ingest_files(KilledAfterInsert(con), [Path(sys.argv[1])], pseudonym_key=settings.pseudonym_key)
print("not reached", flush=True)
"""


def database_state(path) -> tuple:
    con = duckdb.connect(str(path))  # opening replays the WAL, as the next run would
    try:
        if not con.execute("select count(*) from duckdb_tables() where schema_name = 'raw'").fetchone()[0]:
            return (0, (0, None), 0)  # killed before it created the tables
        return (
            con.execute("select count(*) from raw.participants").fetchone()[0],
            con.execute("select count(*), string_agg(status) from ops.load_log").fetchone(),
            con.execute("select count(*) from ops.rejects").fetchone()[0],
        )
    finally:
        con.close()


def ingest_again(path) -> dict:
    done = subprocess.run([sys.executable, "-m", "flows.cli", "ingest", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_a_load_killed_after_its_insert_leaves_nothing_and_the_next_run_completes(jkn_env, tmp_path):
    # More rows than a DuckDB row group (122,880): the insert writes blocks to the file before commit.
    [extract] = [path for path in generate.generate(tmp_path, participants=130_000, employers=50, workforce=0,
                                                    regions=5, seed=3) if path.name.startswith("participants")]
    child = subprocess.run([sys.executable, "-c", KILLED_MID_LOAD, str(extract)], capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    assert "inserted, not committed" in child.stdout and "not reached" not in child.stdout

    database = jkn_env / "jkn.duckdb"
    assert database_state(database) == (0, (0, None), 0)
    ingest_again(extract)
    assert database_state(database) == (130_000, (1, "staged"), 0)


def test_a_load_killed_at_any_moment_is_all_or_nothing(jkn_env, tmp_path):
    [extract] = [path for path in generate.generate(tmp_path, participants=60_000, employers=50, workforce=0,
                                                    regions=5, seed=4) if path.name.startswith("participants")]
    child = subprocess.Popen([sys.executable, "-m", "flows.cli", "ingest", str(extract)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = jkn_env / "jkn.duckdb.lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        # the command writes who holds the database into the lock file once it has it
        if lock.exists() and "jkn ingest" in lock.read_text(errors="replace"):
            holder = json.loads(lock.read_text())
            assert holder["pid"] == child.pid
            time.sleep(0.3)  # into the load
            break
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    rows, (loads, status), rejects = database_state(jkn_env / "jkn.duckdb")
    assert (rows, loads, status, rejects) in ((0, 0, None, 0), (60_000, 1, "staged", 0))
    ingest_again(extract)
    assert database_state(jkn_env / "jkn.duckdb") == (60_000, (1, "staged"), 0)
