"""Landing folder -> raw tables: read, type and check extract files inside DuckDB.

Each file loads in one transaction: all its good rows (bad rows go to
`ops.rejects` with file, line, column, value and reason) or nothing. A file
whose content was loaded before (same sha256) is skipped. A new file for a
kind and period that already has one is a correction: the staging views
switch to it once the batch is published.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from flows.database import utc_now
from flows.errors import FileRejected

log = logging.getLogger(__name__)

FILE_NAME = re.compile(
    r"^(?P<kind>participants|region_counts|population|employers|workforce)"
    r"_(?P<period>\d{4}-(?:0[1-9]|1[0-2]|S[12]))\.(?P<ext>csv|csv\.gz|parquet)$"
)
SEGMENTS = ("PBI_APBN", "PBI_APBD", "PPU_PN", "PPU_BU", "PBPU", "BP")
STATUS_ALIASES = {"ACTIVE": "ACTIVE", "AKTIF": "ACTIVE", "INACTIVE": "INACTIVE", "NONAKTIF": "INACTIVE",
                  "NON AKTIF": "INACTIVE", "NON_AKTIF": "INACTIVE", "TIDAK AKTIF": "INACTIVE"}

# Header aliases (lowercase): Indonesian names from DOMAIN.md and common variants.
COLUMN_ALIASES = {
    "region_code": ("region_code", "kode_wilayah", "kode_kabkota", "kode_kab_kota", "kd_wilayah"),
    "segment": ("segment", "segmen", "segmen_peserta"),
    "status": ("status", "status_peserta"),
    "participants": ("participants", "jumlah_peserta", "peserta"),
    "population": ("population", "jumlah_penduduk", "penduduk"),
    "period": ("period", "periode", "month", "bulan"),
}


@dataclass(frozen=True)
class ExtractKind:
    """What a file of one kind must hold and where its rows go."""

    name: str
    table: str
    required: tuple[str, ...]
    counts: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    period_column: str = "month"  # the date column derived from the period in the file name
    extra_checks: tuple[str, ...] = field(default=())


KINDS = {
    "region_counts": ExtractKind(
        "region_counts",
        "raw.region_counts",
        required=("region_code", "segment", "status", "participants"),
        counts=("participants",),
    ),
    "population": ExtractKind(
        "population",
        "raw.population",
        required=("region_code", "population"),
        counts=("population",),
        period_column="as_of",
    ),
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
    """Extract files in the landing folder, oldest period first."""
    if not landing.exists():
        return []
    files = [path for path in landing.iterdir() if path.is_file() and not path.name.startswith(".")]
    return sorted(files, key=lambda path: (_period_of(path.name), path.name))


def _period_of(name: str) -> str:
    match = FILE_NAME.match(name)
    return match.group("period") if match else ""


def seen_before(con: duckdb.DuckDBPyConnection, sha256: str) -> bool:
    return con.execute("select count(*) from ops.load_log where sha256 = ?", [sha256]).fetchone()[0] > 0


def ingest_files(
    con: duckdb.DuckDBPyConnection,
    paths: list[Path],
    reject_threshold_pct: float = 1.0,
    run_id: str | None = None,
) -> list[LoadResult]:
    """Load each file that was not loaded before; return what happened to each."""
    results = []
    for path in paths:
        sha256 = file_sha256(path)
        if seen_before(con, sha256):
            results.append(LoadResult(path.name, None, None, "skipped", message="loaded before"))
            continue
        results.append(ingest_file(con, path, sha256, reject_threshold_pct, run_id))
    return results


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    sha256: str,
    reject_threshold_pct: float = 1.0,
    run_id: str | None = None,
) -> LoadResult:
    load_id = con.execute("select nextval('ops.load_id_seq')").fetchone()[0]
    match = FILE_NAME.match(path.name)
    kind_name = match.group("kind") if match else None
    period = match.group("period") if match else None
    try:
        if not match:
            raise FileRejected(
                path.name,
                "file name must be <kind>_<period>.<ext>, kind one of "
                "participants, region_counts, population, employers, workforce; "
                "period YYYY-MM (YYYY-S1/S2 for population); ext csv, csv.gz or parquet",
            )
        kind = KINDS.get(kind_name)
        if kind is None:
            raise FileRejected(path.name, f"extract kind {kind_name!r} is not supported yet")
        if kind_name == "population" and "S" not in period or kind_name != "population" and "S" in period:
            expected = "YYYY-S1 or YYYY-S2" if kind_name == "population" else "YYYY-MM"
            raise FileRejected(path.name, f"period {period!r} in the name: expected {expected}")
        con.begin()
        try:
            loaded, rejected = _load(con, path, kind, period, load_id, reject_threshold_pct)
            _log(con, load_id, path.name, sha256, kind_name, period, loaded, rejected, "staged",
                 "", run_id)
            con.commit()
        except BaseException:
            con.rollback()
            raise
        log.info("%s: %d rows staged, %d rejected", path.name, loaded, rejected)
        return LoadResult(path.name, kind_name, period, "staged", loaded, rejected, load_id=load_id)
    except FileRejected as error:
        _log(con, load_id, path.name, sha256, kind_name, period, 0, 0, "rejected", str(error), run_id)
        log.warning("refused %s", error)
        return LoadResult(path.name, kind_name, period, "rejected", message=str(error), load_id=load_id)


def _log(con, load_id, file_name, sha256, kind, period, loaded, rejected, status, message, run_id):
    con.execute(
        "insert into ops.load_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [load_id, file_name, sha256, kind, period, loaded, rejected, status, message, utc_now(), run_id],
    )


def _read_source(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[str, str]:
    """A relation over the file with every column as text, and its delimiter."""
    if path.name.endswith(".parquet"):
        return f"read_parquet('{_quote(path)}')", ","
    try:
        sniffed = con.execute("select Delimiter from sniff_csv(?, sample_size = 2048)", [str(path)]).fetchone()
    except duckdb.Error as error:
        raise FileRejected(path.name, f"unreadable: {_first_line(error)}") from None
    delimiter = sniffed[0] if sniffed and sniffed[0] in (",", ";") else ","
    relation = (
        f"read_csv('{_quote(path)}', header = true, all_varchar = true, delim = '{delimiter}', "
        "quote = '\"', escape = '\"')"
    )
    return relation, delimiter


def _load(con, path: Path, kind: ExtractKind, period: str, load_id: int, threshold_pct: float):
    source, delimiter = _read_source(con, path)
    try:
        header = [row[0] for row in con.execute(f"describe select * from {source}").fetchall()]
    except duckdb.Error as error:
        raise FileRejected(path.name, f"unreadable: {_first_line(error)}") from None
    mapping = _map_columns(path.name, header, kind)
    select_list = ", ".join(f'trim(cast("{original}" as varchar)) as {name}' for name, original in mapping.items())
    try:
        con.execute(
            f"create or replace temp table landing_rows as "
            f"select row_number() over () + 1 as line, {select_list} from {source}"
        )
    except duckdb.Error as error:
        raise FileRejected(path.name, f"unreadable: {_first_line(error)}") from None
    total = con.execute("select count(*) from landing_rows").fetchone()[0]
    if total == 0:
        raise FileRejected(path.name, "the file holds a header but no rows")
    _check_period_column(con, path.name, mapping, period, kind)

    checks = _row_checks(kind, delimiter)
    reject_union = " union all ".join(
        f"select line, '{column}' as column_name, {column} as value, {reason} as reason "
        f"from parsed where {condition}"
        for column, condition, reason in checks
    )
    con.execute(
        f"create or replace temp table parsed as select *, {_parsed_columns(kind, delimiter)} from landing_rows"
    )
    con.execute(f"create or replace temp table landing_rejects as {reject_union}")
    rejected_lines = con.execute("select count(distinct line) from landing_rejects").fetchone()[0]
    con.execute(
        "insert into ops.rejects select ?, ?, line, column_name, value, reason "
        "from landing_rejects order by line, column_name",
        [load_id, path.name],
    )
    if rejected_lines * 100.0 > threshold_pct * total:
        first = con.execute(
            "select line, column_name, value, reason from landing_rejects order by line limit 1"
        ).fetchone()
        raise FileRejected(
            path.name,
            f"{rejected_lines} of {total} rows are bad, more than the {threshold_pct:g}% allowed; "
            f"first: line {first[0]}, column {first[1]!r}, value {first[2]!r}: {first[3]}",
        )
    insert_columns = ", ".join(_typed_columns(kind))
    con.execute(
        f"insert into {kind.table} select ?, ?, ?, ?::date, {insert_columns} from parsed "
        "where line not in (select line from landing_rejects)",
        [load_id, path.name, period, period_date(period)],
    )
    loaded = total - rejected_lines
    return loaded, rejected_lines


def _map_columns(file_name: str, header: list[str], kind: ExtractKind) -> dict[str, str]:
    """canonical column -> the file's header name; refuse the file if a required one is missing."""
    by_lower = {name.strip().lstrip("\ufeff").lower(): name for name in header}
    mapping = {}
    for canonical in (*kind.required, *kind.optional, "period"):
        for alias in COLUMN_ALIASES.get(canonical, (canonical,)):
            if alias in by_lower:
                mapping[canonical] = by_lower[alias]
                break
    missing = [name for name in kind.required if name not in mapping]
    if missing:
        raise FileRejected(
            file_name,
            f"missing required column(s) {', '.join(missing)}; the header has: {', '.join(header)}",
            line=1,
        )
    return mapping


def _check_period_column(con, file_name: str, mapping: dict, period: str, kind: ExtractKind) -> None:
    """When the file names its period in a column, it must agree with the file name."""
    if "period" not in mapping:
        return
    wrong = con.execute(
        "select line, period from landing_rows "
        "where replace(replace(period, '/', '-'), '.', '-') not like ? || '%' order by line limit 1",
        [period],
    ).fetchone()
    if wrong:
        raise FileRejected(
            file_name,
            f"period {wrong[1]!r} in the content differs from {period!r} in the file name",
            line=wrong[0],
            column=mapping["period"],
        )


def _integer_expression(column: str, delimiter: str) -> str:
    """Text -> bigint, accepting the thousands separator of the file's dialect (`1.313.212` in `;`
    files, `1,313,212` in `,` files); null when the text is not exactly a whole number, so that
    `85,16` or `600.5` is rejected instead of being cast to something else."""
    separator = "." if delimiter == ";" else ","
    grouped = "^-?[0-9]{1,3}([" + separator + "][0-9]{3})+$"
    return (
        f"case when regexp_full_match({column}, '{grouped}') then replace({column}, '{separator}', '')::bigint "
        f"when regexp_full_match({column}, '^-?[0-9]+$') then {column}::bigint end"
    )


def _parsed_columns(kind: ExtractKind, delimiter: str) -> str:
    parts = [
        "regexp_replace(region_code, '[.\\s]', '', 'g') as region_code_clean",
    ]
    if "segment" in kind.required:
        parts.append("regexp_replace(upper(segment), '[ -]', '_', 'g') as segment_clean")
    if "status" in kind.required:
        cases = " ".join(f"when '{alias}' then '{value}'" for alias, value in STATUS_ALIASES.items())
        parts.append(f"case upper(status) {cases} end as status_clean")
    for column in kind.counts:
        parts.append(f"{_integer_expression(column, delimiter)} as {column}_clean")
    return ", ".join(parts)


def _row_checks(kind: ExtractKind, delimiter: str) -> list[tuple[str, str, str]]:
    """(column, condition that makes the row bad, reason) for each check of the kind."""
    checks = [
        ("region_code", "region_code is null or region_code = ''", "'region code is missing'"),
        (
            "region_code",
            "region_code <> '' and not regexp_full_match(region_code_clean, '\\d{4}')",
            "'region code must be 4 digits (3326 or 33.26)'",
        ),
        (
            "region_code",
            "regexp_full_match(region_code_clean, '\\d{4}') "
            "and region_code_clean not in (select region_code from ref.regions)",
            "'unknown region code (not in seeds/regions.csv)'",
        ),
    ]
    if "segment" in kind.required:
        checks.append(
            (
                "segment",
                f"segment_clean is null or segment_clean not in {SEGMENTS}",
                f"'unknown segment; expected one of {', '.join(SEGMENTS)}'",
            )
        )
    if "status" in kind.required:
        checks.append(("status", "status_clean is null", "'unknown status; expected ACTIVE/AKTIF or INACTIVE/NONAKTIF'"))
    for column in kind.counts:
        checks.append((column, f"{column}_clean is null", "'not a whole number'"))
        checks.append((column, f"{column}_clean < 0", "'negative count'"))
    return checks


def _typed_columns(kind: ExtractKind) -> list[str]:
    columns = ["region_code_clean"]
    if kind.name == "region_counts":
        columns += ["segment_clean", "status_clean", "participants_clean"]
    elif kind.name == "population":
        columns += ["population_clean"]
    return columns


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]
