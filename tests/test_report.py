"""The managers' report: what it shows equals the marts, in Indonesian and English, and it copes with gaps."""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests import rows
from tests.conftest import TEST_KEY

MONTHS_ID = [
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
]
MONTHS_EN = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Shown(HTMLParser):
    """Every element with data-field, with the scope (data-level/data-code/data-segment) and section it is in."""

    def __init__(self):
        super().__init__()
        self.stack: list[dict] = []
        self.values: dict[tuple, list[str]] = defaultdict(list)
        self.ids: set[str] = set()
        self.capturing: list[list] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag in VOID:
            return
        self.stack.append(attrs | {"_tag": tag})
        if "data-field" in attrs:
            self.capturing.append([len(self.stack), self._key(attrs["data-field"]), ""])

    def _key(self, field):
        scope = {}
        section = None
        for attrs in self.stack:
            for name in ("data-level", "data-code", "data-segment"):
                if name in attrs:
                    scope[name] = attrs[name]
            if attrs["_tag"] == "section":
                section = attrs.get("id")
        return (section, scope.get("data-level"), scope.get("data-code"), scope.get("data-segment"), field)

    def handle_data(self, data):
        for item in self.capturing:
            item[2] += data

    def handle_endtag(self, tag):
        if tag in VOID or not self.stack:
            return
        while self.capturing and self.capturing[-1][0] == len(self.stack):
            _, key, text = self.capturing.pop()
            self.values[key].append(" ".join(text.split()))
        self.stack.pop()


def shown(html: str) -> Shown:
    parser = Shown()
    parser.feed(html)
    return parser


def parse_number(text: str, locale: str = "id") -> float:
    """'1.313.212' / '86,18%' / '+2,73 pp' / 'Rp 1.000' (id) or the English forms back to a number."""
    cleaned = re.sub(r"Rp|%|pp|\+|\s", "", text).replace("−", "-")
    if locale == "id":
        cleaned = cleaned.replace(".", "").replace(",", ".")
    else:
        cleaned = cleaned.replace(",", "")
    return float(cleaned)


def parse_month(text: str, locale: str = "id") -> str:
    name, year = text.split()
    return f"{year}-{(MONTHS_ID if locale == 'id' else MONTHS_EN).index(name) + 1:02d}"


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory) -> Path:
    """The demo landing folder ingested and published once per module (without the flow, to stay fast)."""
    from flows import database
    from flows.settings import Settings

    home = tmp_path_factory.mktemp("demo")
    settings = Settings(home=home, pseudonym_key=TEST_KEY)
    con = database.connect(settings)
    try:
        rows.publish_demo(con, settings)
    finally:
        con.close()
    return settings.db_path


@pytest.fixture
def demo_con(settings, demo_database):
    """A test's own copy of the published demo database."""
    from flows import database

    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(demo_database, settings.db_path)
    parts = demo_database.with_name(demo_database.name + ".parts")  # the rows the database registers
    shutil.copytree(parts, settings.db_path.with_name(settings.db_path.name + ".parts"))
    con = database.connect(settings)
    yield con
    con.close()


def _write(con, settings, **options):
    from flows import report

    path = report.write(con, settings, **options)
    return path, path.read_text(encoding="utf-8")


def _query(con, sql, params=()):
    cursor = con.execute(sql, list(params))
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_local_number_formats():
    from flows import report

    assert report.number(1_313_212, "id") == "1.313.212"
    assert report.number(1_313_212, "en") == "1,313,212"
    assert report.percent(86.1812, "id") == "86,18%"
    assert report.percent(86.1812, "en") == "86.18%"
    assert report.points(2.734, "id") == "+2,73 pp"
    assert report.points(-1.2, "id") == "−1,20 pp"
    assert report.rupiah(12_000_000, "id") == "Rp 12.000.000"
    assert report.month_name("2022-08", "id") == "Agustus 2022"
    assert report.number(None, "id") == "–"


def test_numbers_shown_equal_the_marts(demo_con, settings):
    path, html = _write(demo_con, settings)
    assert path == settings.report_dir / "index.html"
    page = shown(html)
    month = demo_con.execute("select max(month) from mart.coverage").fetchone()[0]
    assert f"{MONTHS_ID[month.month - 1]} {month.year}" in html

    coverage = _query(
        demo_con,
        "select c.*, t.expected_pct, t.gap_pp, t.people_needed, t.projected_target_month, t.status "
        "from mart.coverage as c left join mart.trajectory as t using (month, level, code) where month = ?",
        [month],
    )
    uhc = {
        (row["level"], row["code"]): row
        for row in _query(
            demo_con,
            "select 'national' as level, 'ID' as code, count(*) as regions, count(*) filter (is_uhc) as uhc_regions "
            "from mart.coverage where month = ? and level = 'region' "
            "union all select 'province', r.province_code, count(*), count(*) filter (is_uhc) "
            "from mart.coverage as c join ref.regions as r on c.code = r.region_code "
            "where month = ? and level = 'region' group by r.province_code "
            "union all select 'branch', r.branch_office, count(*), count(*) filter (is_uhc) "
            "from mart.coverage as c join ref.regions as r on c.code = r.region_code "
            "where month = ? and level = 'region' and r.branch_office <> '' group by r.branch_office",
            [month, month, month],
        )
    }
    checked = 0
    for row in coverage:
        for (section, level, code, _, field), texts in page.values.items():
            if (level, code) != (row["level"], row["code"]) or section not in {"headline", "regions", "region-charts"}:
                continue
            for text in texts:
                if field in {"coverage_pct", "active_rate_pct", "expected_pct", "gap_pp"}:
                    assert parse_number(text) == pytest.approx(round(row[field], 2), abs=1e-9), (level, code, field)
                elif field in {"participants", "population", "people_needed"}:
                    assert parse_number(text) == row[field], (level, code, field)
                elif field in {"uhc_regions", "regions"}:
                    assert parse_number(text) == uhc[(level, code)][field], (level, code, field)
                elif field == "projected_target_month":
                    if row["status"] != "ACHIEVED" and row["projected_target_month"]:
                        assert parse_month(text) == row["projected_target_month"]
                else:
                    continue
                checked += 1
    # every region in the table and its chart card, the national figures, every province and branch
    regions = sum(row["level"] == "region" for row in coverage)
    assert regions == 12
    assert len(page.values[("regions", "region", "3375", None, "coverage_pct")]) == 1
    assert checked >= regions * 8 + 5

    # the regions are listed by gap, largest first
    order = [key[2] for key in page.values if key[0] == "regions" and key[4] == "gap_pp"]
    gaps = {row["code"]: row["gap_pp"] for row in coverage if row["level"] == "region"}
    assert order == sorted(gaps, key=lambda code: -gaps[code])

    segments = _query(
        demo_con, "select * from mart.coverage_by_segment where month = ? and level = 'national'", [month]
    )
    assert len(segments) == 6
    for row in segments:
        for field in ("participants", "active_participants"):
            assert parse_number(page.values[("segments", "national", "ID", row["segment"], field)][0]) == row[field]
        share = parse_number(page.values[("segments", "national", "ID", row["segment"], "share_pct")][0])
        assert share == pytest.approx(round(row["share_pct"], 2))


def test_published_demo_figures_appear_the_indonesian_way(demo_con, settings):
    _, html = _write(demo_con, settings, month=date(2022, 8, 1))
    page = shown(html)
    # DOMAIN.md: August 2022, Kab. Pemalang 1,313,212 participants at 85.16%, Kota Pekalongan 86.18%
    assert page.values[("regions", "region", "3327", None, "participants")] == ["1.313.212"]
    assert page.values[("regions", "region", "3327", None, "coverage_pct")] == ["85,16%"]
    assert page.values[("regions", "region", "3375", None, "coverage_pct")] == ["86,18%"]
    assert "Agustus 2022" in html


def test_english_page_and_language_links(demo_con, settings):
    _, html_id = _write(demo_con, settings)
    html_en = (settings.report_dir / "index.en.html").read_text(encoding="utf-8")
    assert '<html lang="id">' in html_id and '<html lang="en">' in html_en
    assert 'href="index.en.html"' in html_id and 'href="index.html"' in html_en
    national = _query(demo_con, "select * from mart.coverage where level = 'national' order by month desc limit 1")[0]
    page = shown(html_en)
    text = page.values[("headline", "national", "ID", None, "participants")][0]
    assert "," in text and parse_number(text, "en") == national["participants"]
    text = page.values[("headline", "national", "ID", None, "coverage_pct")][0]
    assert parse_number(text, "en") == pytest.approx(round(national["coverage_pct"], 2))
    assert "Regencies/cities by gap to trajectory" in html_en and "Critical" in html_en


def test_locale_option_makes_english_the_main_page(demo_con, settings):
    path, html = _write(demo_con, settings, locale="en")
    assert path.name == "index.html" and '<html lang="en">' in html
    assert '<html lang="id">' in (settings.report_dir / "index.id.html").read_text(encoding="utf-8")


def test_status_reads_without_colour(demo_con, settings):
    _, html = _write(demo_con, settings)
    statuses = {row[0] for row in demo_con.execute("select distinct status from mart.trajectory").fetchall()}
    labels = {
        "CRITICAL": "✖ Kritis",
        "BEHIND": "▼ Tertinggal",
        "AT_RISK": "▲ Berisiko",
        "ON_TRACK": "● Sesuai lintasan",
        "ACHIEVED": "✔ Tercapai",
    }
    for status in statuses:
        badge = re.search(
            rf'<span class="status status-{status}"[^>]*><span class="icon"[^>]*>(.)</span>\s*([^<]+)</span>', html
        )
        assert f"{badge.group(1)} {badge.group(2).strip()}" == labels[status]


def test_no_published_data_yet(con, settings):
    path, html = _write(con, settings)
    page = shown(html)
    assert "no-data" in page.ids
    assert "Belum ada data yang dipublikasikan" in html
    assert "<script" not in html  # nothing to draw, nothing to load


def test_no_employer_data_when_the_compliance_marts_are_missing_or_empty(demo_con, settings):
    demo_con.execute("delete from mart.compliance_by_region")
    demo_con.execute("delete from mart.enforcement_worklist")
    _, html = _write(demo_con, settings)
    assert {"no-employer-data", "no-worklist"} <= shown(html).ids
    demo_con.execute("drop table mart.compliance_by_region")
    demo_con.execute("drop table mart.enforcement_worklist")
    _, html = _write(demo_con, settings)
    assert {"no-employer-data", "no-worklist"} <= shown(html).ids
    assert "Belum ada data pemberi kerja" in html


def test_employer_compliance_and_worklist(demo_con, settings):
    # Kab. Batang: one registered employer under-registering its workers, one company never registered
    rows.employers(
        demo_con,
        "2022-12",
        [
            ("E1", "9120001234567", "PT Batik Maju", "3325", 40, 120_000_000, 10_000_000, 6_000_000, 2),
        ],
    )
    rows.workforce(
        demo_con,
        "2022-12",
        [
            ("9120001234567", "PT Batik Maju", "3325", 100),
            ("9120007654321", "CV Tenun Jaya", "3325", 25),
        ],
    )
    rows.build(demo_con)
    from flows import metrics

    metrics.publish(demo_con)
    _, html = _write(demo_con, settings)
    page = shown(html)
    assert "no-employer-data" not in page.ids and "no-worklist" not in page.ids
    compliance = _query(demo_con, "select * from mart.compliance_by_region where month = '2022-12-01'")
    assert compliance
    checked = 0
    for row in compliance:
        for field in (
            "employers_reported",
            "employers_not_registered",
            "workers_reported",
            "workers_registered",
            "unpaid_contributions_idr",
            "worker_registration_pct",
        ):
            if field not in row:
                continue
            texts = page.values[("compliance", row["level"], row["code"], None, field)]
            assert len(texts) == 1, (row["level"], row["code"], field)
            expected = row[field]
            if expected is None:
                assert texts == ["–"]
            elif field.endswith("_pct"):
                assert parse_number(texts[0]) == pytest.approx(round(expected, 2))
            else:
                assert parse_number(texts[0]) == pytest.approx(round(float(expected)))
            checked += 1
    assert checked >= 4 * 4  # national, province, branch and region rows
    worklist = _query(demo_con, "select * from mart.enforcement_worklist where month = '2022-12-01'")
    assert worklist
    for row in worklist:
        assert row["name"] in html
    assert "Teguran tertulis pertama" in html  # the next sanction step, in Indonesian


def test_data_quality_warnings_and_loaded_files(demo_con, settings):
    from datetime import UTC, datetime

    demo_con.execute(
        "insert into ops.dq_results values ('run-older', 'build.coverage', 'expect_old_thing', 'warning', false, "
        "'old', null, ?), ('run-latest', 'build.coverage', 'expect_column_values_to_be_between', 'warning', false, "
        "'coverage_pct 101.2 in 3671', null, ?), ('run-latest', 'staging.region_counts', "
        "'expect_column_values_to_not_be_null', 'critical', true, '0', null, ?)",
        [datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 2, 1, tzinfo=UTC), datetime(2023, 2, 1, tzinfo=UTC)],
    )
    _, html = _write(demo_con, settings)
    assert "1 dari 2 pemeriksaan tidak lolos" in html
    assert "expect_column_values_to_be_between" in html and "coverage_pct 101.2 in 3671" in html
    assert "expect_old_thing" not in html  # only the latest run's results
    assert "expect_column_values_to_not_be_null" not in html  # passed: not a warning
    files = [row[0] for row in demo_con.execute("select file_name from ops.load_log").fetchall()]
    assert len(files) >= 29  # the demo's extracts
    for name in files:
        assert f"<code>{name}</code>" in html
    assert "last-loaded" in shown(html).ids


def test_reads_only_marts_ops_and_ref_from_a_read_only_connection(demo_con, settings):
    from flows import database

    _, before = _write(demo_con, settings)
    for schema in ("raw", "staging", "build"):
        demo_con.execute(f"drop schema {schema} cascade")
    demo_con.close()
    con = database.connect(settings, read_only=True)
    try:
        _, after = _write(con, settings)
    finally:
        con.close()
    assert shown(after).values == shown(before).values


def test_cli_report_command(demo_con, settings):
    from typer.testing import CliRunner

    from flows.cli import app

    demo_con.close()
    result = CliRunner().invoke(app, ["report", "--locale", "en"])
    assert result.exit_code == 0, result.output
    html = (settings.report_dir / "index.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in html
    assert str(settings.report_dir / "index.html") in result.output.replace("\n", "")


def test_cli_report_usage_errors_exit_2(demo_con, settings):
    import subprocess
    import sys

    demo_con.close()
    for arguments, message in (
        (["--month", "1999-01"], "no published coverage for 1999-01"),
        (["--month", "08-2022"], "expected YYYY-MM"),
        (["--locale", "fr"], "expected id or en"),
    ):
        result = subprocess.run(
            [sys.executable, "-c", "from flows.cli import main; main()", "report", *arguments],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert message in " ".join((result.stdout + result.stderr).split())


def test_vl_convert_chart_specs_compile(demo_con, settings):
    """The report's charts are compiled from the same Altair specs as the email PNG."""
    from flows import charts, report

    specs = report.assets(settings.home / "cache")["specs"]["id"]
    assert {"trajectory", "trajectory_wide", "segments"} <= set(specs)
    names = {item["name"] for item in specs["trajectory"]["data"]}
    assert {"series", "target"} <= names
    assert charts.trajectory_spec("id")["layer"]


def test_chart_assets_are_cached_on_disk(tmp_path):
    from flows import report

    report._ASSETS.clear()
    first = report.assets(tmp_path)
    cached = list(tmp_path.glob("report-assets-*.json"))
    assert len(cached) == 1
    report._ASSETS.clear()
    assert report.assets(tmp_path) == first  # read back from the file
    cached[0].write_text("{damaged", encoding="utf-8")
    report._ASSETS.clear()
    again = report.assets(tmp_path)
    assert again["specs"] == first["specs"] and "vegaEmbed" in again["bundle"]


def test_every_column_shown_has_a_heading_in_both_languages():
    from flows import report

    for locale in report.LOCALES:
        for column in report.COMPLIANCE_COLUMNS + report.WORKLIST_COLUMNS:
            assert column in report.COLUMN_LABELS[locale], (locale, column)
        assert set(report.TEXT[locale]) == set(report.TEXT["id"])
