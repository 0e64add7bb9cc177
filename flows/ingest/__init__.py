"""Landing folder -> registered Parquet parts: each extract file read once, checked, pseudonymised.

The seams, in the order a file meets them:
  landing    file names, sha256, what was loaded before (`discover`, `previous_load`)
  kinds      what each kind of file must hold (`KINDS`), and the raw schemas generated from it
  reading    CSV/gzip/Parquet sources, dialects, headers
  rules      the SQL that types each column and flags bad rows
  pseudonym  NIK -> person_key, and the one masking policy for identifiers
  part       one file -> one immutable Parquet part (`read_file`, a function of the file alone)
and here, the single writer: `ingest_files` decides which files are new, reads each one (in this
process today; the same `read_file` can run on a cluster's workers), and registers each outcome in
`ops.load_log` and `ops.rejects` in one transaction per file.

A whole file is refused (status `rejected` in `ops.load_log`, no part) when its name, header,
encoding or compression is wrong, when it is empty or holds only a header, when a period column
disagrees with the period in its name, or when more than `reject_threshold_pct` of its rows are
bad (its bad rows are still listed in `ops.rejects`, so they can be fixed). Bad rows of an
accepted file go to `ops.rejects` with file, line, column, value and reason. A file whose bytes
were loaded before (same sha256) is skipped. A new file for a kind and period that already has
one is a correction: the staging views read the newest one.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
from pydantic import SecretStr

from flows import parts
from flows.errors import ConfigError, PipelineError
from flows.ingest.kinds import KINDS, SEGMENTS, ExtractKind, stored_columns
from flows.ingest.landing import FILE_NAME, discover, file_sha256, period_date, previous_load, seen_before
from flows.ingest.part import FileOutcome, Reference, no_space_left, read_file
from flows.ingest.pseudonym import PERSON_KEY_FUNCTION, mask_nik, redact

__all__ = [
    "FILE_NAME", "KINDS", "PERSON_KEY_FUNCTION", "SEGMENTS", "ExtractKind", "LoadResult", "discover",
    "file_sha256", "ingest_files", "mask_nik", "period_date", "previous_load", "redact", "seen_before",
    "stored_columns",
]

log = logging.getLogger(__name__)
# A library's logger: where nobody configured logging (the command line, which prints its own
# table), refusals are not also dumped on stderr by logging's last-resort handler.
log.addHandler(logging.NullHandler())


@dataclass
class LoadResult:
    file_name: str
    kind: str | None
    period: str | None
    status: str  # staged, skipped, rejected
    rows_loaded: int = 0
    rows_rejected: int = 0
    message: str = ""
    load_id: int | None = None


def ingest_files(
    con: duckdb.DuckDBPyConnection,
    paths: list[Path],
    reject_threshold_pct: float = 1.0,
    run_id: str | None = None,
    *,
    pseudonym_key: SecretStr | str | None = None,
    retry_rejected: bool = False,
) -> list[LoadResult]:
    """Load each file whose bytes were not loaded before; return what happened to each.

    A file refused before is skipped too (its refusal is in `ops.load_log`), unless
    `retry_rejected` (as when a person names it on the command line after fixing a setting
    or a seed). Participants files need `pseudonym_key`; without it nothing at all is
    loaded and ConfigError is raised. `con` is the writer's connection (`database.connect`).
    """
    results: list[LoadResult | tuple[Path, str]] = []
    batch: dict[str, str] = {}  # sha256 -> name, for the same bytes twice in one batch
    for path in paths:
        outside = _link_outside(path)
        if outside:
            # never followed, not even hashed: it could name anything on the machine
            sha256 = hashlib.sha256(f"link {path.name} -> {outside}".encode()).hexdigest()
            previous = previous_load(con, sha256)
            results.append(register(con, FileOutcome(
                path.name, sha256, None, None, "rejected",
                message=f"{path.name}: is a link to a file outside the landing folder; not followed "
                        "(copy the file into the folder instead)"), run_id) if previous is None else
                LoadResult(path.name, None, None, "skipped", message=f"refused before (load {previous[0]}): "
                           f"{previous[3]}", load_id=previous[0]))
            continue
        seen = _stamp(path)
        sha256 = file_sha256(path)
        previous = previous_load(con, sha256)
        if sha256 in batch:
            results.append(LoadResult(path.name, None, None, "skipped", message=f"same bytes as {batch[sha256]}"))
        elif previous and (previous[2] != "rejected" or not retry_rejected):
            load_id, first_name, status, message = previous
            if status == "rejected":
                note = f"refused before (load {load_id}): {message}"
            else:
                note = f"loaded before as {first_name} (load {load_id}, {status})"
            results.append(LoadResult(path.name, None, None, "skipped", message=note, load_id=load_id))
        else:
            results.append((path, sha256, seen))
        batch.setdefault(sha256, path.name)
    key = _secret(pseudonym_key)
    to_load = [item[0].name for item in results if isinstance(item, tuple)]
    needs_key = [name for name in to_load if name.startswith("participants_")]
    if needs_key and not key:
        raise ConfigError(
            f"JKN_PSEUDONYM_KEY is not set; it is needed to pseudonymise the NIKs in {', '.join(needs_key)}. "
            "Nothing was loaded."
        )
    if to_load:
        parts.remove_unregistered(con)  # what a crashed run left: never registered, never read
    root, reference, config = parts.root_of(con), reference_of(con), duckdb_limits(con)
    loaded = []
    for item in results:
        if isinstance(item, tuple):
            path, sha256, seen = item
            log.info("loading %s", path.name)
            outcome = read_file(path, sha256, root, reference, pseudonym_key=key,
                                threshold_pct=reject_threshold_pct, config=config)
            if _stamp(path) != seen:
                # still being written (a copy or upload in progress): what was read is not the file
                if outcome.part:
                    (root / outcome.part).unlink(missing_ok=True)
                item = LoadResult(path.name, outcome.kind, outcome.period, "skipped",
                                  message=f"{path.name}: changed while it was read (still being written?); "
                                          "not loaded, the next run loads it once it stops changing")
                log.warning("%s", item.message)
            else:
                item = register(con, outcome, run_id)
        loaded.append(item)
    return loaded


def _stamp(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_size, status.st_mtime_ns


def _link_outside(path: Path) -> str | None:
    """Where a symbolic link in a folder points, when that is outside the folder; else None."""
    if not path.is_symlink():
        return None
    target = path.resolve()
    folder = path.parent.resolve()
    return None if target.is_relative_to(folder) else "another folder"


def reference_of(con: duckdb.DuckDBPyConnection) -> Reference:
    """The codes rows are checked against, from the seeds loaded into `ref.regions`."""
    regions = [row[0] for row in con.execute("select region_code from ref.regions order by 1").fetchall()]
    provinces = sorted({code[:2] for code in regions})
    return Reference(tuple(regions), tuple(provinces))


def duckdb_limits(con: duckdb.DuckDBPyConnection) -> dict:
    """The writer's memory limit, threads and spill folder, for the DuckDB that reads a file."""
    memory, threads, temp = con.execute(
        "select current_setting('memory_limit'), current_setting('threads'), current_setting('temp_directory')"
    ).fetchone()
    config = {"memory_limit": memory, "threads": int(threads)}
    if temp:
        config["temp_directory"] = temp
    return config


def register(con: duckdb.DuckDBPyConnection, outcome: FileOutcome, run_id: str | None) -> LoadResult:
    """Record one file's outcome in one transaction: its `load_log` row (naming its part) and its rejects.

    The load id is the next after the largest in `ops.load_log`, read inside the transaction (a
    sequence could hand out an id again after a crash, before DuckDB's checkpoint)."""
    con.begin()
    try:
        load_id = con.execute("select coalesce(max(load_id), 0) + 1 from ops.load_log").fetchone()[0]
        con.execute(
            "insert into ops.load_log (load_id, file_name, sha256, kind, period, rows_loaded, rows_rejected, "
            "status, message, loaded_at, run_id, part) values (?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?, ?)",
            [load_id, outcome.file_name, outcome.sha256, outcome.kind, outcome.period, outcome.rows_loaded,
             outcome.rows_rejected, outcome.status, outcome.message, run_id, outcome.part],
        )
        if outcome.rejects:
            import pyarrow as pa

            columns = list(zip(*outcome.rejects, strict=True))
            rejects = pa.table({  # noqa: F841 - read by the query below
                "line": pa.array(columns[0], pa.int64()), "column_name": pa.array(columns[1], pa.string()),
                "value": pa.array(columns[2], pa.string()), "reason": pa.array(columns[3], pa.string()),
            })
            con.execute(
                "insert into ops.rejects (load_id, file_name, line, column_name, value, reason) "
                "select ?, ?, line, column_name, value, reason from rejects",
                [load_id, outcome.file_name],
            )
        con.commit()
    except BaseException as error:
        _rollback(con)
        if no_space_left(error):
            raise PipelineError(
                f"no space left on the device while registering {outcome.file_name}: free some space and run "
                "again (the file was not registered; it is loaded again by the next run)"
            ) from error
        raise
    if outcome.part:
        parts.refresh_views(con)
    result = LoadResult(outcome.file_name, outcome.kind, outcome.period, outcome.status, outcome.rows_loaded,
                        outcome.rows_rejected, outcome.message, load_id)
    if result.status == "rejected":
        log.warning("refused %s", result.message)
    else:
        log.info("%s: %d rows staged, %d rejected", result.file_name, result.rows_loaded, result.rows_rejected)
    return result


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back, keeping the error that made us: a failed commit (a full disk) has already ended the
    transaction, and DuckDB's "no transaction is active" would hide the real cause."""
    try:
        con.rollback()
    except duckdb.Error:
        pass


def _secret(key: SecretStr | str | None) -> str | None:
    if isinstance(key, SecretStr):
        return key.get_secret_value() or None
    return key or None
