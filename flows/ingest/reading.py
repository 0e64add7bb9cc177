"""Opening an extract file: CSV (`.csv`, `.csv.gz`) or Parquet, its dialect, and its header.

CSV is read by DuckDB with every column as text and then typed in SQL (`rules`), so identifiers
keep their leading zeros and numbers are read in the file's own dialect: the delimiter is `;` or
`,` (whichever the header line holds more of); in `;` files `.` groups thousands and `,` is the
decimal mark (`1.313.212`, `85,16`), in `,` files the other way round. UTF-8 with or without a
BOM; header names are case-insensitive and the Indonesian names of the domain notes are aliases
(`kode_wilayah`, `noka`, `npp`, `nib`, ...). Parquet is read with its own types: identifiers must
be stored as text there (a number has already lost its leading zeros), counts and amounts as
numbers or text.
"""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

from flows.errors import FileRejected
from flows.ingest.kinds import ExtractKind
from flows.ingest.pseudonym import RULES_TEXT_FUNCTION, redact

HEADER_BYTES = 1 << 20  # a header line longer than this is not a header
# SQL types a Parquet column may have, by column type; identifiers must be text.
INTEGER_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
)
NUMBER_TYPES = (*INTEGER_TYPES, "FLOAT", "DOUBLE", "DECIMAL")
PARQUET_TYPES = {
    "count": ("VARCHAR", *NUMBER_TYPES),
    "money": ("VARCHAR", *NUMBER_TYPES),
    "period": ("VARCHAR", "DATE"),
}


def physical_lines(path: Path, delimiter: str, rows: set[int]) -> dict[int, int]:
    """The line each of `rows` (data rows numbered from 0, as DuckDB counts them) starts on in a CSV
    file, where blank lines (which DuckDB skips) or quoted line breaks make the two differ. Reads the
    file once, as far as the last row asked for; only files with bad rows come here."""
    found: dict[int, int] = {}
    if not rows:
        return found
    last = max(rows)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter, quotechar='"')
        next(reader, None)  # the header
        index, start = 0, reader.line_num + 1
        for record in reader:
            if record:
                if index in rows:
                    found[index] = start
                if index >= last:
                    break
                index += 1
            start = reader.line_num + 1
    return found


def counts_lines_as_duckdb(path: Path) -> bool:
    """Whether a data row's line is its row number plus 2: no quote (so no quoted line break) and no
    blank line anywhere in the file."""
    opener = gzip.open if path.name.endswith(".gz") else open
    tail = b""
    with opener(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 24), b""):
            chunk = tail + chunk
            if b'"' in chunk or b"\n\n" in chunk or b"\n\r\n" in chunk or b"\r\r" in chunk:
                return False
            tail = chunk[-2:]
    return True


@dataclass
class Source:
    """A file opened for reading: the relation over it and how its values are written."""

    relation: str  # SQL table function call
    header: list[str]  # column names as in the file
    types: list[str]  # SQL type of each column (all VARCHAR for CSV)
    first_line: int  # the line (CSV, after the header) or row (Parquet) number of the first row
    delimiter: str  # the CSV delimiter; `,` for Parquet (decimal point `.`)


def open_source(con: duckdb.DuckDBPyConnection, path: Path) -> Source:
    if path.name.endswith(".parquet"):
        return open_parquet(con, path)
    return open_csv(path)


def open_csv(path: Path) -> Source:
    compressed = path.name.endswith(".gz")
    if compressed:
        check_gzip(path)
    line, newline = header_line(path, compressed)
    delimiter = delimiter_of(line)
    try:
        header = next(csv.reader([line], delimiter=delimiter, quotechar='"'))
    except csv.Error as error:
        raise FileRejected(path.name, f"the header cannot be read: {error}", line=1) from None
    columns = "{" + ", ".join(f"'c{index}': 'VARCHAR'" for index in range(len(header))) + "}"
    line_end = ", new_line = '\\r'" if newline == "\r" else ""
    relation = (
        f"read_csv('{quote(path)}', auto_detect = false, header = true, delim = '{delimiter}', "
        f"quote = '\"', escape = '\"', columns = {columns}, compression = '{'gzip' if compressed else 'none'}'"
        f"{line_end})"
    )
    return Source(relation, header, ["VARCHAR"] * len(header), 2, delimiter)


def delimiter_of(header: str) -> str:
    """`;` or `,`: whichever the header holds more of outside quotes (a quoted name may hold commas)."""
    unquoted = re.sub(r'"[^"]*"', "", header)
    return ";" if unquoted.count(";") > unquoted.count(",") else ","


def check_gzip(path: Path) -> None:
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


def header_line(path: Path, compressed: bool) -> tuple[str, str]:
    """The header line and the file's line end (`\\n`, or `\\r` for a file whose lines end in CR alone)."""
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as handle:
            start = handle.read(HEADER_BYTES)
    except (OSError, EOFError) as error:
        raise FileRejected(path.name, f"unreadable: {error}") from None
    if not start.strip():
        raise FileRejected(path.name, "the file is empty (no header, no rows)")
    newline = b"\n" if b"\n" in start or b"\r" not in start else b"\r"
    if newline not in start and len(start) == HEADER_BYTES:
        raise FileRejected(
            path.name,
            f"no line end in its first {HEADER_BYTES >> 20} MB: not a CSV extract (or a header longer than that)",
            line=1,
        )
    try:
        line = start.split(newline, 1)[0].decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileRejected(path.name, "is not UTF-8 text; save it as UTF-8 (in Excel: CSV UTF-8)", line=1) from None
    return line.rstrip("\r\n"), newline.decode()


def open_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> Source:
    relation = f"read_parquet('{quote(path)}', hive_partitioning = false)"  # a folder's `x=y` adds no column
    try:
        described = con.execute(f"describe select * from {relation}").fetchall()
    except duckdb.Error as error:
        raise FileRejected(path.name, f"unreadable: {duckdb_problem(error, path)[1]}") from None
    header = [row[0] for row in described]
    types = [row[1] for row in described]
    # DuckDB renames a repeated column (`nik`, `nik_1`): a file that names one column twice is refused,
    # as a CSV header that does is (`map_columns`)
    written = [
        row[0]
        for row in con.execute(
            f"select name from parquet_schema('{quote(path)}') where num_children is null or num_children = 0"
        ).fetchall()
    ]
    repeated = sorted({name for name in written if [normal_name(n) for n in written].count(normal_name(name)) > 1})
    if repeated:
        raise FileRejected(
            path.name, f"column(s) {', '.join(map(repr, repeated))} appear more than once; keep one", line=1
        )
    return Source(relation, header, types, 1, ",")


# ---------------------------------------------------------------- header


def normal_name(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lstrip("\ufeff").strip('"').strip().lower())


def map_columns(file_name: str, source: Source, kind: ExtractKind) -> tuple[dict[str, int], list[str]]:
    """canonical column -> position in the file, and the file's columns nothing reads.
    Refuses the file when a required column is missing or two columns mean the same."""
    positions: dict[str, int] = {}
    unused = []
    for position, original in enumerate(source.header):
        name = normal_name(original)
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
        check_parquet_types(file_name, source, kind, positions)
    return positions, unused


def check_parquet_types(file_name: str, source: Source, kind: ExtractKind, positions: dict[str, int]) -> None:
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


def column_text(source: Source, position: int | None, native: bool = False) -> str:
    """The trimmed text of a file column (null when empty or absent), numbers written plainly.
    `native`: by the extension's `jkn_text`, which returns what `nullif(trim(...), '')` does
    (flows/native/jkn_rules.c), at a fraction of its cost."""
    if position is None:
        return "null::varchar"
    quoted = source.header[position].replace('"', '""')
    column = f"c{position}" if source.relation.startswith("read_csv") else f'"{quoted}"'
    sql_type = source.types[position].split("(")[0]
    if sql_type in ("FLOAT", "DOUBLE", "DECIMAL"):
        # 600000.0 is the whole number 600000; 85.5 stays 85.5 and is rejected where a count is due
        column = (
            f"case when {column} = trunc({column}) then cast({column}::hugeint as varchar) "
            f"else cast({column} as varchar) end"
        )
    text = column if sql_type == "VARCHAR" else f"cast({column} as varchar)"
    return f"{RULES_TEXT_FUNCTION}({text})" if native else f"nullif(trim({text}), '')"


def duckdb_problem(error: Exception, path: Path) -> tuple[int | None, str]:
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
    size = re.search(r"Maximum line size of (\d+) bytes exceeded", text)
    if size:
        limit = int(size.group(1)) / 1e6
        return line, f"a line longer than {limit:g} MB (a field of megabytes is not an extract value)"
    if "magic bytes" in text or "too small to be a Parquet file" in text:
        return line, "not a complete Parquet file (cut short, or another format named .parquet)"
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return line, redact(first)


def quote(path: Path) -> str:
    return str(path).replace("'", "''")
