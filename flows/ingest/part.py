"""One extract file -> one immutable Parquet part, in one pass, opening no shared database.

`read_file` is a function of the file alone (its path and bytes' sha256, the reference codes it is
checked against, the pseudonymisation key, the reject threshold and DuckDB's limits): it runs in
its own in-memory DuckDB (a connection of its own to one the files of a batch share: `flows.ingest.instances`),
so it can run anywhere that sees the file and the parts folder (a worker of a cluster, too). It
reads, types, checks and pseudonymises every row in one SELECT and
streams the result into a Parquet part (zstd) under a hidden temporary name. Only the rows that
SELECT flagged bad are read again, to name line, column and value; repeated keys are found from
the part's key columns. Then:

  - too many bad rows: the part is deleted, the file is refused (its bad rows are still listed);
  - some bad rows: the good ones are written to a new part without them (the usual file has none,
    and costs no second write);
  - the part is renamed into place, `<kind>/period=<period>/<sha256>.parquet` under the parts
    folder, and the outcome returned for the single writer to register (`flows.ingest`).

A part nobody registered (the process died before the writer's transaction committed) is never
read: the raw views list registered parts only, and the next ingest removes it.

`line` in `ops.rejects` is the line in a CSV file (the header is line 1; blank lines are skipped
by the reader and not counted) and the row number (from 1) in a Parquet file. Rows keep the file's
order in the part (DuckDB preserves insertion order when it copies, also when it reads in
parallel), so a row's line is its row number in the part plus the first line; numbering rows in
the SELECT instead (row_number() over ()) would make the read single-threaded.
"""

from __future__ import annotations

import errno
import os
import re
import socket
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb

from flows.errors import ConfigError, FileRejected, PipelineError
from flows.ingest.instances import Reference, connection_for
from flows.ingest.kinds import KINDS, ExtractKind, part_columns
from flows.ingest.landing import FILE_NAME, period_date
from flows.ingest.profile import PERSON_HASH, has_profile, profile_part
from flows.ingest.pseudonym import hmac_pads, native_rules, redact, register_person_key, unregister_person_key
from flows.ingest.reading import counts_lines_as_duckdb, duckdb_problem, map_columns, open_source, physical_lines, quote
from flows.ingest.repeats import repeated_hashes_of
from flows.ingest.rules import REGIONS_TABLE, bad_rows, checks, period_sql, reading_select, rejects_select
from flows.ingest.slices import check_rows_in_province, province_of

# Rejects kept per file: a small file can hold millions of bad rows (a gzip of one repeated line);
# the full count is kept in `rows_rejected`.
MAX_REJECTS_STORED = 10_000
REJECT_COLUMNS = ("line", "column_name", "value", "reason")
# How a part is written: zstd level 1 (the write alone: 0.90 CPU s per 1 M rows against 1.03 at
# DuckDB's default level 3, and no bigger: 40.2 bytes a row; BENCHMARKS.md, issue 13).
PART_FORMAT = "format parquet, compression zstd, compression_level 1"


@dataclass
class FileOutcome:
    """What reading one file gave: a part to register, or a refusal; either way its rejects."""

    file_name: str
    sha256: str
    kind: str | None
    period: str | None
    status: str  # staged or rejected
    rows_loaded: int = 0
    rows_rejected: int = 0
    message: str = ""
    part: str | None = None  # the part's path relative to the parts folder
    rejects: list[tuple] = field(default_factory=list)  # REJECT_COLUMNS, at most MAX_REJECTS_STORED
    # the participants suite's profile of the part (`flows.ingest.profile`), stored with the load
    profile: list[tuple] = field(default_factory=list)  # month, region_code, segment, status, participants
    repeats: list[tuple] = field(default_factory=list)  # month, key_column, repeated_keys


def part_name(kind: str, period: str, sha256: str) -> str:
    return f"{kind}/period={period}/{sha256}.parquet"


def read_file(
    path: Path,
    sha256: str,
    parts_root: Path,
    reference: Reference,
    *,
    pseudonym_key: str | None,
    threshold_pct: float,
    config: dict | None = None,
) -> FileOutcome:
    """Read one file into its part (see the module docstring); a refusal is an outcome, not an error."""
    match = FILE_NAME.match(path.name)
    kind_name = match.group("kind") if match else None
    period = match.group("period") if match else None
    try:
        kind = kind_of(path.name, kind_name, period)
        con = connection_for(config)
        try:
            con.execute("set enable_progress_bar = false")
            return _read(con, path, sha256, kind, period, parts_root, reference, pseudonym_key, threshold_pct)
        finally:
            con.close()
    except FileRejected as error:
        return FileOutcome(path.name, sha256, kind_name, period, "rejected", message=redact(str(error)))
    except (ConfigError, KeyboardInterrupt):
        raise
    except Exception as error:  # noqa: BLE001 - a file's failure is that file's; the machine's is not
        if no_space_left(error):
            raise PipelineError(
                f"no space left on the device while reading {path.name} into {parts_root}: free some space "
                "and run again (nothing of this file was registered; files before it were)"
            ) from error
        problem = redact(str(error).replace(str(path), "the file").strip().splitlines()[0][:300])
        return FileOutcome(
            path.name,
            sha256,
            kind_name,
            period,
            "rejected",
            message=f"{path.name}: unreadable ({type(error).__name__}): {problem}",
        )


def no_space_left(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is a full disk, in Python's words or DuckDB's."""
    while error is not None:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        if "no space left on device" in str(error).lower():
            return True
        error = error.__cause__ or error.__context__
    return False


def kind_of(file_name: str, kind_name: str | None, period: str | None) -> ExtractKind:
    if kind_name is None:
        raise FileRejected(
            file_name,
            "file name must be <kind>_<period>.<ext> (or <kind>_<period>_p<province>.<ext>), kind one of "
            f"{', '.join(KINDS)}; period YYYY-MM (YYYY-S1/S2 for population); ext csv, csv.gz or parquet",
        )
    kind = KINDS[kind_name]
    if kind.semester != ("S" in period):
        expected = "YYYY-S1 or YYYY-S2" if kind.semester else "YYYY-MM"
        raise FileRejected(file_name, f"period {period!r} in the name: {kind_name} files need {expected}")
    check_period_is_possible(file_name, period)
    return kind


# JKN began on 1 January 2014: no extract describes an earlier period.
FIRST_PERIOD = date(2014, 1, 1)


def check_period_is_possible(file_name: str, period: str, today: date | None = None) -> None:
    """A period that cannot be right is refused, never published: one before JKN began, or one that
    has not begun yet (a month after the current one; a semester whose as-of date is still ahead).
    A day's margin covers the offices' time zones (UTC+7 to UTC+9) on a machine that keeps UTC."""
    starts = date.fromisoformat(period_date(period)) if "S" in period else date.fromisoformat(f"{period}-01")
    latest = (today or date.today()) + timedelta(days=1)
    if starts < FIRST_PERIOD:
        raise FileRejected(file_name, f"period {period!r} in the name is before JKN began (January 2014)")
    if starts > latest:
        what = "its as-of date" if "S" in period else "the month"
        raise FileRejected(
            file_name,
            f"period {period!r} in the name is in the future ({what} has not begun "
            f"on {latest - timedelta(days=1):%Y-%m-%d}); check the file's name",
        )


def _read(
    con,
    path: Path,
    sha256: str,
    kind: ExtractKind,
    period: str,
    parts_root: Path,
    reference: Reference,
    pseudonym_key: str | None,
    threshold_pct: float,
) -> FileOutcome:
    # the codes as literals: a parameter would make DuckDB import pandas (1-3 s) in a process without it
    codes = ", ".join(f"('{code.replace(chr(39), chr(39) * 2)}')" for code in reference.region_codes) or "(null)"
    con.execute(f"create temp table {REGIONS_TABLE} (region_code varchar)")
    con.execute(f"insert into {REGIONS_TABLE} values {codes}")
    source = open_source(con, path)
    positions, unused = map_columns(path.name, source, kind)
    final = parts_root / part_name(kind.name, period, sha256)
    final.parent.mkdir(parents=True, exist_ok=True)
    # Hidden: never read, removed if left. Named by machine and process too: on a cluster, a task
    # rerun elsewhere may still find the first attempt writing into the same shared folder.
    written = final.with_name(f".{sha256}.{socket.gethostname()}.{os.getpid()}.parquet")
    try:
        native = _write_part(con, path, source, kind, period, positions, reference, pseudonym_key, written)
        # (no hive partitioning: the folder's `period=` must not stand in for the file's own period column)
        part = f"read_parquet('{quote(written)}', file_row_number = true, hive_partitioning = false)"
        rows = f"(select file_row_number + {source.first_line} as line, * exclude (file_row_number) from {part})"
        total = con.execute(f"select count(*) from {part}").fetchone()[0]
        if total == 0:
            raise FileRejected(path.name, "the file holds a header but no rows")
        if "period" in positions:
            _check_period_column(con, path, source, rows, period, source.header[positions["period"]])
        if province := province_of(path.name):  # one province's slice of the period (flows.ingest.slices)
            check_rows_in_province(
                con,
                path.name,
                rows,
                province,
                reference.province_codes,
                source.header[positions["region_code"]],
                lambda line: _as_written(path, source, [(line, None, None, None)])[0][0],
            )
        con.execute(f"create temp table rejects as {rejects_select(kind, bad_rows(kind, rows))}")
        person_candidates = _reject_repeats(con, kind, rows, "temp.rejects", total, native)
        rejected = con.execute("select count(distinct line) from temp.rejects").fetchone()[0]
        rejects = con.execute(
            f"select {', '.join(REJECT_COLUMNS)} from temp.rejects order by line, column_name limit ?",
            [MAX_REJECTS_STORED],
        ).fetchall()
        rejects = _as_written(path, source, rejects)
        outcome = FileOutcome(
            path.name, sha256, kind.name, period, "staged", total - rejected, rejected, rejects=rejects
        )
        notes = [f"ignored column(s) nothing reads: {', '.join(unused)}"] if unused else []
        if rejected * 100.0 > threshold_pct * total:
            line, column, value, reason = rejects[0]
            outcome.status, outcome.rows_loaded = "rejected", 0
            outcome.message = redact(
                f"{path.name}: {rejected} of {total} rows are bad, more than the {threshold_pct:g}% allowed "
                f"(JKN_REJECT_THRESHOLD_PCT); nothing loaded, the bad rows are in ops.rejects; first: line {line}, "
                f"column {column!r}, value {value!r}: {reason}"
            )
            return outcome
        if rejected:
            good = written.with_name(written.name.replace(".parquet", ".good.parquet"))
            con.execute(
                f"copy (select {', '.join(part_columns(kind))} from {rows} as part "
                "anti join (select distinct line from temp.rejects) as bad on part.line = bad.line "
                f"where not part.bad) to '{quote(good)}' ({PART_FORMAT})"
            )
            os.replace(good, written)
            notes.append(f"{rejected} bad row(s) in ops.rejects")
        if has_profile(kind):  # of the rows the part holds now: the good ones
            outcome.profile, outcome.repeats = profile_part(
                con,
                f"read_parquet('{quote(written)}', hive_partitioning = false)",
                person_candidates,
            )
        os.replace(written, final)
        outcome.part = part_name(kind.name, period, sha256)
        outcome.message = "; ".join(notes)
        return outcome
    finally:
        written.unlink(missing_ok=True)


def _write_part(
    con,
    path: Path,
    source,
    kind: ExtractKind,
    period: str,
    positions: dict[str, int],
    reference: Reference,
    pseudonym_key: str | None,
    written: Path,
) -> bool:
    """The one pass: the file, read, typed, checked and pseudonymised, into the part. Returns whether
    `con` has the extension loaded for it (`pseudonym.native_rules`)."""
    parameters = _parameters(kind, period, pseudonym_key, reference)
    person_key = register_person_key(con, parameters)
    native = native_rules(person_key)
    select = reading_select(source, kind, positions, checks(kind, native), person_key, reference.province_codes)
    try:
        con.execute(
            f"copy (select $period_date::date as {kind.date_column}, * from ({select})) "
            f"to '{quote(written)}' ({PART_FORMAT})",
            parameters,
        )
    except duckdb.Error as error:
        line, problem = duckdb_problem(error, path)
        raise FileRejected(path.name, f"unreadable: {problem}", line=line) from None
    finally:
        unregister_person_key(con, person_key)
    return native


def _parameters(kind: ExtractKind, period: str, pseudonym_key: str | None, reference: Reference) -> dict:
    if not any(column.type == "nik" for column in kind.columns):
        return {"period_date": period_date(period)}
    if not pseudonym_key:
        raise ConfigError("JKN_PSEUDONYM_KEY is not set; it is needed to pseudonymise NIKs")
    ipad, opad = hmac_pads(pseudonym_key)
    year, month = period.split("-")
    return {
        "ipad": ipad,
        "opad": opad,
        "period_month": int(year) * 100 + int(month),
        "period_date": period_date(period),
    }


def _as_written(path: Path, source, rejects: list[tuple]) -> list[tuple]:
    """Rejects with the lines as the file has them (`line` and the `repeats line N` of a reason):
    DuckDB numbers rows without the blank lines it skips and counts a quoted line break as none."""
    if not rejects or not source.relation.startswith("read_csv") or counts_lines_as_duckdb(path):
        return rejects
    first = source.first_line
    wanted = {line - first for line, *_ in rejects}
    wanted |= {int(n) - first for *_, reason in rejects for n in re.findall(r"^repeats line (\d+)", reason or "")}
    lines = {row + first: line for row, line in physical_lines(path, source.delimiter, wanted).items()}
    return [
        (
            lines.get(line, line),
            column,
            value,
            re.sub(r"^repeats line (\d+)", lambda m: f"repeats line {lines.get(int(m.group(1)), m.group(1))}", reason)
            if reason
            else reason,
        )
        for line, column, value, reason in rejects
    ]


def _check_period_column(con, path: Path, source, rows: str, period: str, header_name: str) -> None:
    """When the file names its period in a column, every row must agree with the file name."""
    wrong = con.execute(
        f"select line, period_value from {rows} where period_value is not null and period is distinct from ? "
        "order by line limit 1",
        [period],
    ).fetchone()
    file_name = path.name
    if wrong:
        line, value = wrong
        line = _as_written(path, source, [(line, None, None, None)])[0][0]
        problem = (
            f"period {value!r} in the content is not a valid period (YYYY-MM, a date, or YYYY-S1/S2)"
            if not _parses(con, value)
            else f"period {value!r} in the content differs from {period!r} in the file name"
        )
        raise FileRejected(file_name, problem, line=line, column=header_name)


def _parses(con, value: str) -> bool:
    """Whether `value` names a period at all (a month or a semester)."""
    return con.execute(
        f"select coalesce({period_sql('$value', False)}, {period_sql('$value', True)}) is not null", {"value": value}
    ).fetchone()[0]


def _reject_repeats(con, kind: ExtractKind, rows: str, rejects: str, total: int, native: bool = False):
    """A second row with the key of an earlier good row would count twice: reject it, naming the first.

    Keys are compared by their 64-bit hash first (a national extract has tens of millions of
    distinct card numbers): the hashes that repeat are found by the extension's aggregate where `native`,
    else by sorting them in numpy (`repeats`; both leaner than grouping them in DuckDB); only rows whose
    hash repeats are compared by the key itself, so a hash collision costs nothing but a comparison.

    For a kind with a profile, the same scan finds the repeated person hashes of the profile
    (`profile.PERSON_HASH`), returned (None: none repeats) for `profile_part`: over the rows not
    flagged bad, a superset of the good rows the part keeps, so no repeat among those is missed."""
    key = ", ".join(kind.key)
    expressions = [f"hash({key})"] + ([PERSON_HASH] if has_profile(kind) else [])
    candidates, *person = repeated_hashes_of(con, f"{rows} as part_rows where not bad", expressions, total, native)
    person_candidates = person[0] if person else None
    if candidates is None:  # the usual file: no key repeats
        return person_candidates
    con.register("key_candidates", candidates)
    shown = kind.key[0] if len(kind.key) == 1 else f"concat_ws(' / ', {key})"
    try:
        con.execute(
            f"insert into {rejects} "
            f"with suspects as (select line, {key} from {rows} where not bad "
            f"and hash({key}) in (select key_hash from key_candidates)), "
            f"repeated as (select {key}, min(line) as first_line from suspects group by {key} having count(*) > 1) "
            f"select suspects.line, '{'+'.join(kind.key)}', {shown}, "
            f"'repeats line ' || repeated.first_line || ': one row per {' x '.join(kind.key)} in a file' "
            f"from suspects inner join repeated using ({key}) where suspects.line > repeated.first_line"
        )
    finally:
        con.unregister("key_candidates")
    return person_candidates
