"""The enforcement worklist as work: grouped for the report, and exported for the manpower office.

Reads `mart.enforcement_worklist` (one row per month x region x non-compliant
employer) and `ref.regions`. The report shows it grouped by sanction step and
region, the most urgent first (the step furthest along PP 86/2013, then the
region with most unregistered workers), with a count per group.

The export is the list BPJS and Disnaker agree to exchange: companies only,
never a participant (no NIK, card number, person key or a person's name), in
`.xlsx` and CSV. Each file gets its own `<file>.sha256` (the `sha256sum` format,
so the receiving office can check it) and one row in `ops.worklist_exports`
saying what was exported, when, for which scope and month.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from flows import labels, views, words

FORMATS = ("xlsx", "csv")

# What the manpower office needs to act on a company, in this order; nothing about a person.
EXPORT_FIELDS = (
    "priority",
    "region_code",
    "region_name",
    "business_id",
    "employer_id",
    "name",
    "reasons",
    "workers_reported",
    "workers_registered",
    "unregistered_workers",
    "unpaid_contributions_idr",
    "months_non_compliant",
    "non_compliant_since",
    "sanction_step",
)
# Identifiers stay text in the spreadsheet (a NIB keeps its leading zeros).
TEXT_FIELDS = {"region_code", "business_id", "employer_id"}
# The headers as the office reads them, per language: `export_headers` of templates/report_words_<language>.j2.
EXPORT_HEADERS = {language: words.module(f"report_words_{language}.j2").export_headers for language in ("id", "en")}

# A scope is the nation (`ID`), a province (2 digits), a branch office or a region (4 digits). The rows and
# their groups (sanction step x region, most urgent first) are sql/views/worklist_groups.sql's; a group lies in one
# region, so its rank and totals hold in any scope.
SCOPE_FILTER = "($scope = 'ID' or $scope in (province_code, branch_office, region_code))"
# The export's columns, in EXPORT_FIELDS order (only these are fetched: 240,000 rows through Python dicts
# took seconds), then the month.
EXPORT_COLUMNS = (
    "priority, region_code, region_name, business_id, employer_id, name, reasons, workers_reported, "
    "workers_registered, unregistered_workers, unpaid_contributions_idr, months_non_compliant, "
    "non_compliant_since, next_sanction_step, month"
)
UNPAID_COLUMN = EXPORT_FIELDS.index("unpaid_contributions_idr")
REASONS_COLUMN = EXPORT_FIELDS.index("reasons")
STEP_COLUMN = EXPORT_FIELDS.index("sanction_step")


# What `groups` reads of each row, besides the columns a caller shows.
GROUP_COLUMNS = (
    "group_rank",
    "next_sanction_step",
    "region_code",
    "region_name",
    "province_code",
    "branch_office",
    "group_employers",
    "group_unregistered_workers",
    "group_unpaid_idr",
)


def rows(
    con: duckdb.DuckDBPyConnection,
    scope: str = "ID",
    month: date | None = None,
    per_group: int | None = None,
    columns: tuple[str, ...] | None = None,
) -> list[dict]:
    """The scope's worklist rows of the month (default: the latest), most urgent group first; with
    `per_group`, only the first rows of each group (each row still carries its group's count and totals).
    With `columns`, each row holds only those and GROUP_COLUMNS (the report's ~13,000 rows of 29 columns,
    decimals among them, took ~0.2 s more to fetch whole)."""
    selected = "*" if columns is None else ", ".join(f'"{name}"' for name in dict.fromkeys((*columns, *GROUP_COLUMNS)))
    return views.rows(con, *_query(con, selected, scope, month, per_group))


def _query(
    con: duckdb.DuckDBPyConnection, columns: str, scope: str, month: date | None, per_group: int | None = None
) -> tuple[str, dict]:
    if month is None:
        month = con.execute("select max(month) from mart.enforcement_worklist").fetchone()[0]
    relation = views.relation(con, "worklist_groups")
    rows_of_month = f"from {relation} where month = $month and {SCOPE_FILTER}"
    parameters = {"scope": scope, "month": month}
    if per_group is None:
        return f"select {columns} {rows_of_month} order by group_rank, priority", parameters
    # the first rows of each group: a group's rows are one region's, numbered by `priority` (one row per region
    # and priority). Which they are is found over those two columns, and only those rows are read whole: the
    # window over every column of ~200,000 rows took 3-5 times as long.
    sql = (
        f"with firsts as (select region_code, priority {rows_of_month} "
        "qualify row_number() over (partition by group_rank order by priority) <= $per_group) "
        f"select {columns} from {relation} as worklist_rows semi join firsts using (region_code, priority) "
        f"where month = $month and {SCOPE_FILTER} order by group_rank, priority"
    )
    return sql, parameters | {"per_group": per_group}


def groups(worklist_rows: list[dict]) -> list[dict]:
    """The rows in their groups: step x region, each with its count and totals, in `rows()`' order."""
    out: list[dict] = []
    for row in worklist_rows:
        if not out or out[-1]["rank"] != row["group_rank"]:
            out.append(
                {
                    "rank": row["group_rank"],
                    "step": row["next_sanction_step"],
                    "region_code": row["region_code"],
                    "region_name": row["region_name"] or row["region_code"],
                    "province_code": row["province_code"],
                    "branch_office": row["branch_office"],
                    "employers": row["group_employers"],
                    "unregistered_workers": row["group_unregistered_workers"],
                    "unpaid_idr": row["group_unpaid_idr"],
                    "rows": [],
                }
            )
        out[-1]["rows"].append(row)
    return out


def export_table(
    con: duckdb.DuckDBPyConnection, scope: str, month: date | None, language: str
) -> tuple[list[list], date | None]:
    """The export's rows (values in EXPORT_FIELDS order) and the month they are of. Reasons and steps
    are named once per distinct value (a handful), not once per row."""
    fetched = con.execute(*_query(con, EXPORT_COLUMNS, scope, month)).fetchall()
    reasons: dict = {}
    steps: dict = {}
    table = []
    for row in fetched:
        values = list(row[:-1])
        reason, step = values[REASONS_COLUMN], values[STEP_COLUMN]
        if reason not in reasons:
            reasons[reason] = labels.reasons(reason, language)
        if step not in steps:
            steps[step] = labels.name(labels.STEP_DESCRIPTIONS, step, language)
        values[REASONS_COLUMN] = reasons[reason]
        values[STEP_COLUMN] = steps[step]
        values[UNPAID_COLUMN] = round(float(values[UNPAID_COLUMN] or 0))  # to even, as the export always did
        table.append(values)
    return table, (fetched[0][-1] if fetched else None)


def _write_xlsx(path: Path, headers: list[str], table: list[list], sheet_title: str) -> None:
    from openpyxl import Workbook  # only the export needs it
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet(sheet_title[:31])
    sheet.freeze_panes = "A2"
    sheet.append(headers)
    text_columns = {EXPORT_FIELDS.index(field) for field in TEXT_FIELDS}
    for values in table:
        cells = []
        for column, value in enumerate(values):
            cell = WriteOnlyCell(
                sheet, value=None if value is None else (str(value) if column in text_columns else value)
            )
            if column in text_columns:
                cell.number_format = "@"
            cells.append(cell)
        sheet.append(cells)
    book.save(path)


def _write_csv(
    con: duckdb.DuckDBPyConnection, path: Path, scope: str, month: date, language: str, headers: list[str]
) -> int:
    """The CSV written by DuckDB (`COPY`): the same bytes Python's csv module wrote row by row (CRLF, quotes
    only where a field needs them, nothing for NULL and for empty text), in seconds less for 240,000 companies.
    Reasons and steps are named in Python once per distinct value and looked up in SQL. Returns the rows."""
    sql, params = _query(con, "distinct reasons, next_sanction_step", scope, month)
    distinct = con.execute(sql.split(" order by ")[0], params).fetchall()
    reason_names = {reason: labels.reasons(reason, language) for reason, _ in distinct if reason is not None}
    step_names = {
        step: labels.name(labels.STEP_DESCRIPTIONS, step, language) for _, step in distinct if step is not None
    }
    empty = labels.reasons(None, language)
    columns = [
        "priority",
        "nullif(region_code, '')",
        "nullif(region_name, '')",
        "nullif(business_id, '')",
        "nullif(employer_id, '')",
        "nullif(name, '')",
        "coalesce(map_from_entries($reason_names)[reasons], $empty)",
        "workers_reported",
        "workers_registered",
        "unregistered_workers",
        # to even, as Python's round(float(...)) of the export always did
        "cast(round_even(cast(coalesce(unpaid_contributions_idr, 0) as double), 0) as bigint)",
        "months_non_compliant",
        "nullif(non_compliant_since, '')",
        "coalesce(map_from_entries($step_names)[next_sanction_step], $empty)",
    ]
    named = ", ".join(
        f'{column} as "{header.replace(chr(34), chr(34) * 2)}"' for column, header in zip(columns, headers, strict=True)
    )
    sql, params = _query(con, named, scope, month)
    params |= {
        "reason_names": [{"k": key, "v": value} for key, value in reason_names.items()],
        "step_names": [{"k": key, "v": value} for key, value in step_names.items()],
        "empty": empty,
        "path": str(path),
    }
    sql = f"copy ({sql}) to $path (format csv, header, delimiter ',', quote '\"', new_line '\r\n')"
    return con.execute(sql, params).fetchone()[0]


def export(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    scope: str = "ID",
    month: date | None = None,
    formats: tuple[str, ...] = FORMATS,
    language: str = "id",
    now: datetime | None = None,
) -> list[dict]:
    """Write the scope's worklist as `worklist_<scope>_<YYYY-MM>.<format>` (+ `.sha256`) into `folder` and
    record each file in `ops.worklist_exports`. Returns one dict per file: path, sha256, rows."""
    unknown = [name for name in formats if name not in FORMATS]
    if unknown:
        raise ValueError(f"unknown worklist format(s) {unknown}: expected {' or '.join(FORMATS)}")
    published = con.execute(
        "select count(*) from duckdb_tables() where database_name = current_database() "
        "and schema_name = 'mart' and table_name = 'enforcement_worklist'"
    ).fetchone()[0]
    if not published:
        return []
    if month is None:
        month = con.execute("select max(month) from mart.enforcement_worklist").fetchone()[0]
    if month is None:
        return []
    # the xlsx needs the rows in Python; the CSV is written by DuckDB
    table = export_table(con, scope, month, language)[0] if "xlsx" in formats else None
    now = now or datetime.now(UTC)
    headers = [EXPORT_HEADERS[language][field] for field in EXPORT_FIELDS]
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file_format in formats:
        path = folder / f"worklist_{scope}_{month:%Y-%m}.{file_format}"
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        if file_format == "xlsx":
            _write_xlsx(partial, headers, table, f"{scope} {month:%Y-%m}")
            count = len(table)
        else:
            count = _write_csv(con, partial, scope, month, language, headers)
        partial.replace(path)  # a reader never sees half a file
        digest = _remember_digest(path, hashlib.sha256(path.read_bytes()).hexdigest())
        path.with_name(path.name + ".sha256").write_text(f"{digest}  {path.name}\n", encoding="utf-8")
        con.execute(
            "insert into ops.worklist_exports values (?, ?, ?, ?, ?, ?, ?, ?)",
            [str(uuid.uuid4()), now, month, scope, file_format, path.name, count, digest],
        )
        written.append({"path": path, "sha256": digest, "rows": count, "format": file_format})
    return written


# path -> (the file's identity when its digest was taken, the digest): the files this process exported, so
# that the report, which links them right after, does not read 30 MB again to check one it has just written.
_DIGESTS: dict[str, tuple[tuple, str]] = {}


def _identity(path: Path) -> tuple:
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def _remember_digest(path: Path, digest: str) -> str:
    _DIGESTS[str(path)] = (_identity(path), digest)
    return digest


def _digest(path: Path) -> str:
    """The file's sha256: read, unless this process exported it and it has not changed since."""
    known = _DIGESTS.get(str(path))
    if known is not None and known[0] == _identity(path):
        return known[1]
    return hashlib.sha256(path.read_bytes()).hexdigest()


def latest_exports(con: duckdb.DuckDBPyConnection, folder: Path, scope: str = "ID") -> list[dict]:
    """The newest recorded export of each format for the scope whose file is still in `folder` unchanged."""
    try:
        recorded = con.execute(
            "select file_format, file_name, sha256, rows_exported, exported_at, month "
            "from ops.worklist_exports where scope_code = ? "
            "qualify row_number() over (partition by file_format order by exported_at desc) = 1 "
            "order by file_format desc",
            [scope],
        ).fetchall()
    except duckdb.CatalogException:  # a database from before the exports table
        return []
    out = []
    for file_format, file_name, digest, count, exported_at, month in recorded:
        path = folder / file_name
        if path.exists() and _digest(path) == digest:
            out.append(
                {
                    "format": file_format,
                    "file_name": file_name,
                    "sha256": digest,
                    "rows": count,
                    "exported_at": exported_at,
                    "month": month,
                }
            )
    return out
