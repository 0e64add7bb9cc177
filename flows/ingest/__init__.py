"""Landing folder -> registered Parquet parts: each extract file read once, checked, pseudonymised.

The seams, in the order a file meets them:
  landing    file names, sha256, what was loaded before (`discover`, `previous_load`)
  kinds      what each kind of file must hold (`KINDS`), and the raw schemas generated from it
  reading    CSV/gzip/Parquet sources, dialects, headers
  rules      the SQL that types each column and flags bad rows
  pseudonym  NIK -> person_key, and the one masking policy for identifiers
  part       one file -> one immutable Parquet part (`read_file`, a function of the file alone)
  instances  the DuckDB a file is read in: the writer's limits and codes, a batch's shared instance
  repeats, profile   repeated keys by sorted hashes; the participants suite's profile of a part
and here, the single writer: `ingest_files` plans which files are new (`plan`), has each one read
(in this process, `read_here`, or on a Dask cluster's workers, `flows.ingest.fanout`), and registers
each outcome in `ops.load_log` and `ops.rejects` in one transaction per file, in plan order
(`register_all`).

A whole file is refused (status `rejected` in `ops.load_log`, no part) when its name, header,
encoding or compression is wrong, when it is empty or holds only a header, when a period column
disagrees with the period in its name, or when more than `reject_threshold_pct` of its rows are
bad (its bad rows are still listed in `ops.rejects`, so they can be fixed). Bad rows of an
accepted file go to `ops.rejects` with file, line, column, value and reason. A file whose bytes
were loaded before (same sha256) is skipped. A new file for a kind and period that already has
one is a correction: the staging views read the newest one. A period may also arrive per province
(`<kind>_<period>_p<province>.<ext>`, `flows.ingest.slices`): each file its own part and load, and
what is current is decided per kind, period and province.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from pydantic import SecretStr

from flows import parts
from flows.errors import ConfigError, PipelineError
from flows.ingest.instances import Reference, duckdb_limits, reference_of, shared_reader
from flows.ingest.kinds import KINDS, SEGMENTS, ExtractKind, stored_columns
from flows.ingest.landing import (
    FILE_NAME,
    discover,
    file_sha256,
    file_stamp,
    link_outside,
    period_date,
    previous_load,
    seen_before,
)
from flows.ingest.part import FileOutcome, no_space_left, read_file
from flows.ingest.profile import insert_arrow, store_profile
from flows.ingest.pseudonym import PERSON_KEY_FUNCTION, key_text, mask_nik, redact
from flows.ingest.slices import province_of

__all__ = [
    "FILE_NAME",
    "KINDS",
    "PERSON_KEY_FUNCTION",
    "SEGMENTS",
    "ExtractKind",
    "LoadResult",
    "discover",
    "Plan",
    "ReadOptions",
    "file_sha256",
    "ingest_files",
    "mask_nik",
    "period_date",
    "plan",
    "previous_load",
    "read_here",
    "redact",
    "register_all",
    "seen_before",
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


@dataclass
class Plan:
    """What an ingest will do, decided by the writer before any file is read: in `discover()` order,
    a `LoadResult` for each file skipped, a `(path, sha256)` for each file to read."""

    steps: list[LoadResult | tuple[Path, str]]
    # (size, modification time) of each file to read, as it was before it was hashed: a file that
    # changed by the time its outcome is registered was still being written
    stamps: dict[Path, tuple[int, int]] = field(default_factory=dict)

    @property
    def to_read(self) -> list[tuple[Path, str]]:
        return [step for step in self.steps if isinstance(step, tuple)]


@dataclass(frozen=True)
class ReadOptions:
    """Everything `read_file` needs besides the file: small, picklable, the same for every file of
    a batch (so a cluster's worker gets it with each task). The key stays a SecretStr so that no
    repr of a task's parameters shows it."""

    parts_root: Path
    reference: Reference
    pseudonym_key: SecretStr | None
    threshold_pct: float
    config: dict

    def read(self, path: Path, sha256: str) -> FileOutcome:
        return read_file(
            path,
            sha256,
            self.parts_root,
            self.reference,
            pseudonym_key=key_text(self.pseudonym_key),
            threshold_pct=self.threshold_pct,
            config=self.config,
        )


# How the files of a plan are read: given the files and the options, the outcomes in the same order.
# Here, one after another in this process; `flows.ingest.fanout` reads them on a Dask cluster.
ReadMany = Callable[[list[tuple[Path, str]], ReadOptions], Iterable[FileOutcome]]


def read_here(files: list[tuple[Path, str]], options: ReadOptions) -> Iterator[FileOutcome]:
    """Read each file in this process, lazily: each outcome is registered before the next file is read.
    The files share one in-memory DuckDB (`instances.shared_reader`)."""
    if not files:
        return
    with shared_reader(options.config):
        for path, sha256 in files:
            log.info("loading %s", path.name)
            yield options.read(path, sha256)


def ingest_files(
    con: duckdb.DuckDBPyConnection,
    paths: list[Path],
    reject_threshold_pct: float = 1.0,
    run_id: str | None = None,
    *,
    pseudonym_key: SecretStr | str | None = None,
    retry_rejected: bool = False,
    read_many: ReadMany = read_here,
) -> list[LoadResult]:
    """Load each file whose bytes were not loaded before; return what happened to each.

    A file refused before is skipped too (its refusal is in `ops.load_log`), unless
    `retry_rejected` (as when a person names it on the command line after fixing a setting
    or a seed). Participants files need `pseudonym_key`; without it nothing at all is
    loaded and ConfigError is raised. `con` is the writer's connection (`database.connect`).
    `read_many` reads the files to load (default: in this process); whoever reads them, this
    connection alone plans and registers.
    """
    work = plan(con, paths, pseudonym_key=pseudonym_key, retry_rejected=retry_rejected)
    options = read_options(con, reject_threshold_pct, pseudonym_key)
    return register_all(con, work, read_many(work.to_read, options), run_id)


def plan(
    con: duckdb.DuckDBPyConnection,
    paths: list[Path],
    *,
    pseudonym_key: SecretStr | str | None = None,
    retry_rejected: bool = False,
) -> Plan:
    """Which of `paths` are new (see `ingest_files`); raise ConfigError before anything is read when
    a participants file is new and there is no key. Removes what a crashed run left in the parts folder."""
    steps: list[LoadResult | tuple[Path, str]] = []
    stamps: dict[Path, tuple[int, int]] = {}
    batch: dict[str, str] = {}  # sha256 -> name, for the same bytes twice in one batch
    for path in paths:
        outside = link_outside(path)
        if outside:
            # never followed, not even hashed: it could name anything on the machine
            sha256 = hashlib.sha256(f"link {path.name} -> {outside}".encode()).hexdigest()
            previous = previous_load(con, sha256)
            steps.append(
                register(
                    con,
                    FileOutcome(
                        path.name,
                        sha256,
                        None,
                        None,
                        "rejected",
                        message=f"{path.name}: is a link to a file outside the landing folder; not followed "
                        "(copy the file into the folder instead)",
                    ),
                    None,
                )
                if previous is None
                else LoadResult(
                    path.name,
                    None,
                    None,
                    "skipped",
                    message=f"refused before (load {previous[0]}): {previous[3]}",
                    load_id=previous[0],
                )
            )
            continue
        stamps[path] = file_stamp(path)
        sha256 = file_sha256(path)
        previous = previous_load(con, sha256)
        if sha256 in batch:
            steps.append(LoadResult(path.name, None, None, "skipped", message=f"same bytes as {batch[sha256]}"))
        elif previous and (previous[2] != "rejected" or not retry_rejected):
            load_id, first_name, status, message = previous
            if status == "rejected":
                note = f"refused before (load {load_id}): {message}"
            else:
                note = f"loaded before as {first_name} (load {load_id}, {status})"
            steps.append(LoadResult(path.name, None, None, "skipped", message=note, load_id=load_id))
        else:
            steps.append((path, sha256))
        batch.setdefault(sha256, path.name)
    work = Plan(steps, stamps)
    needs_key = [path.name for path, _ in work.to_read if path.name.startswith("participants_")]
    if needs_key and not key_text(pseudonym_key):
        raise ConfigError(
            f"JKN_PSEUDONYM_KEY is not set; it is needed to pseudonymise the NIKs in {', '.join(needs_key)}. "
            "Nothing was loaded."
        )
    if work.to_read:
        parts.remove_unregistered(con)  # what a crashed run left: never registered, never read
    return work


def _still_being_written(con: duckdb.DuckDBPyConnection, path: Path, outcome: FileOutcome) -> LoadResult:
    """A file that changed while it was read (a copy or upload in progress): what was read is not the
    file, so nothing is registered and its part is removed; the next run loads it once it is still."""
    if outcome.part:
        (parts.root_of(con) / outcome.part).unlink(missing_ok=True)
    result = LoadResult(
        path.name,
        outcome.kind,
        outcome.period,
        "skipped",
        message=f"{path.name}: changed while it was read (still being written?); "
        "not loaded, the next run loads it once it stops changing",
    )
    log.warning("%s", result.message)
    return result


def read_options(
    con: duckdb.DuckDBPyConnection, reject_threshold_pct: float, pseudonym_key: SecretStr | str | None
) -> ReadOptions:
    key = key_text(pseudonym_key)
    return ReadOptions(
        parts.root_of(con).resolve(),
        reference_of(con),
        SecretStr(key) if key else None,
        reject_threshold_pct,
        duckdb_limits(con),
    )


def register_all(
    con: duckdb.DuckDBPyConnection, work: Plan, outcomes: Iterable[FileOutcome], run_id: str | None
) -> list[LoadResult]:
    """Register the outcomes of `work.to_read` (given in that order), one transaction per file, in
    plan order; the skipped files' results in their places.

    The `raw` views are made again once, when the batch ends (however it ends), not after each
    file: nothing in a batch reads them, and a writer that died before doing so has its views made
    by the next open (`database.ensure_tables`). A batch of 31 small files spent half its time on
    the views."""
    outcomes = iter(outcomes)
    results = []
    completed = False
    try:
        for step in work.steps:
            if isinstance(step, tuple):
                path, sha256 = step
                outcome = next(outcomes)
                if (outcome.file_name, outcome.sha256) != (path.name, sha256):  # a reader that lost the order
                    raise RuntimeError(f"expected the outcome of {path.name}, got one of {outcome.file_name}")
                if path in work.stamps and file_stamp(path) != work.stamps[path]:
                    step = _still_being_written(con, path, outcome)
                else:
                    step = register(con, outcome, run_id)
            results.append(step)
        completed = True
    finally:
        if work.to_read:
            try:
                parts.refresh_views(con)
            except Exception:
                if completed:
                    raise
                log.exception("the raw views were not made again; the next open makes them")
    return results


def register(con: duckdb.DuckDBPyConnection, outcome: FileOutcome, run_id: str | None) -> LoadResult:
    """Record one file's outcome in one transaction: its `load_log` row (naming its part) and its rejects.
    The caller makes the `raw` views again (`parts.refresh_views`) once its batch is registered.

    The load id is the next after the largest in `ops.load_log`, read inside the transaction (a
    sequence could hand out an id again after a crash, before DuckDB's checkpoint)."""
    con.begin()
    try:
        load_id = con.execute("select coalesce(max(load_id), 0) + 1 from ops.load_log").fetchone()[0]
        con.execute(
            "insert into ops.load_log (load_id, file_name, sha256, kind, period, rows_loaded, rows_rejected, "
            "status, message, loaded_at, run_id, part, province_code) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?, ?, ?)",
            [
                load_id,
                outcome.file_name,
                outcome.sha256,
                outcome.kind,
                outcome.period,
                outcome.rows_loaded,
                outcome.rows_rejected,
                outcome.status,
                outcome.message,
                run_id,
                outcome.part,
                province_of(outcome.file_name),
            ],
        )
        if outcome.rejects:
            import pyarrow as pa

            columns = list(zip(*outcome.rejects, strict=True))
            rejects = pa.table(
                {
                    "line": pa.array(columns[0], pa.int64()),
                    "column_name": pa.array(columns[1], pa.string()),
                    "value": pa.array(columns[2], pa.string()),
                    "reason": pa.array(columns[3], pa.string()),
                }
            )
            insert_arrow(
                con,
                rejects,
                "insert into ops.rejects (load_id, file_name, line, column_name, value, reason) "
                "select ?, ?, line, column_name, value, reason from {table}",
                [load_id, outcome.file_name],
            )
        if outcome.repeats:
            store_profile(con, load_id, outcome.profile, outcome.repeats)
        con.commit()
    except BaseException as error:
        _rollback(con)
        if no_space_left(error):
            raise PipelineError(
                f"no space left on the device while registering {outcome.file_name}: free some space and run "
                "again (the file was not registered; it is loaded again by the next run)"
            ) from error
        raise
    result = LoadResult(
        outcome.file_name,
        outcome.kind,
        outcome.period,
        outcome.status,
        outcome.rows_loaded,
        outcome.rows_rejected,
        outcome.message,
        load_id,
    )
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
