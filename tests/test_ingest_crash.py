"""A load killed at any point (SIGKILL) leaves nothing registered, and the next run completes it.

A file's rows go to a Parquet part first and are registered in `ops.load_log` in one transaction
after; a kill before the commit leaves an unregistered part, which nothing reads and the next
ingest removes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from flows import generate

# Runs ingest in a child process that kills itself (SIGKILL: no cleanup, no rollback) at one point:
# just before the part is renamed into place, or inside the registering transaction, after its
# load_log row went in and before the commit.
KILLED_MID_LOAD = """
import os, signal, sys
from pathlib import Path
from flows import database, ingest
from flows.ingest import part
from flows.settings import load_settings

def kill(message):
    print(message, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

class KilledInRegister:
    def __init__(self, con):
        self.con = con
    def execute(self, sql, *args):
        result = self.con.execute(sql, *args)
        if sql.startswith("insert into ops.load_log"):
            kill("registered, not committed")
        return result
    def __getattr__(self, name):
        return getattr(self.con, name)

settings = load_settings()
con = database.connect(settings)
database.load_seeds(con, settings.seeds)
if sys.argv[2] == "before rename":
    os.replace = lambda source, target: kill("part written, not renamed")
else:
    con = KilledInRegister(con)
ingest.ingest_files(con, [Path(sys.argv[1])], pseudonym_key=settings.pseudonym_key)
print("not reached", flush=True)
"""


def database_state(path) -> tuple:
    con = duckdb.connect(str(path))  # opening replays the WAL, as the next run would
    try:
        if not con.execute("select count(*) from duckdb_views() where schema_name = 'raw'").fetchone()[0]:
            return (0, (0, None), 0)  # killed before it created the views
        return (
            con.execute("select count(*) from raw.participants").fetchone()[0],
            con.execute("select count(*), string_agg(status) from ops.load_log").fetchone(),
            con.execute("select count(*) from ops.rejects").fetchone()[0],
        )
    finally:
        con.close()


def part_files(home) -> list[str]:
    return sorted(path.name for path in (home / "jkn.duckdb.parts").rglob("*") if path.is_file())


def ingest_again(path) -> dict:
    done = subprocess.run([sys.executable, "-m", "flows.cli", "ingest", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.parametrize(
    "point, said", [("before rename", "part written, not renamed"), ("in register", "registered, not committed")]
)
def test_a_load_killed_before_its_commit_leaves_nothing_and_the_next_run_completes(jkn_env, tmp_path, point, said):
    [extract] = [
        path
        for path in generate.generate(tmp_path, participants=30_000, employers=50, workforce=0, regions=5, seed=3)
        if path.name.startswith("participants")
    ]
    child = subprocess.run([sys.executable, "-c", KILLED_MID_LOAD, str(extract), point], capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    assert said in child.stdout and "not reached" not in child.stdout

    database = jkn_env / "jkn.duckdb"
    assert database_state(database) == (0, (0, None), 0)
    assert part_files(jkn_env), "the killed load left its (unregistered) part behind"
    ingest_again(extract)
    assert database_state(database) == (30_000, (1, "staged"), 0)
    con = duckdb.connect(str(database), read_only=True)
    (sha256,) = con.execute("select sha256 from ops.load_log").fetchone()
    con.close()
    assert part_files(jkn_env) == [f"{sha256}.parquet"]  # the orphan was removed or replaced, nothing else


def test_loads_after_a_crash_get_new_ids(jkn_env, tmp_path):
    """Load ids come from ops.load_log itself: after a kill (no checkpoint), the next loads neither
    collide with committed ones nor fail."""
    files = generate.generate(tmp_path, participants=2_000, employers=20, workforce=20, regions=3, seed=5)
    first, *rest = sorted(files)
    ingest_again(first)
    child = subprocess.run(
        [sys.executable, "-c", KILLED_MID_LOAD, str(rest[0]), "in register"], capture_output=True, text=True
    )
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    for path in rest:
        ingest_again(path)
    con = duckdb.connect(str(jkn_env / "jkn.duckdb"), read_only=True)
    ids = [row[0] for row in con.execute("select load_id from ops.load_log order by load_id").fetchall()]
    con.close()
    assert ids == list(range(1, len(files) + 1))


def test_a_load_killed_at_any_moment_is_all_or_nothing(jkn_env, tmp_path):
    [extract] = [
        path
        for path in generate.generate(tmp_path, participants=60_000, employers=50, workforce=0, regions=5, seed=4)
        if path.name.startswith("participants")
    ]
    child = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "ingest", str(extract)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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
