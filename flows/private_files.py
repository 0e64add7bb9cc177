"""Files jkn creates hold personal data (card numbers, person keys, wages in the DuckDB file and its
WAL; names and figures in the outbox, report, Data Docs, logs and DuckDB's spill files): only their
owner may read them, whatever umask the office's account or service manager sets.

One rule in one place, applied when a process loads its settings: the process's umask gains 077,
so every file and folder created from then on (by jkn, DuckDB, Great Expectations or Jinja) is
owner-only; and what an earlier version or another umask left readable is made owner-only too.
The landing folder is left alone: other accounts may have to drop files into it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

OWNER_ONLY_UMASK = 0o077


def owner_only_from_now_on() -> None:
    """Add 077 to the process's umask (keeping any stricter bits it already has)."""
    os.umask(os.umask(OWNER_ONLY_UMASK) | OWNER_ONLY_UMASK)


def make_owner_only(path: Path) -> None:
    """Take group and other permissions off `path` (not following a link), if it exists."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return
    if stat.S_ISLNK(mode) or not mode & 0o077:
        return
    try:
        path.chmod(stat.S_IMODE(mode) & 0o700)
    except OSError:  # not ours to change (another owner): nothing we can do, and no reason to fail
        pass


def protect(settings) -> None:
    """The umask, and the database, its WAL and lock and the folders jkn writes, owner-only.
    The folders are enough for what is inside them: nobody else can reach a file in a 0700 folder."""
    owner_only_from_now_on()
    database = Path(settings.db_path)
    home = Path(settings.home)
    for path in (
        database,
        database.with_name(database.name + ".wal"),
        database.with_name(database.name + ".lock"),
        home / "tmp",
        home / "outbox",
        home / "report",
        home / "data_docs",
        home / "logs",
    ):
        make_owner_only(path)
