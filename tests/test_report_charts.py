"""The trajectory chart: PNG for emails, the same Vega-Lite spec as the report's."""

from __future__ import annotations

import struct

import pytest

from tests import rows
from tests.conftest import TEST_KEY

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo_con(tmp_path_factory):
    """The demo landing folder ingested and published once, without the flow (fast); the tests only read."""
    from flows import database
    from flows.settings import Settings

    settings = Settings(home=tmp_path_factory.mktemp("demo"), pseudonym_key=TEST_KEY)
    con = database.connect(settings)
    rows.publish_demo(con, settings)
    yield con
    con.close()


def _png_size(png: bytes) -> tuple[int, int]:
    return struct.unpack(">II", png[16:24])


def test_trajectory_png_of_a_region(demo_con):
    from flows import charts

    png = charts.trajectory_png(demo_con, "region", "3326", locale="id")
    assert png.startswith(PNG_SIGNATURE)
    width, height = _png_size(png)
    assert width >= 600 and height >= 300
    assert len(png) > 20_000  # a drawn chart, not an empty canvas


def test_trajectory_png_of_every_level_and_locale(demo_con):
    from flows import charts

    month = demo_con.execute("select max(month) from mart.trajectory").fetchone()[0]
    for level, code in demo_con.execute(
        "select level, any_value(code) from mart.trajectory where level <> 'region' group by level"
    ).fetchall():
        png = charts.trajectory_png(demo_con, level, code, month=month, locale="en", scale=1)
        assert png.startswith(PNG_SIGNATURE) and len(png) > 5_000


def test_trajectory_chart_data_comes_from_the_marts(demo_con):
    from flows import charts

    month = demo_con.execute("select max(month) from mart.trajectory where month < '2022-12-01'").fetchone()[0]
    data = charts.trajectory_datasets(demo_con, "region", month=month, codes=["3375"])["3375"]
    actual = {row["month"]: row["value"] for row in data["series"] if row["series"] == "actual"}
    expected = dict(
        demo_con.execute(
            "select strftime(month, '%Y-%m-01'), actual_pct from mart.trajectory "
            "where level = 'region' and code = '3375' and month <= ?",
            [month],
        ).fetchall()
    )
    assert actual == pytest.approx(expected)
    assert max(actual) == month.strftime("%Y-%m-01")  # nothing after the chosen month
    target = data["target"][0]
    assert (
        target["target_pct"]
        == demo_con.execute(
            "select target_pct from mart.trajectory where level = 'region' and code = '3375' and month = ?", [month]
        ).fetchone()[0]
    )
    # the projection starts at the month's coverage
    projection = sorted((row["month"], row["value"]) for row in data["series"] if row["series"] == "projection")
    assert projection[0] == (month.strftime("%Y-%m-01"), pytest.approx(actual[month.strftime("%Y-%m-01")]))


def test_unknown_scope_is_an_error(demo_con):
    from flows import charts

    with pytest.raises(LookupError, match="9999"):
        charts.trajectory_png(demo_con, "region", "9999")


def test_indonesian_axis_uses_decimal_comma(demo_con):
    from flows import charts

    chart = charts.trajectory_chart(demo_con, "region", "3671", locale="id")
    svg = charts.trajectory_svg(chart.to_dict(validate=False), locale="id")
    assert "Cakupan (%)" in svg and "Lintasan ke target" in svg
    assert "97,5" in svg or "97,0" in svg  # the tick labels of Kota Tangerang's axis
    assert "Target 98%" in svg


def test_charts_prepared_for_a_runs_emails_are_the_charts_drawn_one_by_one(demo_con):
    """The alerts read their emails' charts per level and draw them on a thread: the same PNG bytes as one
    chart drawn on its own, and a scope without a trajectory still has no chart."""
    from flows import charts
    from flows.alerts.delivery import _Charts

    wanted = [
        (("region", "3326"), "id"),
        (("region", "3325"), "en"),
        (("national", "ID"), "id"),
        (("region", "9999"), "id"),
    ]
    drawn = _Charts(demo_con)
    try:
        drawn.warm_up()
        drawn.prepare([*wanted, (None, "id")])
        for (level, code), language in wanted[:3]:
            assert drawn.png((level, code), language) == charts.trajectory_png(demo_con, level, code, locale=language)
        assert drawn.png(("region", "9999"), "id") is None
        assert drawn.png(None, "id") is None
    finally:
        drawn.close()
