"""Issue 14, item 7: a region missing from a month's batch is shown as not reported with its last figures,
and the scopes above it are marked partial (given these rows, expect these rows)."""

from tests import rows

BRANCH = ("3325", "3326", "3327", "3375")  # KC Pekalongan, province 33


def _three_months(con, missing: dict[str, tuple[str, ...]]) -> None:
    """Four regions of KC Pekalongan plus Kab. Pandeglang (Banten) report July to September 2022, except
    `missing` (month -> regions without figures that month)."""
    rows.population(con, "2022-S1", {code: 1000 for code in (*BRANCH, "3601")})
    for month, base in (("2022-07", 800), ("2022-08", 810), ("2022-09", 820)):
        counts = {code: (base + number, 100) for number, code in enumerate((*BRANCH, "3601"))}
        for code in missing.get(month, ()):
            counts.pop(code)
        rows.region_counts(con, month, counts)


def test_a_region_missing_one_month_keeps_its_last_figures_with_their_month(con):
    _three_months(con, {"2022-09": ("3327",)})
    rows.build(con)
    got = rows.query(
        con,
        "select strftime(month, '%Y-%m'), code, is_reported, strftime(reported_month, '%Y-%m'), "
        "months_not_reported, participants, round(coverage_pct, 2) "
        "from build.region_reporting where code in ('3326', '3327') order by month, code",
    )
    assert got == [
        ("2022-07", "3326", True, "2022-07", 0, 901, 90.1),
        ("2022-07", "3327", True, "2022-07", 0, 902, 90.2),
        ("2022-08", "3326", True, "2022-08", 0, 911, 91.1),
        ("2022-08", "3327", True, "2022-08", 0, 912, 91.2),
        ("2022-09", "3326", True, "2022-09", 0, 921, 92.1),
        # not reported in September: August's figures, said to be August's
        ("2022-09", "3327", False, "2022-08", 1, 912, 91.2),
    ]
    # mart.coverage never passes August's figures off as September's: the region has no September row
    assert rows.query(con, "select count(*) from build.coverage where code = '3327' and month = '2022-09-01'") == [(0,)]


def test_scopes_without_a_region_are_marked_partial_not_silently_low(con):
    _three_months(con, {"2022-09": ("3327",)})
    rows.build(con)
    got = rows.query(
        con,
        "select level, code, participants, regions_not_reported, is_partial from build.coverage "
        "where month = '2022-09-01' and level <> 'region' order by level, code",
    )
    assert got == [
        ("branch", "PEKALONGAN", 3 * 920 + 1 + 3, 1, True),  # 3325, 3326, 3375 only
        ("branch", "SERANG", 924, 0, False),
        ("national", "ID", 3 * 920 + 1 + 3 + 924, 1, True),
        ("province", "33", 3 * 920 + 1 + 3, 1, True),
        ("province", "36", 924, 0, False),
    ]
    # every scope was complete in August
    assert rows.query(
        con, "select bool_or(is_partial), max(regions_not_reported) from build.coverage where month = '2022-08-01'"
    ) == [(False, 0)]


def test_months_not_reported_counts_the_months_in_a_row_and_resets_when_it_reports(con):
    _three_months(con, {"2022-08": ("3327",), "2022-09": ("3327", "3375")})
    rows.region_counts(con, "2022-10", {code: (830, 100) for code in (*BRANCH, "3601")})
    rows.build(con)
    got = rows.query(
        con,
        "select strftime(month, '%Y-%m'), code, is_reported, strftime(reported_month, '%Y-%m'), months_not_reported "
        "from build.region_reporting where code in ('3327', '3375') order by code, month",
    )
    assert got == [
        ("2022-07", "3327", True, "2022-07", 0),
        ("2022-08", "3327", False, "2022-07", 1),
        ("2022-09", "3327", False, "2022-07", 2),
        ("2022-10", "3327", True, "2022-10", 0),
        ("2022-07", "3375", True, "2022-07", 0),
        ("2022-08", "3375", True, "2022-08", 0),
        ("2022-09", "3375", False, "2022-08", 1),
        ("2022-10", "3375", True, "2022-10", 0),
    ]
    assert rows.query(
        con, "select regions_not_reported from build.coverage where month = '2022-09-01' and code = 'PEKALONGAN'"
    ) == [(2,)]


def _published_september_without_pemalang(con):
    """July to September published as a run would (marts, then the readers' snapshot), Pemalang missing
    from September."""
    from flows import metrics

    _three_months(con, {"2022-09": ("3327",)})
    rows.build(con)
    metrics.publish(con)


def test_status_shows_the_missing_region_with_its_last_figures_and_the_partial_scopes(con, settings, monkeypatch):
    from typer.testing import CliRunner

    from flows import cli

    _published_september_without_pemalang(con)
    con.close()
    monkeypatch.setattr(cli.console, "width", 250)  # one table row per line
    done = CliRunner().invoke(cli.app, ["status"])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    [pemalang] = [line for line in lines if "Kab. Pemalang" in line]
    assert "not reported this month, last figures from 2022-08" in pemalang
    assert "91.20" in pemalang and "912" in pemalang  # August's coverage and participants
    [branch] = [line for line in lines if "KC Pekalongan" in line]
    assert "partial: 1 region not reported" in branch
    [banten] = [line for line in lines if "Banten" in line]
    assert "partial" not in banten
    assert "Coverage, 2022-09" in done.output


def test_the_report_shows_the_missing_region_as_not_reported_in_both_languages(con, settings):
    from flows import report

    _published_september_without_pemalang(con)
    data = report.collect(con)
    assert [
        (row["code"], row["reported_month"], row["months_not_reported"], row["is_escalated"])
        for row in data["not_reported"]
    ] == [("3327", "2022-08", 1, False)]
    assert "3327" not in {row["code"] for row in data["regions"]}  # not among September's figures
    assert data["national"]["regions_not_reported"] == 1
    indonesian, english = report.render(data, "id"), report.render(data, "en")
    assert "Belum melapor bulan ini (1)" in indonesian and "angka terakhir dari Agustus 2022" in indonesian
    assert "sebagian: 1 wilayah belum melapor" in indonesian
    assert "Not reported this month (1)" in english and "last figures from August 2022" in english
    assert "partial: 1 region(s) not reported" in english
