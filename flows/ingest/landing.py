"""The landing folder: which files are extracts, what they hold by name, and what was seen before.

A file is named `<kind>_<period>.<ext>`, or `<kind>_<period>_p<province>.<ext>` for one province's
slice of the period (`flows.ingest.slices`); its bytes (sha256) identify it: the same bytes
delivered twice are loaded once, whatever their name.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import duckdb

FILE_NAME = re.compile(
    r"^(?P<kind>participants|region_counts|population|employers|workforce)"
    r"_(?P<period>\d{4}-(?:0[1-9]|1[0-2]|S[12]))(?:_p(?P<province>\d{2}))?\.(?P<ext>csv|csv\.gz|parquet)$"
)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def period_date(period: str) -> str:
    """The date a period stands for: first of the month, or 30 Jun / 31 Dec for a semester."""
    year, part = period.split("-")
    if part == "S1":
        return f"{year}-06-30"
    if part == "S2":
        return f"{year}-12-31"
    return f"{year}-{part}-01"


def discover(landing: Path) -> list[Path]:
    """Extract files in the landing folder, oldest period first. Hidden files (downloads in
    progress are written as `.<name>...part`) are not extracts yet."""
    if not landing.exists():
        return []
    files = [path for path in landing.iterdir() if path.is_file() and not path.name.startswith(".")]
    return sorted(files, key=lambda path: (_period_of(path.name), path.name))


def _period_of(name: str) -> str:
    match = FILE_NAME.match(name)
    return match.group("period") if match else ""


def previous_load(con: duckdb.DuckDBPyConnection, sha256: str) -> tuple | None:
    """(load_id, file_name, status, message) of the last load of these bytes, or None."""
    return con.execute(
        "select load_id, file_name, status, message from ops.load_log where sha256 = ? order by load_id desc limit 1",
        [sha256],
    ).fetchone()


def seen_before(con: duckdb.DuckDBPyConnection, sha256: str) -> bool:
    return previous_load(con, sha256) is not None


def file_stamp(path: Path) -> tuple[int, int]:
    """Size and modification time: a file whose stamp changed while it was read was still being written."""
    status = path.stat()
    return status.st_size, status.st_mtime_ns


def link_outside(path: Path) -> str | None:
    """Where a symbolic link in a folder points, when that is outside the folder; else None."""
    if not path.is_symlink():
        return None
    target = path.resolve()
    folder = path.parent.resolve()
    return None if target.is_relative_to(folder) else "another folder"
