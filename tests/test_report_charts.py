"""The trajectory chart: PNG for emails, the same Vega-Lite spec as the report's."""

from __future__ import annotations

import json
import struct

import altair as alt
import pytest

from flows import charts, labels
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


@pytest.mark.parametrize("locale", ["id", "en", "fr"])
def test_specs_written_out_are_what_altair_builds(locale):
    """The trajectory and segment specs are written as dicts; Altair's build of the same charts gives the same
    JSON (keys, their order, values) for every size the report and the emails use, with and without a title."""
    for size in ({}, {"width": 290, "height": 150}, {"width": 760, "height": 240}, {"title": "Kab. Batang"}):
        assert json.dumps(charts.trajectory_spec(locale, **size)) == json.dumps(_altair_trajectory_spec(locale, **size))
    for width in (420, 300):
        assert json.dumps(charts.segment_mix_spec(locale, width)) == json.dumps(_altair_segment_mix_spec(locale, width))


def test_the_chart_process_draws_the_bytes_drawn_here_and_says_what_it_refuses(demo_con):
    """vl-convert in its own process: the same PNG bytes as `render_png` in this one, in the order asked; a spec
    vl-convert refuses fails with vl-convert's words, and the process goes on drawing; once it is closed, what
    it did not answer fails rather than waiting for ever."""
    from flows.alerts.chart_process import ChartProcess

    data = charts.trajectory_datasets(demo_con, "region", codes=["3326"], locale="en")["3326"]
    spec = charts.png_spec(data, "en")
    process = ChartProcess()
    try:
        warm = process.warm_up("en")
        drawn = process.draw(spec, "en")
        refused = process.draw({"mark": "no-such-mark", "data": {"values": [{"a": 1}]}}, "en")
        small = process.draw(spec, "en", scale=1)
        assert warm.result(timeout=60).startswith(PNG_SIGNATURE)
        assert drawn.result(timeout=60) == charts.render_png(spec, "en")
        with pytest.raises(RuntimeError, match="."):
            refused.result(timeout=60)
        assert small.result(timeout=60) == charts.render_png(spec, "en", scale=1)
    finally:
        process.close()
    assert process.process.returncode is not None
    ended = ChartProcess()
    ended.close(wait_seconds=0)
    with pytest.raises(OSError, match="closed"):
        ended.draw(spec, "en").result(timeout=0)


def test_the_chart_process_compacts_each_png_itself(demo_con):
    """The drawing process answers a chart asked compacted with the compacted PNG (kind b"C"), the bytes
    `render_png` gives here, so the run's own process spends nothing on it; the warm-up's is left as drawn."""
    import subprocess
    import sys

    from flows.alerts import chart_process

    data = charts.trajectory_datasets(demo_con, "province", codes=["33"], locale="id")["33"]
    spec = charts.png_spec(data, "id")
    request = {"vl_spec": spec, "scale": 1.5, "format_locale": charts.FORMAT_LOCALES["id"]}
    request["time_format_locale"] = charts.TIME_FORMAT_LOCALES["id"]
    lines = [json.dumps({**request, "compact": True}), json.dumps({**request, "compact": False})]
    answer = subprocess.run(
        [sys.executable, "-I", "-c", chart_process._WORKER_PROGRAM, chart_process._PACKAGES_ROOT],
        input="\n".join(lines).encode() + b"\n",
        capture_output=True,
        timeout=120,
        check=True,
    ).stdout
    compacted_length = struct.unpack(">I", answer[1:5])[0]
    compacted, raw = answer[5 : 5 + compacted_length], answer[10 + compacted_length :]
    assert answer[:1] == b"C" and compacted == charts.render_png(spec, "id")
    assert answer[5 + compacted_length : 6 + compacted_length] == b"P" and charts.compact_png(raw) == compacted
    assert len(raw) > 2 * len(compacted)


def test_charts_are_drawn_here_when_the_chart_process_is_gone(demo_con):
    """A drawing process that died (or never answers) costs the run nothing but time: each chart is then drawn
    in the run's own process, the same bytes."""
    from flows import charts
    from flows.alerts.delivery import _Charts

    drawn = _Charts(demo_con)
    try:
        drawn.warm_up()
        drawn._process.process.kill()
        drawn.prepare([(("region", "3326"), "id"), (("province", "33"), "en")])
        assert drawn.png(("region", "3326"), "id") == charts.trajectory_png(demo_con, "region", "3326", locale="id")
        assert drawn.png(("province", "33"), "en") == charts.trajectory_png(demo_con, "province", "33", locale="en")
    finally:
        drawn.close()


def test_a_chart_process_started_early_is_the_one_the_alerts_take_and_one_not_taken_ends(demo_con):
    """The flow starts the drawing process before its mart checks (`chart_process.start_early`); the alerts'
    charts take that one, warm, and draw with it; one that no alerts stage took ends with the run."""
    from flows.alerts import chart_process
    from flows.alerts.delivery import _Charts

    chart_process.start_early()
    chart_process.start_early()  # once
    early = chart_process._early[0]
    assert len(chart_process._early) == 1
    drawn = _Charts(demo_con)
    try:
        drawn.warm_up()
        assert drawn._process is early and chart_process.take_early() is None
        drawn.prepare([(("region", "3326"), "id")])
        assert drawn.png(("region", "3326"), "id") == charts.trajectory_png(demo_con, "region", "3326", locale="id")
    finally:
        drawn.close()
    assert early.process.poll() is not None  # the alerts closed it
    chart_process.start_early()
    unused = chart_process._early[0]
    chart_process.close_early()
    assert unused.process.wait(timeout=10) is not None and not chart_process._early


def test_charts_drawn_before_the_checks_are_taken_only_where_the_published_marts_give_the_same_spec(demo_con, tmp_path):
    """The flow has each email recipient's own scope chart drawn from the built marts before they are checked
    (`early_chart_specs`, `chart_process.draw_early`). The alerts take a chart drawn that way only where the spec
    they compute from the published marts is the same: here the published 3326 differs from the built one, so
    its chart is drawn again from the published data, while the others are the ones drawn before."""
    from flows.alerts import chart_process
    from flows.alerts.delivery import _Charts, early_chart_specs
    from flows.settings import Settings
    from tests.test_alerts import recipients_file

    routing = recipients_file(
        tmp_path / "recipients.csv",
        [
            ("3326", "email", "dinkes@pekalongankab.example", "id", "true"),
            ("33", "email", "jateng@bpjs.example", "en", "true"),
            ("PEKALONGAN", "email", "kc@bpjs.example", "id", "true"),
            ("ID", "webhook", "https://hooks.example/jkn", "id", "true"),
            ("ops", "email", "data@bpjs.example", "en", "true"),
        ],
    )
    settings = Settings(home=tmp_path / "home", pseudonym_key=TEST_KEY, recipients=routing)
    specs = early_chart_specs(demo_con, settings)
    # email recipients only, each its own scope, in its language; ops has no chart
    assert sorted(specs) == [("branch", "PEKALONGAN", "id"), ("province", "33", "en"), ("region", "3326", "id")]
    chart_process.start_early()
    chart_process.draw_early(specs)
    early = chart_process._early[0]
    drawn_before = {key: future for key, (_, future) in early.drawn_ahead.items()}
    demo_con.begin()
    drawn = _Charts(demo_con)
    try:
        # published figures that are not the built ones (a backfill, a later build): 3326's latest month
        demo_con.execute(
            "update mart.trajectory set actual_pct = actual_pct - 1.5 where level = 'region' and code = '3326' "
            "and month = (select max(month) from mart.trajectory)"
        )
        drawn.warm_up()
        assert drawn._process is early
        wanted = [(("region", "3326"), "id"), (("province", "33"), "en"), (("branch", "PEKALONGAN"), "id")]
        drawn.prepare(wanted)
        assert drawn.drawn[("province", "33", "en")] is drawn_before[("province", "33", "en")]
        assert drawn.drawn[("branch", "PEKALONGAN", "id")] is drawn_before[("branch", "PEKALONGAN", "id")]
        assert drawn.drawn[("region", "3326", "id")] is not drawn_before[("region", "3326", "id")]
        for (level, code), language in wanted:
            assert drawn.png((level, code), language) == charts.trajectory_png(demo_con, level, code, locale=language)
        assert drawn_before[("region", "3326", "id")].result(timeout=60) != drawn.png(("region", "3326"), "id")
    finally:
        drawn.close()
        demo_con.rollback()
    assert not chart_process._early


def test_latest_trajectories_are_each_levels_latest_month(demo_con):
    """The alerts read every chart's data in one query: the same data as one level's query in its latest month."""
    from flows import charts

    scopes = [("region", "3326"), ("province", "33"), ("national", "ID"), ("branch", "PEKALONGAN"), ("region", "0")]
    found = charts.latest_trajectories(demo_con, scopes, ("id", "en"))
    expected = {
        (level, code, locale): data
        for level, code in scopes
        for locale in ("id", "en")
        for data in charts.trajectory_datasets(demo_con, level, codes=[code], locale=locale).values()
    }
    assert len(expected) == 8 and found == expected
    assert charts.latest_trajectories(demo_con, []) == {}


def _altair_trajectory_spec(locale: str = "id", width: int = 460, height: int = 200, title: str | None = None) -> dict:
    """The trajectory chart built with Altair's classes, as charts.trajectory_spec was built before it was
    written out as a dict."""

    labels = charts._labels(locale)
    series_label = "{" + ", ".join(f"'{key}': '{labels[key]}'" for key in charts.SERIES) + "}[datum.series]"
    x = alt.X("month:T", timeUnit="utcyearmonth", title=labels["month"], axis=alt.Axis(format="%b %Y", labelAngle=0))
    y_scale = alt.Scale(zero=False, nice=True)
    lines = (
        alt.Chart(alt.Data(name="series"))
        .transform_calculate(line=series_label)
        .mark_line(strokeWidth=2)
        .encode(
            x=x,
            y=alt.Y("value:Q", title=labels["coverage"], scale=y_scale),
            color=alt.Color(
                "line:N",
                title=None,
                scale=alt.Scale(domain=[labels[key] for key in charts.SERIES], range=list(charts.SERIES_COLOURS)),
                legend=alt.Legend(orient="bottom", direction="horizontal"),
            ),
            strokeDash=alt.StrokeDash(
                "line:N",
                scale=alt.Scale(domain=[labels[key] for key in charts.SERIES], range=list(charts.SERIES_DASHES)),
                legend=None,
            ),
            tooltip=[
                alt.Tooltip("month:T", timeUnit="utcyearmonth", title=labels["month"], format="%B %Y"),
                alt.Tooltip("line:N", title=labels["line"]),
                alt.Tooltip("value:Q", title=labels["coverage"], format=",.2f"),
            ],
        )
    )
    # dots on the measured months only: the trajectory and projection are lines, not data
    actual_points = (
        alt.Chart(alt.Data(name="series"))
        .transform_filter("datum.series == 'actual'")
        .mark_point(filled=True, size=14, color=charts.SERIES_COLOURS[0])
        .encode(x=x, y=alt.Y("value:Q"))
    )
    target_rule = (
        alt.Chart(alt.Data(name="target"))
        .mark_rule(color=charts.TARGET_COLOUR, strokeWidth=1.5)
        .encode(y=alt.Y("target_pct:Q"))
    )
    target_text = (
        alt.Chart(alt.Data(name="target"))
        .mark_text(align="left", dx=4, dy=-6, color=charts.TARGET_COLOUR, fontWeight="bold")
        .encode(x=alt.X("start:T", timeUnit="utcyearmonth"), y=alt.Y("target_pct:Q"), text="label:N")
    )
    chart = alt.layer(lines, actual_points, target_rule, target_text).properties(width=width, height=height)
    if title:
        chart = chart.properties(title=title)
    return chart.to_dict(validate=False)


def _altair_segment_mix_spec(locale: str = "id", width: int = 420) -> dict:
    """The segment chart built with Altair's classes, as charts.segment_mix_spec was."""

    axes = charts._words(locale).segment_mix
    share, participants, segment = axes["share"], axes["participants"], axes["segment"]
    # the data's `segment` holds the names managers use (flows/labels.py), in the segments' fixed order
    segments = [labels.name(labels.SEGMENT_SHORT_NAMES, code, locale) for code in labels.SEGMENTS]
    chart = (
        alt.Chart(alt.Data(name="segments"))
        .mark_bar()
        .encode(
            y=alt.Y("scope:N", title=None, sort=alt.EncodingSortField("order", op="min")),
            x=alt.X("share_pct:Q", title=share, stack="zero", scale=alt.Scale(domain=[0, 100])),
            color=alt.Color(
                "segment:N",
                title=segment,
                scale=alt.Scale(domain=segments, range=list(charts.SEGMENT_COLOURS)),
                legend=alt.Legend(orient="bottom", direction="horizontal", columns=6),
            ),
            order=alt.Order("segment_order:Q"),
            tooltip=[
                alt.Tooltip("scope:N", title=" "),
                alt.Tooltip("segment:N", title=segment),
                alt.Tooltip("participants:Q", title=participants, format=",d"),
                alt.Tooltip("share_pct:Q", title=share, format=",.2f"),
            ],
        )
        .transform_calculate(segment_order="indexof(" + json.dumps(segments) + ", datum.segment)")
        .properties(width=width, height=alt.Step(18))
    )
    return chart.to_dict(validate=False)
