"""A disk that fills up during `jkn check`: a real tmpfs of 8 MB as JKN_HOME, filled to the last
byte after the files were staged. The error reaches the console as one line, with why the error
log could not be written either, and never as a raw traceback. Needs root (mount); else skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES


@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(folder: Path) -> None:
    """Write until the file system has no byte left (smaller and smaller writes)."""
    handle = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 8, 1):
            try:
                while True:
                    os.write(handle, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(handle)


def test_a_full_disk_during_checks_is_one_line_not_a_traceback(jkn_env, small_disk, monkeypatch):
    home = small_disk / "home"
    monkeypatch.setenv("JKN_HOME", str(home))
    shutil.copytree(FIXTURES / "landing_small", home / "landing")
    staged = subprocess.run(
        [sys.executable, "-m", "flows.cli", "ingest"], env=dict(os.environ), capture_output=True, text=True, timeout=120
    )
    assert staged.returncode == 0, staged.stderr
    fill(small_disk)
    check = subprocess.run(
        [sys.executable, "-m", "flows.cli", "check"], env=dict(os.environ), capture_output=True, text=True, timeout=300
    )
    output = check.stdout + check.stderr
    assert check.returncode == 1, output
    assert "Traceback" not in output
    lines = [line for line in check.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("error: the pipeline failed: "), output
    assert "No space left on device" in output
    assert any(line.strip().startswith("full traceback: not written, ") for line in lines), output
