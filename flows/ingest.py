"""Landing folder -> raw tables: read, type and check extract files inside DuckDB.

What each kind of file must hold is declared once, in `KINDS` (one `ExtractKind`
per kind, one `Column` per column); the SQL that reads, types and checks a file
is generated from that declaration.

Reading. CSV (`.csv`, `.csv.gz`) is read by DuckDB with every column as text
and then typed in SQL, so identifiers keep their leading zeros and numbers are
read in the file's own dialect: the delimiter is `;` or `,` (whichever the
header line holds more of); in `;` files `.` groups thousands and `,` is the
decimal mark (`1.313.212`, `85,16`), in `,` files the other way round. UTF-8
with or without a BOM; header names are case-insensitive and the Indonesian
names of DOMAIN.md are aliases (`kode_wilayah`, `noka`, `npp`, `nib`, ...).
Parquet is read with its own types: identifiers must be stored as text there
(a number has already lost its leading zeros), counts and amounts as numbers or
text. `line` in `ops.rejects` is the line in a CSV file (the header is line 1;
blank lines are skipped by the reader and not counted) and the row number
(from 1) in a Parquet file.

One transaction per file: all its good rows (bad rows go to `ops.rejects` with
file, line, column, value and reason) or nothing. A whole file is refused
(status `rejected` in `ops.load_log`, nothing loaded) when its name, header,
encoding or compression is wrong, when it is empty or holds only a header, when
a period column disagrees with the period in its name, or when more than
`reject_threshold_pct` of its rows are bad (then its bad rows are still listed
in `ops.rejects`, so they can be fixed). A file whose bytes were loaded before
(same sha256) is skipped. A new file for a kind and period that already has one
is a correction: the staging views read the newest one.

NIKs (participants). The raw NIK is read and used inside the one SELECT that
reads the file, and only what is derived from it leaves that SELECT:
  - `person_key` = HMAC-SHA256(JKN_PSEUDONYM_KEY, NIK) as 64 hex digits, with
    the padded key's ipad/opad computed once in Python; computed set-wise by a
    vectorised DuckDB function over the C module `flows._pseudonym` (OpenSSL's
    SHA-256 on whole Arrow arrays, GIL released) that is registered only while
    the file is read, or, where that module was not built, in SQL as
    sha256(opad || sha256(ipad || nik)) with the pads as parameters;
  - `sex` `F` when the birth day is 41-71 (day + 40 for women), else `M`;
  - `birth_year` from the NIK's two-digit year: 20YY unless that birth month
    would lie after the file's period, then 19YY (a NIK does not say the
    century; nobody is born after the month the extract describes);
  - for a bad NIK, a masked value for `ops.rejects`: the first 4 characters
    (the region of issue, shared by hundreds of thousands of people) and every
    other digit replaced by `*`, other characters kept, so the shape of the
    mistake stays visible (`3326************`, `3.27***E+**`) but neither
    birth date nor serial does. Any other rejected value holding 16 digits in a
    row (a NIK in the wrong column) is masked the same way.
The raw NIK never reaches a table, a temp table, a log or a message.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import logging
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import duckdb
from pydantic import SecretStr

from flows.database import utc_now
from flows.errors import ConfigError, FileRejected

log = logging.getLogger(__name__)
# A library's logger: where nobody configured logging (the command line, which prints its own
# table), refusals are not also dumped on stderr by logging's last-resort handler.
log.addHandler(logging.NullHandler())

FILE_NAME = re.compile(
    r"^(?P<kind>participants|region_counts|population|employers|workforce)"
    r"_(?P<period>\d{4}-(?:0[1-9]|1[0-2]|S[12]))\.(?P<ext>csv|csv\.gz|parquet)$"
)
SEGMENTS = ("PBI_APBN", "PBI_APBD", "PPU_PN", "PPU_BU", "PBPU", "BP")
# Values after upper-casing and turning spaces and hyphens into underscores.
SEGMENT_ALIASES = {
    **{segment: segment for segment in SEGMENTS},
    "PBI_JK": "PBI_APBN", "PBI_PUSAT": "PBI_APBN", "PD_PEMDA": "PBI_APBD", "PBI_DAERAH": "PBI_APBD",
    "MANDIRI": "PBPU", "BUKAN_PEKERJA": "BP",
}
STATUS_ALIASES = {
    "ACTIVE": "ACTIVE", "AKTIF": "ACTIVE",
    "INACTIVE": "INACTIVE", "NONAKTIF": "INACTIVE", "NON_AKTIF": "INACTIVE", "TIDAK_AKTIF": "INACTIVE",
}
HEADER_BYTES = 1 << 20  # a header line longer than this is not a header


@dataclass(frozen=True)
class Column:
    """One column of an extract kind.

    type: `region` (Kemendagri code), `segment`, `status`, `count` (whole number >= 0),
    `money` (amount >= 0), `digits` (identifier of exactly `digits` digits), `code`
    (identifier, any text), `text`, `nik` (pseudonymised at the door, never stored),
    `period` (optional check of the period in the name; not stored).
    """

    name: str
    type: str
    aliases: tuple[str, ...] = ()
    required: bool = True  # the header must have it
    nullable: bool = False  # a row may leave it empty
    digits: int | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


REGION = Column("region_code", "region", ("kode_wilayah", "kode_kabkota", "kode_kab_kota", "kd_wilayah",
                                          "kode_daerah", "kode_kab"))
SEGMENT = Column("segment", "segment", ("segmen", "segmen_peserta", "jenis_kepesertaan"))
STATUS = Column("status", "status", ("status_peserta", "status_kepesertaan"))
PERIOD = Column("period", "period", ("periode", "bulan", "month", "semester"), required=False, nullable=True)


@dataclass(frozen=True)
class ExtractKind:
    """What a file of one kind must hold, which rows are bad, and where its rows go."""

    name: str
    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # one row per key in a file; a repeat is rejected (it would count twice)
    semester: bool = False  # period YYYY-S1/S2 (else YYYY-MM)
    date_column: str = "month"  # the date the period stands for
    row_checks: tuple[tuple[str, str, str], ...] = ()  # (column, SQL condition of a bad row, reason)

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)


KINDS = {
    "region_counts": ExtractKind(
        "region_counts",
        "raw.region_counts",
        (REGION, SEGMENT, STATUS, Column("participants", "count", ("jumlah_peserta", "peserta", "jml_peserta")),
         PERIOD),
        key=("region_code", "segment", "status"),
    ),
    "population": ExtractKind(
        "population",
        "raw.population",
        (REGION, Column("population", "count", ("jumlah_penduduk", "penduduk", "jml_penduduk")), PERIOD),
        key=("region_code",),
        semester=True,
        date_column="as_of",
        row_checks=(("population", "population = 0", "population must be greater than 0"),),
    ),
    "participants": ExtractKind(
        "participants",
        "raw.participants",
        (
            Column("card_no", "digits", ("noka", "no_kartu", "nomor_kartu", "no_kartu_jkn"), digits=13),
            Column("nik", "nik", ("no_nik", "nomor_induk_kependudukan")),
            REGION,
            SEGMENT,
            STATUS,
            Column("employer_id", "code", ("npp", "no_npp", "kode_badan_usaha"), required=False, nullable=True),
            Column("wage", "money", ("upah", "gaji"), required=False, nullable=True),
            PERIOD,
        ),
        key=("card_no",),
        row_checks=(
            ("employer_id", "segment = 'PPU_BU' and employer_id is null",
             "employer_id (NPP) is required for segment PPU_BU"),
        ),
    ),
    "employers": ExtractKind(
        "employers",
        "raw.employers",
        (
            Column("employer_id", "code", ("npp", "no_npp", "kode_badan_usaha")),
            Column("business_id", "digits", ("nib", "no_nib"), nullable=True, digits=13),
            Column("name", "text", ("nama", "nama_perusahaan", "nama_badan_usaha"), nullable=True),
            REGION,
            Column("registered_workers", "count",
                   ("jumlah_pekerja_terdaftar", "pekerja_terdaftar", "jumlah_pekerja", "jml_pekerja")),
            Column("reported_wage_total", "money", ("total_upah", "jumlah_upah", "upah", "gaji"), nullable=True),
            Column("contribution_due", "money", ("iuran_tagihan", "tagihan_iuran", "iuran_terutang", "iuran"),
                   nullable=True),
            Column("contribution_paid", "money", ("iuran_dibayar", "pembayaran_iuran", "iuran_terbayar"),
                   nullable=True),
            Column("months_in_arrears", "count", ("bulan_tunggakan", "jumlah_bulan_tunggakan", "lama_tunggakan"),
                   nullable=True),
            PERIOD,
        ),
        key=("employer_id",),
    ),
    "workforce": ExtractKind(
        "workforce",
        "raw.workforce",
        (
            Column("business_id", "digits", ("nib", "no_nib"), digits=13),
            Column("name", "text", ("nama", "nama_perusahaan", "nama_badan_usaha"), nullable=True),
            REGION,
            Column("workers", "count", ("jumlah_pekerja", "jumlah_tenaga_kerja", "tenaga_kerja", "jml_pekerja")),
            PERIOD,
        ),
        key=("business_id",),
    ),
}

# SQL types a Parquet column may have, by column type; identifiers must be text.
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT", "UHUGEINT")
NUMBER_TYPES = (*INTEGER_TYPES, "FLOAT", "DOUBLE", "DECIMAL")
PARQUET_TYPES = {
    "count": ("VARCHAR", *NUMBER_TYPES),
    "money": ("VARCHAR", *NUMBER_TYPES),
    "period": ("VARCHAR", "DATE"),
}


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
class _Source:
    """A file opened for reading: the relation over it and how its values are written."""

    relation: str  # SQL table function call
    header: list[str]  # column names as in the file
    types: list[str]  # SQL type of each column (all VARCHAR for CSV)
    first_line: int  # the line (CSV, after the header) or row (Parquet) number of the first row
    delimiter: str  # the CSV delimiter; `,` for Parquet (decimal point `.`)


# ---------------------------------------------------------------- discovery and entry points


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
        "select load_id, file_name, status, message from ops.load_log where sha256 = ? "
        "order by load_id desc limit 1",
        [sha256],
    ).fetchone()


def seen_before(con: duckdb.DuckDBPyConnection, sha256: str) -> bool:
    return previous_load(con, sha256) is not None


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
    loaded and ConfigError is raised.
    """
    results: list[LoadResult | tuple[Path, str]] = []
    batch: dict[str, str] = {}  # sha256 -> name, for the same bytes twice in one batch
    for path in paths:
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
            results.append((path, sha256))
        batch.setdefault(sha256, path.name)
    key = _secret(pseudonym_key)
    to_load = [item[0].name for item in results if isinstance(item, tuple)]
    needs_key = [name for name in to_load if name.startswith("participants_")]
    if needs_key and not key:
        raise ConfigError(
            f"JKN_PSEUDONYM_KEY is not set; it is needed to pseudonymise the NIKs in {', '.join(needs_key)}. "
            "Nothing was loaded."
        )
    return [
        ingest_file(con, item[0], item[1], reject_threshold_pct, run_id, pseudonym_key=key)
        if isinstance(item, tuple) else item
        for item in results
    ]


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    sha256: str,
    reject_threshold_pct: float = 1.0,
    run_id: str | None = None,
    *,
    pseudonym_key: SecretStr | str | None = None,
) -> LoadResult:
    """Load one file in one transaction; a refusal is recorded in `ops.load_log`."""
    load_id = con.execute("select nextval('ops.load_id_seq')").fetchone()[0]
    match = FILE_NAME.match(path.name)
    kind_name = match.group("kind") if match else None
    period = match.group("period") if match else None
    log.info("loading %s (load %d)", path.name, load_id)
    try:
        kind = _kind_of(path.name, kind_name, period)
        try:
            landing, unused = _read(con, path, kind, period, load_id, _secret(pseudonym_key))
            con.begin()
            try:
                result = _store(con, path, kind, period, load_id, reject_threshold_pct, landing, unused)
                _log(con, load_id, path.name, sha256, kind_name, period, result, run_id)
                con.commit()
            except BaseException:
                con.rollback()
                raise
        finally:
            con.execute(f"drop table if exists temp.landing_{load_id}")
            con.execute(f"drop table if exists temp.landing_rejects_{load_id}")
    except FileRejected as error:
        result = LoadResult(path.name, kind_name, period, "rejected", message=redact(str(error)), load_id=load_id)
        _log(con, load_id, path.name, sha256, kind_name, period, result, run_id)
    if result.status == "rejected":
        log.warning("refused %s", result.message)
    else:
        log.info("%s: %d rows staged, %d rejected", path.name, result.rows_loaded, result.rows_rejected)
    return result


def _kind_of(file_name: str, kind_name: str | None, period: str | None) -> ExtractKind:
    if kind_name is None:
        raise FileRejected(
            file_name,
            "file name must be <kind>_<period>.<ext>, kind one of "
            f"{', '.join(KINDS)}; period YYYY-MM (YYYY-S1/S2 for population); ext csv, csv.gz or parquet",
        )
    kind = KINDS[kind_name]
    if kind.semester != ("S" in period):
        expected = "YYYY-S1 or YYYY-S2" if kind.semester else "YYYY-MM"
        raise FileRejected(file_name, f"period {period!r} in the name: {kind_name} files need {expected}")
    return kind


def _log(con, load_id, file_name, sha256, kind, period, result: LoadResult, run_id) -> None:
    con.execute(
        "insert into ops.load_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [load_id, file_name, sha256, kind, period, result.rows_loaded, result.rows_rejected, result.status,
         result.message, utc_now(), run_id],
    )


def _secret(key: SecretStr | str | None) -> str | None:
    if isinstance(key, SecretStr):
        return key.get_secret_value() or None
    return key or None


def redact(text: str) -> str:
    """Mask any run of 16 or more digits (a NIK) in a message, as `mask_nik` does in SQL."""
    return re.sub(r"\d{16,}", lambda match: match.group()[:4] + "*" * (len(match.group()) - 4), text)


def hmac_pads(key: str) -> tuple[bytes, bytes]:
    """The HMAC-SHA256 inner and outer pads of `key` (RFC 2104), for the set-wise HMAC in SQL."""
    raw = key.encode("utf-8")
    if len(raw) > 64:
        raw = hashlib.sha256(raw).digest()
    raw = raw.ljust(64, b"\0")
    return bytes(byte ^ 0x36 for byte in raw), bytes(byte ^ 0x5C for byte in raw)


# ---------------------------------------------------------------- opening a file


def _open_source(con: duckdb.DuckDBPyConnection, path: Path) -> _Source:
    if path.name.endswith(".parquet"):
        return _open_parquet(con, path)
    return _open_csv(path)


def _open_csv(path: Path) -> _Source:
    compressed = path.name.endswith(".gz")
    if compressed:
        _check_gzip(path)
    header_line = _header_line(path, compressed)
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    header = next(csv.reader([header_line], delimiter=delimiter, quotechar='"'))
    columns = "{" + ", ".join(f"'c{index}': 'VARCHAR'" for index in range(len(header))) + "}"
    relation = (
        f"read_csv('{_quote(path)}', auto_detect = false, header = true, delim = '{delimiter}', "
        f"quote = '\"', escape = '\"', columns = {columns}, compression = '{'gzip' if compressed else 'none'}')"
    )
    return _Source(relation, header, ["VARCHAR"] * len(header), 2, delimiter)


def _check_gzip(path: Path) -> None:
    """Decompress the whole stream once: DuckDB reads a truncated .gz up to where it breaks,
    and a cut that falls on a line end would otherwise load part of the file."""
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                while chunk:
                    inflater.decompress(chunk, 1 << 24)
                    chunk = inflater.unconsumed_tail
                    if inflater.eof and inflater.unused_data:
                        # a multi-member gzip file: continue with the next member
                        chunk = inflater.unused_data
                        inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    except zlib.error as error:
        raise FileRejected(path.name, f"unreadable: corrupt gzip data ({error})") from None
    if not inflater.eof:
        raise FileRejected(path.name, "unreadable: the gzip data is truncated (the file ends before its end marker)")


def _header_line(path: Path, compressed: bool) -> str:
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.readline(HEADER_BYTES)
    except (OSError, EOFError) as error:
        raise FileRejected(path.name, f"unreadable: {error}") from None
    try:
        line = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileRejected(
            path.name, "is not UTF-8 text; save it as UTF-8 (in Excel: CSV UTF-8)", line=1
        ) from None
    if not line.strip():
        raise FileRejected(path.name, "the file is empty (no header, no rows)")
    return line.rstrip("\r\n")


def _open_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> _Source:
    relation = f"read_parquet('{_quote(path)}')"
    try:
        described = con.execute(f"describe select * from {relation}").fetchall()
    except duckdb.Error as error:
        raise FileRejected(path.name, f"unreadable: {_duckdb_problem(error, path)[1]}") from None
    header = [row[0] for row in described]
    types = [row[1] for row in described]
    return _Source(relation, header, types, 1, ",")


# ---------------------------------------------------------------- header


def _normal_name(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lstrip("\ufeff").strip('"').strip().lower())


def _map_columns(file_name: str, source: _Source, kind: ExtractKind) -> tuple[dict[str, int], list[str]]:
    """canonical column -> position in the file, and the file's columns nothing reads.
    Refuses the file when a required column is missing or two columns mean the same."""
    positions: dict[str, int] = {}
    unused = []
    for position, original in enumerate(source.header):
        name = _normal_name(original)
        column = next((column for column in kind.columns if name in column.names), None)
        if column is None:
            unused.append(original)
            continue
        if column.name in positions:
            first = source.header[positions[column.name]]
            raise FileRejected(
                file_name, f"columns {first!r} and {original!r} both mean {column.name}; keep one", line=1
            )
        positions[column.name] = position
    missing = [column.name for column in kind.columns if column.required and column.name not in positions]
    if missing:
        expected = "; ".join(
            f"{column.name} (or {', '.join(column.aliases)})" if column.aliases else column.name
            for column in kind.columns
            if column.name in missing
        )
        raise FileRejected(
            file_name,
            f"missing required column(s) {', '.join(missing)}; the header has: {', '.join(source.header)}; "
            f"expected: {expected}",
            line=1,
        )
    if source.relation.startswith("read_parquet"):
        _check_parquet_types(file_name, source, kind, positions)
    return positions, unused


def _check_parquet_types(file_name: str, source: _Source, kind: ExtractKind, positions: dict[str, int]) -> None:
    problems = []
    for name, position in positions.items():
        column = kind.column(name)
        sql_type = source.types[position].split("(")[0]
        allowed = PARQUET_TYPES.get(column.type, ("VARCHAR",))
        if sql_type not in allowed:
            why = " (identifiers are text: a number loses leading zeros and digits)" if allowed == ("VARCHAR",) else ""
            problems.append(
                f"column {source.header[position]!r} is {source.types[position]}, expected "
                f"{' or '.join(sorted({'a number' if t in NUMBER_TYPES else t for t in allowed}))}{why}"
            )
    if problems:
        raise FileRejected(file_name, "wrong Parquet column types: " + "; ".join(problems))


# ---------------------------------------------------------------- the load


def _read(con, path: Path, kind: ExtractKind, period: str, load_id: int,
          pseudonym_key: str | None) -> tuple[str, list[str]]:
    """Read the file into the temp table `landing_<load_id>`, each column as text and typed, the
    NIK already pseudonymised; refuse it if it cannot be read. Returns a relation over that table
    with the line of each row, and the file's columns nothing reads.

    The temp table is created outside the file's transaction: it is not the database's data (a
    crash drops it), and rows created inside a transaction get provisional rowids.
    """
    source = _open_source(con, path)
    positions, unused = _map_columns(path.name, source, kind)
    # Rows keep the file's order in the landing table (DuckDB preserves insertion order, also
    # when it reads in parallel), so a row's line is its rowid plus the first line. Numbering
    # rows in the reading SELECT instead (row_number() over ()) would make the read single-threaded.
    landing = f"(select rowid + {source.first_line} as line, * from temp.landing_{load_id})"
    parameters = _parameters(con, kind, period, pseudonym_key)
    person_key = _register_person_key(con, parameters)
    try:
        con.execute(
            f"create temp table landing_{load_id} as "
            f"{_landing_select(source, kind, positions, _checks(kind), person_key)}",
            parameters,
        )
    except duckdb.Error as error:
        line, problem = _duckdb_problem(error, path)
        raise FileRejected(path.name, f"unreadable: {problem}", line=line) from None
    finally:
        if person_key == PERSON_KEY_FUNCTION:
            con.remove_function(PERSON_KEY_FUNCTION)
    if con.execute(f"select count(*) from temp.landing_{load_id}").fetchone()[0] == 0:
        raise FileRejected(path.name, "the file holds a header but no rows")
    if "period" in positions:
        _check_period_column(con, path.name, landing, period, source.header[positions["period"]])
    return landing, unused


def _store(con, path: Path, kind: ExtractKind, period: str, load_id: int, threshold_pct: float,
           landing: str, unused: list[str]) -> LoadResult:
    """Inside the file's transaction: record the bad rows, and insert the good ones unless there
    are too many bad ones."""
    rejects = f"temp.landing_rejects_{load_id}"
    total = con.execute(f"select count(*) from {landing}").fetchone()[0]
    # the row checks read only the rows the landing SELECT flagged `bad` (few, usually none)
    bad_rows = _bad_rows(kind, landing)
    con.execute(f"create temp table landing_rejects_{load_id} as {_rejects_select(kind, bad_rows)}")
    _reject_repeats(con, kind, landing, rejects)
    rejected = con.execute(f"select count(distinct line) from {rejects}").fetchone()[0]
    con.execute(
        f"insert into ops.rejects select ?, ?, line, column_name, value, reason from {rejects} "
        "order by line, column_name",
        [load_id, path.name],
    )
    notes = [f"ignored column(s) nothing reads: {', '.join(unused)}"] if unused else []
    if rejected * 100.0 > threshold_pct * total:
        first = con.execute(
            f"select line, column_name, value, reason from {rejects} order by line, column_name limit 1"
        ).fetchone()
        message = (
            f"{path.name}: {rejected} of {total} rows are bad, more than the {threshold_pct:g}% allowed "
            f"(JKN_REJECT_THRESHOLD_PCT); nothing loaded, the bad rows are in ops.rejects; first: line {first[0]}, "
            f"column {first[1]!r}, value {first[2]!r}: {first[3]}"
        )
        return LoadResult(path.name, kind.name, period, "rejected", 0, rejected, redact(message), load_id)

    stored = _stored_columns(kind)
    repeats = con.execute(f"select count(*) > 0 from {rejects} where reason like 'repeats line %'").fetchone()[0]
    good = (f"{landing} as landing anti join (select distinct line from {rejects}) as bad on landing.line = bad.line "
            "where not landing.bad" if repeats else f"temp.landing_{load_id} where not bad")
    con.execute(
        f"insert into {kind.table} (load_id, file_name, period, {kind.date_column}, {', '.join(stored)}) "
        f"select ?, ?, ?, ?::date, {', '.join(stored)} from {good}",
        [load_id, path.name, period, period_date(period)],
    )
    if rejected:
        notes.append(f"{rejected} bad row(s) in ops.rejects")
    return LoadResult(path.name, kind.name, period, "staged", total - rejected, rejected, "; ".join(notes), load_id)


def _parameters(con, kind: ExtractKind, period: str, pseudonym_key: str | None) -> dict:
    if not any(column.type == "nik" for column in kind.columns):
        return {}
    if not pseudonym_key:
        raise ConfigError("JKN_PSEUDONYM_KEY is not set; it is needed to pseudonymise NIKs")
    ipad, opad = hmac_pads(pseudonym_key)
    provinces = [row[0] for row in con.execute("select distinct province_code from ref.regions").fetchall()]
    year, month = period.split("-")
    return {"ipad": ipad, "opad": opad, "provinces": provinces, "period_month": int(year) * 100 + int(month)}


PERSON_KEY_FUNCTION = "jkn_person_key"
# False: always compute person_key in SQL (tests compare both ways with Python's hmac)
PERSON_KEY_IN_C = True


def _register_person_key(con: duckdb.DuckDBPyConnection, parameters: dict) -> str:
    """How the landing SELECT computes person_key: `PERSON_KEY_FUNCTION`, a vectorised DuckDB
    function over the C module `flows._pseudonym` (OpenSSL's SHA-256, GIL released, so DuckDB's
    threads hash in parallel: about 5 s of CPU per 10 M NIKs here, against 25 s for SQL's two
    sha256() calls a row; BENCHMARKS.md), or "sql"
    where that module was not built. Takes the pads out of `parameters` when the function
    holds them. The function is registered on `con` until the caller removes it."""
    if "ipad" not in parameters or not PERSON_KEY_IN_C:
        return "sql"
    try:
        from flows import _pseudonym
    except ImportError:
        return "sql"
    import pyarrow as pa
    import pyarrow.compute as pc

    ipad, opad = parameters.pop("ipad"), parameters.pop("opad")

    def person_keys(values):  # no annotations: DuckDB evaluates them in the module namespace
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            values = values.cast(pa.large_string())
        count = len(values)
        _, offsets, data = values.buffers()
        width = 8 if pa.types.is_large_string(values.type) else 4
        digests = _pseudonym.hex_digests(ipad, opad, offsets, data or b"", width, values.offset, count)
        validity = pc.is_valid(values).buffers()[1] if values.null_count else None
        return pa.StringArray.from_buffers(
            count, pa.py_buffer(_hex_offsets(count)), pa.py_buffer(digests), validity, values.null_count
        )

    con.create_function(
        PERSON_KEY_FUNCTION, person_keys, [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"),
        type="arrow", null_handling="special", side_effects=False,
    )
    return PERSON_KEY_FUNCTION


def _hex_offsets(count: int, _cache: dict[int, bytes] = {}) -> bytes:  # noqa: B006 - a deliberate cache
    """int32 offsets of `count` values of 64 characters each."""
    if count not in _cache:
        import array

        if len(_cache) > 8:
            _cache.clear()
        _cache[count] = array.array("i", range(0, 64 * (count + 1), 64)).tobytes()
    return _cache[count]


def _text(source: _Source, position: int | None) -> str:
    """The trimmed text of a file column (null when empty or absent), numbers written plainly."""
    if position is None:
        return "null::varchar"
    quoted = source.header[position].replace('"', '""')
    column = f"c{position}" if source.relation.startswith("read_csv") else f'"{quoted}"'
    sql_type = source.types[position].split("(")[0]
    if sql_type in ("FLOAT", "DOUBLE", "DECIMAL"):
        # 600000.0 is the whole number 600000; 85.5 stays 85.5 and is rejected where a count is due
        column = (f"case when {column} = trunc({column}) then cast({column}::hugeint as varchar) "
                  f"else cast({column} as varchar) end")
    return f"nullif(trim(cast({column} as varchar)), '')"


def _landing_select(source: _Source, kind: ExtractKind, positions: dict[str, int],
                    checks: list[tuple[str, str, str, str]], person_key: str = "sql") -> str:
    """One SELECT that reads the file and returns, per line, each column's typed value and
    `bad`: whether any of `checks` fails. The text a column was typed from is kept only on bad
    rows (for `ops.rejects`): on a good row it is null, so a national extract's landing table
    holds one copy of each value, not two. The NIK is used only inside it (see the module
    docstring)."""
    texts = ", ".join(
        f"{_text(source, positions.get(column.name))} as {column.name}_text" for column in kind.columns
    )
    outputs = []
    for column in kind.columns:
        if column.type == "period" and column.name not in positions:
            continue  # nothing to compare with the file name
        outputs += _column_outputs(column, source.delimiter, kind.semester, person_key)
    typed = (
        f"with source as (select {texts} from {source.relation}), "
        f"checked as (select *, {_nik_problem('nik_text')} as nik_problem from source) "
        if any(column.type == "nik" for column in kind.columns)
        else f"with checked as (select {texts} from {source.relation}) "
    ) + f"select {', '.join(outputs)} from checked"
    bad = " or ".join(f"coalesce({condition}, false)" for _, _, condition, _ in checks) or "false"
    texts = _texts_of_bad_rows(kind)
    if not texts:
        return f"select *, {bad} as bad from ({typed})"
    return (
        f"select * exclude ({', '.join(texts)}), case when bad then [{', '.join(texts)}] end as bad_row_texts "
        f"from (select *, {bad} as bad from ({typed}))"
    )


def _texts_of_bad_rows(kind: ExtractKind) -> list[str]:
    """The text columns `_landing_select` keeps only on bad rows, in one list column (one null
    per good row instead of one per column). The period column is not among them: it is
    compared with the file name on every row (`_check_period_column`); nor the NIK's: its
    masked value and problem are null on good rows already."""
    return [
        f"{column.name}_value" for column in kind.columns
        if _value_column(column) == f"{column.name}_value" and column.type not in ("period", "nik")
    ]


def _bad_rows(kind: ExtractKind, landing: str) -> str:
    """The landing rows with a failed check, their texts unpacked from `bad_row_texts`."""
    texts = _texts_of_bad_rows(kind)
    unpacked = "".join(f", bad_row_texts[{index}] as {name}" for index, name in enumerate(texts, start=1))
    return f"(select *{unpacked} from {landing} where bad)"


def _column_outputs(column: Column, delimiter: str, semester: bool, person_key: str = "sql") -> list[str]:
    name, text = column.name, f"{column.name}_text"
    if column.type == "nik":
        nik_ok = "nik_problem is null"
        hmac = (f"{person_key}(nik_text)" if person_key != "sql"
                else "sha256($opad || unhex(sha256($ipad || encode(nik_text))))")
        day = "try_cast(substr(nik_text, 7, 2) as integer)"
        month, year = "try_cast(substr(nik_text, 9, 2) as integer)", "try_cast(substr(nik_text, 11, 2) as integer)"
        return [
            f"case when not {nik_ok} then {mask_nik('nik_text')} end as nik_value",
            "nik_problem",
            f"case when {nik_ok} then {hmac} end as person_key",
            f"case when {nik_ok} then case when {day} > 40 then 'F' else 'M' end end as sex",
            f"case when {nik_ok} then case when (2000 + {year}) * 100 + {month} <= $period_month "
            f"then 2000 + {year} else 1900 + {year} end end as birth_year",
        ]
    if column.type == "region":
        return [f"{text} as {name}_value", f"regexp_replace({text}, '[.\\s]', '', 'g') as {name}"]
    if column.type == "segment":
        return [f"{text} as {name}_value", f"{_lookup(text, SEGMENT_ALIASES)} as {name}"]
    if column.type == "status":
        return [f"{text} as {name}_value", f"{_lookup(text, STATUS_ALIASES)} as {name}"]
    if column.type == "count":
        return [f"{text} as {name}_value", f"{_integer(text, delimiter)} as {name}"]
    if column.type == "money":
        return [f"{text} as {name}_value", f"{_decimal(text, delimiter)} as {name}"]
    if column.type == "period":
        return [f"{text} as {name}_value", f"{_period(text, semester)} as {name}"]
    return [f"{text} as {name}"]  # digits, code, text: the text is the value


def _value_column(column: Column) -> str:
    return column.name if column.type in ("digits", "code", "text") else f"{column.name}_value"


def mask_nik(expression: str) -> str:
    """SQL: the first 4 characters, then every digit as `*` (see the module docstring)."""
    return f"(left({expression}, 4) || regexp_replace(substr({expression}, 5), '[0-9]', '*', 'g'))"


def _nik_problem(nik: str) -> str:
    day, month = f"try_cast(substr({nik}, 7, 2) as integer)", f"try_cast(substr({nik}, 9, 2) as integer)"
    # the usual case (16 digits) first: this runs once per participant
    return (
        f"case when regexp_full_match({nik}, '[0-9]{{16}}') then case "
        f"when not list_contains($provinces, left({nik}, 2)) then "
        "'NIK province code (digits 1-2) is not a known province' "
        f"when not ({day} between 1 and 31 or {day} between 41 and 71) then "
        "'NIK birth day (digits 7-8) must be 01-31, or 41-71 for women' "
        f"when not {month} between 1 and 12 then 'NIK birth month (digits 9-10) must be 01-12' end "
        f"when {nik} is null then 'NIK is missing' "
        f"when regexp_full_match({nik}, '[0-9]+([.,][0-9]+)?[eE][+]?[0-9]+') then "
        "'NIK was turned into a number by a spreadsheet (like 3.27306E+15) and lost its last digits; "
        "export the column as text' "
        "else 'NIK must be 16 digits' end"
    )


def _lookup(text: str, aliases: dict[str, str]) -> str:
    cases = " ".join(f"when '{alias}' then '{value}'" for alias, value in aliases.items())
    return f"case replace(replace(upper({text}), ' ', '_'), '-', '_') {cases} end"


def _integer(text: str, delimiter: str) -> str:
    """Text -> bigint in the file's dialect (`1.313.212` in `;` files, `1,313,212` in `,` files);
    null when it is not exactly a whole number, so `85,16` or `600.5` is rejected, not rounded."""
    separator = "." if delimiter == ";" else ","
    grouped = f"-?[0-9]{{1,3}}([{separator}][0-9]{{3}})+"
    return (
        f"case when regexp_full_match({text}, '-?[0-9]+') then try_cast({text} as bigint) "
        f"when regexp_full_match({text}, '{grouped}') then try_cast(replace({text}, '{separator}', '') as bigint) end"
    )


def _decimal(text: str, delimiter: str) -> str:
    """Text -> decimal(20, 2) in the file's dialect (`3.500.000,50` in `;` files, `3500000.50` or
    `3,500,000.50` in `,` files); null when it is not a number."""
    thousands, decimal = (".", ",") if delimiter == ";" else (",", ".")
    plain = f"-?[0-9]+([{decimal}][0-9]+)?"
    grouped = f"-?[0-9]{{1,3}}([{thousands}][0-9]{{3}})+([{decimal}][0-9]+)?"
    number = f"replace(replace({text}, '{thousands}', ''), '{decimal}', '.')"
    # Through decimal(18, 2) first: DuckDB 1.5 casts text to a decimal wider than 18 digits
    # (hugeint-backed) ~200x slower (~50 us a value: 12 s per million wages, bench/ issue 9);
    # only a value of 10^16 or more takes the slow path.
    typed = f"coalesce(try_cast({number} as decimal(18, 2))::decimal(20, 2), try_cast({number} as decimal(20, 2)))"
    return (
        f"case when regexp_full_match({text}, '{plain}') or regexp_full_match({text}, '{grouped}') then {typed} end"
    )


MONTH_FORMATS = (  # (pattern, replacement giving YYYY-MM)
    (r"(\d{4})[-/.]?(\d{2})", r"\1-\2"),
    (r"(\d{4})[-/.](\d{2})[-/.]\d{2}", r"\1-\2"),
    (r"(\d{2})[-/.](\d{4})", r"\2-\1"),
    (r"\d{2}[-/.](\d{2})[-/.](\d{4})", r"\2-\1"),
)
SEMESTER_FORMATS = (  # (pattern, replacement giving YYYY-S1/S2)
    (r"(\d{4})[-_ ]?[sS]([12])", r"\1-S\2"),
    (r"(\d{4})[-/.]06[-/.]30", r"\1-S1"),
    (r"(\d{4})[-/.]12[-/.]31", r"\1-S2"),
    (r"30[-/.]06[-/.](\d{4})", r"\1-S1"),
    (r"31[-/.]12[-/.](\d{4})", r"\1-S2"),
)


def _period(text: str, semester: bool) -> str:
    formats = SEMESTER_FORMATS if semester else MONTH_FORMATS
    cases = " ".join(
        f"when regexp_full_match({text}, '{pattern}') then regexp_replace({text}, '^{pattern}$', '{replacement}')"
        for pattern, replacement in formats
    )
    return f"case {cases} end"


def _check_period_column(con, file_name: str, landing: str, period: str, header_name: str) -> None:
    """When the file names its period in a column, every row must agree with the file name."""
    wrong = con.execute(
        f"select line, period_value from {landing} where period_value is not null and period is distinct from ? "
        "order by line limit 1",
        [period],
    ).fetchone()
    if wrong:
        raise FileRejected(
            file_name,
            f"period {wrong[1] or ''!r} in the content differs from {period!r} in the file name",
            line=wrong[0],
            column=header_name,
        )


def _checks(kind: ExtractKind) -> list[tuple[str, str, str, str]]:
    """(column, value column, condition that makes a row bad, reason as SQL) for every check of the kind."""
    checks = []
    for column in kind.columns:
        name, value = column.name, _value_column(column)
        if column.type in ("nik", "period"):
            if column.type == "nik":
                checks.append((name, "nik_value", "nik_problem is not null", "nik_problem"))
            continue
        if not column.nullable:
            checks.append((name, value, f"{value} is null", f"'{name} is missing'"))
        if column.type == "region":
            checks.append((name, value, f"{value} is not null and not regexp_full_match({name}, '[0-9]{{4}}')",
                           "'region code must be 4 digits (3326 or 33.26)'"))
            checks.append((name, value, f"regexp_full_match({name}, '[0-9]{{4}}') and {name} not in "
                           "(select region_code from ref.regions)", "'unknown region code (not in seeds/regions.csv)'"))
        elif column.type in ("segment", "status"):
            expected = ", ".join(SEGMENTS) if column.type == "segment" else "ACTIVE/AKTIF or INACTIVE/NONAKTIF"
            checks.append((name, value, f"{value} is not null and {name} is null",
                           f"'unknown {column.type}; expected {expected}'"))
        elif column.type == "count":
            checks.append((name, value, f"{value} is not null and {name} is null", "'not a whole number'"))
            checks.append((name, value, f"{name} < 0", "'negative count'"))
        elif column.type == "money":
            checks.append((name, value, f"{value} is not null and {name} is null", "'not a number'"))
            checks.append((name, value, f"{name} < 0", "'negative amount'"))
        elif column.type == "digits":
            checks.append((
                name, value,
                f"{value} is not null and not regexp_full_match({name}, '[0-9]{{{column.digits}}}')",
                f"case when regexp_full_match({name}, '[0-9]+([.,][0-9]+)?[eE][+]?[0-9]+') then "
                f"'{name} was turned into a number by a spreadsheet and lost digits; export the column as text' "
                f"else '{name} must be {column.digits} digits (text, leading zeros kept)' end",
            ))
    for name, condition, reason in kind.row_checks:
        checks.append((name, _value_column(kind.column(name)), condition, f"'{reason}'"))
    return checks


def _rejects_select(kind: ExtractKind, landing: str) -> str:
    parts = []
    for name, value, condition, reason in _checks(kind):
        shown = value if name == "nik" else (
            f"case when regexp_matches({value}, '[0-9]{{16}}') then {mask_nik(value)} else {value} end"
        )
        parts.append(
            f"select line, '{name}' as column_name, {shown} as value, {reason} as reason "
            f"from {landing} where {condition}"
        )
    return " union all ".join(parts)


def _reject_repeats(con, kind: ExtractKind, landing: str, rejects: str) -> None:
    """A second row with the key of an earlier good row would count twice: reject it, naming the first.

    Keys are grouped by their 64-bit hash first (a national extract has tens of millions of
    distinct card numbers, and grouping integers is several times cheaper than grouping text);
    only rows whose hash repeats are compared by the key itself, so a hash collision costs
    nothing but a comparison."""
    key = ", ".join(kind.key)
    shown = kind.key[0] if len(kind.key) == 1 else f"concat_ws(' / ', {key})"
    con.execute(
        f"insert into {rejects} "
        f"with candidates as (select hash({key}) as key_hash from {landing} where not bad "
        "group by all having count(*) > 1), "
        f"suspects as (select line, {key} from {landing} where not bad "
        f"and hash({key}) in (select key_hash from candidates)), "
        f"repeated as (select {key}, min(line) as first_line from suspects group by {key} having count(*) > 1) "
        f"select suspects.line, '{'+'.join(kind.key)}', {shown}, "
        f"'repeats line ' || repeated.first_line || ': one row per {' x '.join(kind.key)} in a file' "
        f"from suspects inner join repeated using ({key}) where suspects.line > repeated.first_line"
    )


def _stored_columns(kind: ExtractKind) -> list[str]:
    stored = []
    for column in kind.columns:
        if column.type == "nik":
            stored += ["person_key", "sex", "birth_year"]
        elif column.type != "period":
            stored.append(column.name)
    return stored


def _duckdb_problem(error: Exception, path: Path) -> tuple[int | None, str]:
    """(line, what is wrong) from a DuckDB read error, without the line's content (it may hold a NIK)."""
    text = str(error).replace(f"'{path}'", "the file").replace(str(path), "the file")
    line_match = re.search(r"CSV Error on Line: (\d+)", text)
    line = int(line_match.group(1)) if line_match else None
    if "Invalid unicode" in text or "not utf-8" in text.lower():
        return line, "is not UTF-8 text; save it as UTF-8 (in Excel: CSV UTF-8)"
    columns = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    if columns:
        return line, f"{columns.group(2)} field(s) where the header has {columns.group(1)}"
    if "unterminated quote" in text.lower():
        return line, "a quoted value is not closed"
    if "magic bytes" in text or "too small to be a Parquet file" in text:
        return line, "not a complete Parquet file (cut short, or another format named .parquet)"
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return line, redact(first)


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")
