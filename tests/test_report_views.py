"""The report puts action first and names things: this month's actions, forecasts people can believe, the
worklist in groups with its download, segment and level names. Figures are read back from the marts."""

from __future__ import annotations

import hashlib
import re

from flows import worklist
from tests.test_report import _query, _write, demo_con, demo_database, shown  # noqa: F401 (fixtures)


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_this_month_comes_first_ranked_by_the_gap_that_grew_most(demo_con, settings):  # noqa: F811
    _, html = _write(demo_con, settings)
    main = html[html.index("<main>") :]
    assert main.index('id="this-month"') < main.index('id="headline"') < main.index('id="regions"')
    grown = _query(
        demo_con,
        "with t as (select code, name, month, status, gap_pp - lag(gap_pp) over (partition by code order by month)"
        " as change from mart.trajectory where level = 'region') select name from t "
        "where month = (select max(month) from t) and status in ('CRITICAL', 'BEHIND', 'AT_RISK') "
        "order by change desc nulls last, code limit 3",
    )
    section = html[html.index('id="this-month"') : html.index('id="headline"')]
    shown_items = re.findall(r'<li class="f action action-(\w+)"[^>]*?(hidden)?>\s*(.*?)</li>', section, re.S)
    visible = [(kind, _text(body)) for kind, hidden, body in shown_items if not hidden]
    assert [kind for kind, _ in visible] == ["region"] * 3 + ["employer"] * 3
    for (_, sentence), row in zip(visible, grown, strict=False):
        assert row["name"] in sentence and "peserta baru per bulan" in sentence
    top = _query(
        demo_con,
        "select name, unregistered_workers from mart.enforcement_worklist "
        "where month = (select max(month) from mart.enforcement_worklist) "
        "order by unregistered_workers desc, unpaid_contributions_idr desc limit 1",
    )[0]
    employer = visible[3][1]
    assert top["name"] in employer and "Teguran tertulis pertama" in employer
    assert f"{top['unregistered_workers']} pekerja belum terdaftar" in employer.replace(".", "")


def test_forecast_says_not_at_the_current_pace_or_gives_a_range(demo_con, settings):  # noqa: F811
    _, html = _write(demo_con, settings)
    rows = {
        row["code"]: row
        for row in _query(
            demo_con,
            "select * from mart.trajectory where level = 'region' and month = (select max(month) from mart.trajectory)",
        )
    }
    cells = dict(re.findall(r'data-code="(\d{4})"[^>]*>.*?<td class="forecast">(.*?)</td>', html, re.S))
    # Kab. Lebak gains ~109 people a month out of ~1.4 M: the old forecast said December 2146
    assert rows["3602"]["projected_target_month"] is None and rows["3602"]["recent_pace"] > 0
    assert _text(cells["3602"]) == "tidak tercapai pada laju kini"
    months = [
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

    def name(value):
        return f"{months[int(value[5:7]) - 1]} {value[:4]}"

    ranged = [
        code
        for code, row in rows.items()
        if row["projected_latest_month"]
        and row["projected_earliest_month"] != row["projected_latest_month"]
        and row["status"] != "ACHIEVED"
    ]
    assert ranged
    for code in ranged:
        row = rows[code]
        early, late = name(row["projected_earliest_month"]), name(row["projected_latest_month"])
        assert _text(cells[code]) == f"{name(row['projected_target_month'])} antara {early} dan {late}"


def test_names_not_codes(demo_con, settings):  # noqa: F811
    _, html = _write(demo_con, settings)
    segments = html[html.index('<section id="segments">') : html.index('<section id="compliance">')]
    assert "PBI_APBN" not in _text(segments) and "Pekerja badan usaha" in segments
    english = (settings.report_dir / "index.en.html").read_text(encoding="utf-8")
    assert "Company employees (PPU BU)" in english and "First written warning" in english
    assert "WRITTEN_WARNING_1</" not in html and ">branch<" not in html and "Kantor cabang" in html


def test_worklist_in_groups_with_counts_and_its_download(demo_con, settings):  # noqa: F811
    written = worklist.export(demo_con, settings.report_dir, "ID")
    _, html = _write(demo_con, settings)
    counts = _query(
        demo_con,
        "select next_sanction_step, region_code, count(*) as n from mart.enforcement_worklist "
        "where month = (select max(month) from mart.enforcement_worklist) group by all",
    )
    groups = re.findall(
        r'<details class="f wl-group" id="wl-(\w+)-(\d{4})"[^>]*>\s*<summary>.*?'
        r'data-field="group_employers">([\d.]+)</span>',
        html,
        re.S,
    )
    assert {(step, code): int(n.replace(".", "")) for step, code, n in groups} == {
        (row["next_sanction_step"], row["region_code"]): row["n"] for row in counts
    }
    # the first two groups are open, the rest folded; within a group at most 5 rows before "more"
    assert html.count('class="f wl-group"') == len(counts)
    opened = re.findall(r'<details class="f wl-group"[^>]*?( open)?>', html)
    assert opened[:2] == [" open", " open"] and set(opened[2:]) == {""}
    for item in written:
        assert f'href="{item["path"].name}"' in html and f'data-sha256="{item["sha256"]}"' in html
        assert hashlib.sha256((settings.report_dir / item["path"].name).read_bytes()).hexdigest() == item["sha256"]


def test_headline_cards_for_every_scope_the_filter_can_pick(demo_con, settings):  # noqa: F811
    _, html = _write(demo_con, settings)
    scopes = re.findall(r'<div class="kpis" data-level="(\w+)" data-code="(\w+)" data-scope="([\w:]+)"( hidden)?', html)
    expected = _query(
        demo_con, "select level, code from mart.coverage where month = (select max(month) from mart.coverage)"
    )
    assert {(level, code) for level, code, _, _ in scopes} == {(row["level"], row["code"]) for row in expected}
    assert [scope for _, _, scope, hidden in scopes if not hidden] == ["national:ID"]
    from flows import report

    assert report.TEXT["id"].keys() == report.TEXT["en"].keys() >= {"this_month", "worklist_groups_note", "partial"}


def test_failed_checks_are_told_apart_from_warnings_in_both_languages():
    """A critical failure held a batch back: "check the data first". Only warnings (a late region):
    the batch was published, and the action says so instead of casting doubt on the figures."""
    from flows import actions

    critical = actions.Action("checks", "data-quality", {"failed": 2, "critical": 1, "checked": 57})
    warning = actions.Action("checks", "data-quality", {"failed": 1, "critical": 0, "checked": 57})
    assert actions.sentence(critical, "en").startswith("Check the data first: 2 of the latest 57")
    assert "1 critical: that batch was not published" in actions.sentence(critical, "en")
    assert actions.sentence(warning, "en").startswith("Data-quality warnings: 1 of the latest 57 checks warned")
    assert "published" in actions.sentence(warning, "en") and "Check the data first" not in actions.sentence(
        warning, "en"
    )
    assert actions.sentence(critical, "id").startswith("Periksa data dulu: 2 dari 57")
    assert actions.sentence(warning, "id").startswith("Peringatan kualitas data: 1 dari 57")
