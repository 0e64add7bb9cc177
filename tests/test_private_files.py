"""Files jkn creates holding personal data are readable by their owner only: a real `jkn ingest`
started with the usual umask 022, and a database an earlier version left world-readable.
(The outbox, report and Data Docs of a whole `jkn run`: tests/test_ops_processes.py.)"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys

from tests.conftest import FIXTURES


def mode(path) -> str:
    return f"{stat.S_IMODE(path.stat().st_mode):o}"


def test_a_real_ingest_under_umask_022_creates_owner_only_files_and_tightens_old_ones(jkn_env, tmp_path):
    landing = jkn_env / "landing"
    shutil.copytree(FIXTURES / "landing_small", landing)
    ingest = [sys.executable, "-m", "flows.cli", "ingest"]
    first = subprocess.run(ingest, env=dict(os.environ), capture_output=True, text=True, timeout=120, umask=0o022)
    assert first.returncode == 0, first.stderr
    created = [path for path in jkn_env.rglob("*") if "landing" not in path.relative_to(jkn_env).parts]
    assert {path.name for path in created} >= {"jkn.duckdb", "jkn.duckdb.lock", "tmp"}
    assert [(path.name, mode(path)) for path in created if path.stat().st_mode & 0o077] == []
    assert mode(jkn_env / "jkn.duckdb") == "600" and mode(jkn_env / "tmp") == "700"

    # what an earlier version left readable by everyone is made owner-only by the next command
    (jkn_env / "jkn.duckdb").chmod(0o644)
    (jkn_env / "outbox").mkdir(mode=0o755)
    (jkn_env / "outbox").chmod(0o755)
    landing.chmod(0o755)
    again = subprocess.run(ingest, env=dict(os.environ), capture_output=True, text=True, timeout=120, umask=0o022)
    assert again.returncode == 0, again.stderr
    assert (mode(jkn_env / "jkn.duckdb"), mode(jkn_env / "outbox")) == ("600", "700")
    # the landing folder is not jkn's to close: other accounts may drop files there
    assert mode(landing) == "755"
