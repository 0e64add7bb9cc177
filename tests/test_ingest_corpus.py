"""The bad-input corpus (tests/fixtures/ingest/<case>/): one extract per case, one problem each.

For every case: the message names the file and what is wrong, and afterwards the database holds
exactly what it held before (a refused file), or that plus exactly the file's good rows (bad
rows rejected with file, line, column, value and reason).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

import pytest

from flows import ingest
from flows.ingest.reading import delimiter_of
from tests.conftest import FIXTURES, TEST_KEY

CORPUS = FIXTURES / "ingest"
RAW_TABLES = ("raw.region_counts", "raw.population", "raw.participants", "raw.employers", "raw.workforce")


@dataclass
class Refused:
    says: list[str]  # fragments of the message, besides the file name
    never_says: list[str] = field(default_factory=list)  # identifiers in the file, never shown as written
    keeps_rejects: bool = False  # refused for too many bad rows: the bad rows are listed
    stored: int | None = None  # rejects listed when there are more than a file keeps (the count is whole)


@dataclass
class Loaded:
    rows: int
    rejects: list[tuple] = field(default_factory=list)  # (line, column, reason fragment, value shown)
    says: list[str] = field(default_factory=list)


CASES = {
    # whole file refused
    "bad_file_name": Refused(["file name must be <kind>_<period>.<ext>"]),
    "population_by_month": Refused(["period '2022-09' in the name", "population files need YYYY-S1 or YYYY-S2"]),
    "missing_column": Refused(["line 1", "missing required column(s) participants", "jumlah_peserta"]),
    "duplicate_column": Refused(["line 1", "'kode_wilayah' and 'region_code' both mean region_code"]),
    "not_utf8": Refused(["line 4", "is not UTF-8"]),
    "empty": Refused(["the file is empty"]),
    "header_only": Refused(["holds a header but no rows"]),
    "not_gzip": Refused(["corrupt gzip data"]),
    "truncated_gzip": Refused(["gzip data is truncated"]),
    "period_in_content": Refused(
        ["line 3", "column 'periode'", "period '2022-08' in the content differs from '2022-09'"]
    ),
    "ragged_row": Refused(["line 3", "3 field(s) where the header has 4"]),
    "unclosed_quote": Refused(["line 3", "quoted value is not closed"]),
    "parquet_wrong_types": Refused(["column 'card_no' is BIGINT", "column 'nik' is DOUBLE", "identifiers are text"]),
    "parquet_truncated": Refused(["not a complete Parquet file"]),
    "too_many_bad_rows": Refused(
        ["1 of 7 rows are bad, more than the 1% allowed", "line 4", "'3399'", "unknown region code"],
        keeps_rejects=True,
    ),
    # bad rows rejected, good rows loaded
    "nik_excel": Loaded(5, [(4, "nik", "turned into a number by a spreadsheet", "3.27***E+**")]),
    "nik_15_digits": Loaded(5, [(4, "nik", "NIK must be 16 digits", "3326***********")]),
    "nik_bad_day": Loaded(5, [(4, "nik", "birth day (digits 7-8) must be 01-31, or 41-71", "3326************")]),
    "nik_bad_month": Loaded(5, [(4, "nik", "birth month (digits 9-10) must be 01-12", "3326************")]),
    "nik_unknown_province": Loaded(5, [(4, "nik", "not a known province", "9926************")]),
    "nik_missing": Loaded(5, [(4, "nik", "NIK is missing", None)]),
    "nik_in_card_column": Loaded(
        5,
        [
            (4, "card_no", "card_no must be 13 digits", "3326************"),
            (4, "nik", "NIK must be 16 digits", "0001*********"),
        ],
    ),
    "card_12_digits": Loaded(5, [(4, "card_no", "card_no must be 13 digits", "0001********")]),
    "card_excel": Loaded(5, [(4, "card_no", "turned into a number by a spreadsheet", "1.00000E+09")]),
    "card_repeated": Loaded(5, [(6, "card_no", "repeats line 2", "0001000000001")]),
    "ppu_bu_without_employer": Loaded(5, [(4, "employer_id", "required for segment PPU_BU", None)]),
    "unknown_region": Loaded(5, [(4, "region_code", "unknown region code", "3399")]),
    "unknown_segment": Loaded(5, [(4, "segment", "unknown segment", "PBI")]),
    "unknown_status": Loaded(5, [(4, "status", "unknown status", "MATI")]),
    "negative_count": Loaded(6, [(4, "participants", "negative count", "-5")]),
    "decimal_count": Loaded(3, [(5, "participants", "not a whole number", "85,16")]),
    "region_counts_repeated": Loaded(
        6, [(8, "region_code+segment+status", "repeats line 2", "3325 / PBI_APBN / ACTIVE")]
    ),
    "business_id_12_digits": Loaded(3, [(5, "business_id", "business_id must be 13 digits", "9120********")]),
    "parquet_count_not_whole": Loaded(1, [(2, "population", "not a whole number", "992125.5")]),
    # dialects that load completely
    "semicolon_decimal_comma": Loaded(2),
    "byte_order_mark": Loaded(2),
    "extra_column": Loaded(5, says=["ignored column(s) nothing reads: nama, alamat"]),
    "indonesian_headers": Loaded(3),
    "windows_line_ends": Loaded(6),
    "parquet_good": Loaded(2),
    # what real offices, spreadsheets and networks also deliver
    "future_month": Refused(["period '2099-01' in the name is in the future"]),
    "future_semester": Refused(["period '2099-S1' in the name is in the future", "as-of date"]),
    "before_jkn": Refused(["period '2013-12' in the name is before JKN began"]),
    "month_13_in_name": Refused(["file name must be <kind>_<period>.<ext>"]),
    "impossible_date_in_period": Refused(
        ["line 3", "column 'periode'", "period '2022-02-30' in the content is not a valid period"]
    ),
    "period_column_not_a_period": Refused(["line 3", "column 'semester'", "period 'juni' in the content is not"]),
    "no_header_row": Refused(
        ["line 1", "missing required column(s) card_no, nik", "0001*********"],
        never_says=["0001000000001", "3326014507900001"],
    ),
    "whitespace_only": Refused(["the file is empty"]),
    "excel_workbook_named_csv": Refused(["line 1", "is not UTF-8"]),
    "utf16_text": Refused(["line 1", "is not UTF-8"]),
    "parquet_repeated_column": Refused(["line 1", "'region_code' appear more than once"]),
    "too_many_bad_rows_gzip": Refused(
        ["30000 of 30000 rows are bad", "line 2", "column 'region_code'", "unknown region code"],
        keeps_rejects=True,
        stored=10_000,
    ),
    "old_mac_line_ends": Loaded(6),
    "semicolon_header_with_commas": Loaded(2, says=["ignored column(s) nothing reads: catatan, keterangan"]),
    "region_code_with_spaces": Loaded(7),
    "blank_lines_before_a_bad_row": Loaded(6, [(6, "participants", "negative count", "-5")]),
    "quoted_line_break_before_a_bad_row": Loaded(2, [(4, "workers", "negative count", "-15")]),
    "nik_with_separators_in_card_column": Loaded(
        5, [(4, "card_no", "card_no must be 13 digits", "3326-****-****-****")]
    ),
    "nik_with_spaces": Loaded(5, [(4, "nik", "NIK must be 16 digits", "3326 **** **** ****")]),
    "phone_number_as_business_id": Loaded(3, [(5, "business_id", "business_id must be 13 digits", "0812-****-****")]),
}


def test_every_corpus_folder_has_a_case():
    folders = {path.name for path in CORPUS.iterdir() if path.is_dir()} - {"duplicate_across_files"}
    assert folders == set(CASES)
    assert len(CASES) >= 60


def snapshot(con) -> dict[str, list[tuple]]:
    tables = {table: con.execute(f"select * from {table} order by all").fetchall() for table in RAW_TABLES}
    tables["ops.rejects"] = con.execute("select * from ops.rejects order by all").fetchall()
    return tables


def file_of(case: str):
    [path] = [path for path in (CORPUS / case).iterdir()]
    return path


@pytest.fixture
def loaded(con):
    """A database that already holds something: the small landing fixture."""
    results = ingest.ingest_files(con, sorted((FIXTURES / "landing_small").iterdir()), pseudonym_key=TEST_KEY)
    assert {result.status for result in results} == {"staged"}
    return con


@pytest.mark.parametrize("case", sorted(CASES))
def test_corpus_case(loaded, case):
    con = loaded
    expected = CASES[case]
    path = file_of(case)
    before = snapshot(con)
    # Row cases hold 1 bad row in a handful: allow that share; too_many_bad_rows keeps the default 1%.
    threshold = 1.0 if case == "too_many_bad_rows" else 50.0
    [result] = ingest.ingest_files(con, [path], threshold, pseudonym_key=TEST_KEY)
    after = snapshot(con)
    status, message, rows_loaded, rows_rejected = con.execute(
        "select status, message, rows_loaded, rows_rejected from ops.load_log where load_id = ?", [result.load_id]
    ).fetchone()
    rejects = con.execute(
        "select file_name, line, column_name, value, reason from ops.rejects where load_id = ? "
        "order by line, column_name",
        [result.load_id],
    ).fetchall()

    if isinstance(expected, Refused):
        assert result.status == status == "rejected"
        assert message == result.message
        assert message.startswith(path.name), message
        for fragment in expected.says:
            assert fragment in message, message
        for identifier in expected.never_says:
            assert identifier not in message
        for table in RAW_TABLES:
            assert after[table] == before[table], table
        if expected.stored:
            assert rows_rejected > len(rejects) == expected.stored
        elif expected.keeps_rejects:
            assert rows_rejected == len(rejects) > 0
            assert all(reject[0] == path.name for reject in rejects)
        else:
            assert after["ops.rejects"] == before["ops.rejects"]
        return

    assert result.status == status == "staged", result.message
    assert rows_loaded == result.rows_loaded == expected.rows
    assert rows_rejected == len({line for _, line, *_ in rejects})
    for fragment in expected.says:
        assert fragment in message
    assert len(rejects) == len(expected.rejects)
    for (file_name, line, column, value, reason), (want_line, want_column, fragment, shown) in zip(
        rejects, expected.rejects, strict=True
    ):
        assert (file_name, line, column, value) == (path.name, want_line, want_column, shown)
        assert fragment in reason
    # exactly the good rows were added, to the kind's table only
    table = ingest.KINDS[result.kind].table
    added = con.execute(f"select * from {table} where load_id = ? order by all", [result.load_id]).fetchall()
    assert len(added) == expected.rows
    assert sorted(after[table]) == sorted(before[table] + added)
    for other in set(RAW_TABLES) - {table}:
        assert after[other] == before[other]
    if path.suffix == ".csv":
        bad_lines = {line for _, line, *_ in rejects}
        first_column = ingest.KINDS[result.kind].key[0]
        loaded_keys = [
            row[0]
            for row in con.execute(f"select {first_column} from {table} where load_id = ?", [result.load_id]).fetchall()
        ]
        assert sorted(loaded_keys) == sorted(first_field_of_good_lines(path, bad_lines))


def first_field_of_good_lines(path, bad_lines: set[int]) -> list[str]:
    """The first field of each data record not rejected, by the line it starts on (region codes
    without their dot or spaces); blank lines hold no record."""
    content = path.read_text(encoding="utf-8-sig")
    delimiter = delimiter_of(content.splitlines()[0])
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    next(reader)
    fields, start = [], reader.line_num + 1
    for row in reader:
        if row and start not in bad_lines:
            fields.append(re.sub(r"[.\s]", "", row[0]))
        start = reader.line_num + 1
    return fields
