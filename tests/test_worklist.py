"""The enforcement worklist grouped for the report and exported for the manpower office (.xlsx, CSV)."""

import csv
import hashlib

from openpyxl import load_workbook

from flows import metrics, worklist
from tests.test_metrics_compliance import NIB, three_months  # noqa: F401 (a fixture)


def test_groups_are_step_by_region_the_furthest_step_first(three_months):  # noqa: F811
    metrics.publish(three_months)
    grouped = worklist.groups(worklist.rows(three_months))
    # December 2022 in Kab. Batang: PT Satu's third month (a fine) comes before the two second warnings,
    # though the warnings group holds more companies
    assert [(g["step"], g["region_code"], g["employers"], g["unregistered_workers"]) for g in grouped] == [
        ("FINE", "3325", 1, 20),
        ("WRITTEN_WARNING_2", "3325", 2, 12),
    ]
    assert [row["business_id"] for row in grouped[1]["rows"]] == [NIB["lima"], NIB["dua"]]
    # a scope with nothing to act on has no groups; a branch takes its regions'
    assert worklist.rows(three_months, "3326") == []
    assert len(worklist.rows(three_months, "PEKALONGAN")) == 3


def test_export_has_only_the_companies_fields_its_checksum_and_an_ops_row(three_months, tmp_path):  # noqa: F811
    metrics.publish(three_months)
    written = worklist.export(three_months, tmp_path, "33", language="id")
    assert [(item["format"], item["rows"], item["path"].name) for item in written] == [
        ("xlsx", 3, "worklist_33_2022-12.xlsx"),
        ("csv", 3, "worklist_33_2022-12.csv"),
    ]
    for item in written:
        assert item["sha256"] == hashlib.sha256(item["path"].read_bytes()).hexdigest()
        sidecar = item["path"].with_name(item["path"].name + ".sha256").read_text()
        assert sidecar == f"{item['sha256']}  {item['path'].name}\n"  # `sha256sum -c` reads this
    sheet = load_workbook(tmp_path / "worklist_33_2022-12.xlsx").active
    table = [list(row) for row in sheet.iter_rows(values_only=True)]
    headers = table[0]
    assert headers == [worklist.EXPORT_HEADERS["id"][field] for field in worklist.EXPORT_FIELDS]
    assert not {"person_key", "card_no", "nik", "sex", "birth_year"} & set(worklist.EXPORT_FIELDS)
    first = dict(zip(worklist.EXPORT_FIELDS, table[1], strict=True))
    assert first["business_id"] == NIB["satu"] and isinstance(first["business_id"], str)  # text, not a number
    assert first["name"] == "PT Satu" and first["unregistered_workers"] == 20
    assert first["sanction_step"] == "Denda 0,1% per bulan dari iuran terutang"  # a name, not FINE
    with (tmp_path / "worklist_33_2022-12.csv").open(encoding="utf-8") as file:
        assert [row[3] for row in csv.reader(file)][1:] == [NIB["satu"], NIB["lima"], NIB["dua"]]
    recorded = three_months.execute(
        "select strftime(month, '%Y-%m'), scope_code, file_format, file_name, rows_exported, sha256 "
        "from ops.worklist_exports order by file_format desc"
    ).fetchall()
    assert recorded == [("2022-12", "33", item["format"], item["path"].name, 3, item["sha256"]) for item in written]
    assert [e["file_name"] for e in worklist.latest_exports(three_months, tmp_path, "33")] == [
        "worklist_33_2022-12.xlsx",
        "worklist_33_2022-12.csv",
    ]
    # a file changed after the export is not offered as the exported one
    (tmp_path / "worklist_33_2022-12.csv").write_text("edited", encoding="utf-8")
    assert [e["format"] for e in worklist.latest_exports(three_months, tmp_path, "33")] == ["xlsx"]


def test_cli_exports_a_branch_and_refuses_an_unknown_format(three_months, settings):  # noqa: F811
    from typer.testing import CliRunner

    from flows.cli import app

    metrics.publish(three_months)
    three_months.execute("checkpoint")
    result = CliRunner().invoke(app, ["worklist", "--scope", "pekalongan", "--format", "csv"])
    assert result.exit_code == 0, result.output
    path = settings.report_dir / "worklist_PEKALONGAN_2022-12.csv"
    assert f"{path}: 3 employer(s), sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}" in " ".join(
        result.output.split()
    )
    result = CliRunner().invoke(app, ["worklist", "--format", "pdf"])
    assert result.exit_code == 2 and "expected xlsx or csv" in result.output


def test_csv_written_by_duckdb_is_what_pythons_csv_module_writes(three_months, tmp_path):  # noqa: F811
    """The CSV is DuckDB's COPY; the receiving office's checksums and parsers saw Python's csv module's bytes:
    CRLF, quotes only where needed, nothing for NULL or empty text, unpaid rounded half to even."""
    metrics.publish(three_months)
    three_months.execute(
        "update mart.enforcement_worklist set name = case priority when 1 then 'PT \"Satu\", Tbk' "
        "when 2 then e'CV Dua\\nBaris' else '' end, region_name = null, "
        "unpaid_contributions_idr = case priority when 1 then 2.50 when 2 then 3.50 else null end"
    )
    for language in ("id", "en"):
        written = worklist.export(three_months, tmp_path / language, "33", formats=("csv",), language=language)
        table, _ = worklist.export_table(three_months, "33", None, language)
        expected = tmp_path / f"expected_{language}.csv"
        with expected.open("w", encoding="utf-8", newline="") as file:
            writer = csv.writer(file)
            writer.writerow([worklist.EXPORT_HEADERS[language][field] for field in worklist.EXPORT_FIELDS])
            writer.writerows(table)
        assert written[0]["rows"] == len(table) == 3
        assert written[0]["path"].read_bytes() == expected.read_bytes()
        assert b'"PT ""Satu"", Tbk"' in expected.read_bytes() and b'"CV Dua\nBaris"' in expected.read_bytes()
        assert sorted(row[worklist.UNPAID_COLUMN] for row in table) == [0, 2, 4]  # 2.50 -> 2, 3.50 -> 4


def test_rows_of_some_columns_are_the_whole_rows_cut_to_them(three_months):  # noqa: F811
    """The report asks only for the columns it shows (and what the groups read): the same values, rows, order."""
    metrics.publish(three_months)
    shown = ("name", "business_id", "unpaid_contributions_idr", "reasons")
    whole = worklist.rows(three_months, "ID", per_group=1)
    cut = worklist.rows(three_months, "ID", per_group=1, columns=shown)
    assert whole and len(cut) == len(whole)
    keys = set(shown) | set(worklist.GROUP_COLUMNS)
    assert [set(row) for row in cut] == [keys] * len(whole)
    assert cut == [{key: row[key] for key in keys} for row in whole]
    assert worklist.groups(cut) == [
        {**group, "rows": [{key: row[key] for key in keys} for row in group["rows"]]}
        for group in worklist.groups(whole)
    ]


def test_an_export_edited_in_place_to_the_same_size_is_not_offered(three_months, tmp_path):  # noqa: F811
    """The digest of a file this process exported is remembered with the file's identity (inode, size, times),
    so an edit that keeps its size is still seen."""
    metrics.publish(three_months)
    (item,) = worklist.export(three_months, tmp_path, "33", formats=("csv",), language="id")
    assert [e["sha256"] for e in worklist.latest_exports(three_months, tmp_path, "33")] == [item["sha256"]]
    original = item["path"].read_bytes()
    item["path"].write_bytes(original.replace(NIB["satu"].encode(), b"9" * len(NIB["satu"])))
    assert len(item["path"].read_bytes()) == len(original)
    assert worklist.latest_exports(three_months, tmp_path, "33") == []
