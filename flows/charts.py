"""Charts of the published marts: Vega-Lite specs as Altair writes them, written out as dicts (Altair itself
only where a caller wants an Altair chart, and in the tests that compare the two).

One trajectory chart serves both the HTML report (rendered in the browser from the same Vega-Lite spec, data
filled in per region) and the alert emails (rendered here to PNG by vl-convert: no browser, no network).

The spec reads two named datasets, so the report can ship the spec once and only the small per-region data:
  series  one row per month x line: `month` ('YYYY-MM-01'), `series`
          (`actual`, `trajectory`, `projection`), `value` (coverage %)
  target  one row: `target_pct`, `target_date` ('YYYY-MM-01'), `label`
"""

from __future__ import annotations

import functools
import json
from datetime import date
from typing import TYPE_CHECKING

import duckdb
import vl_convert

from flows import formats, views, words
from flows import labels as names
from flows.png import compact_png

if TYPE_CHECKING:
    import altair as alt

# d3's number and time conventions per language (formats.py: d3 has no Indonesian locale).
FORMAT_LOCALES, TIME_FORMAT_LOCALES = formats.D3_FORMAT_LOCALES, formats.D3_TIME_FORMAT_LOCALES
CHART_LOCALES = ("id", "en")


def _words(locale: str):
    """The charts' words (templates/chart_words_<locale>.j2); Indonesian for a language it does not know."""
    return words.module(f"chart_words_{locale if locale in CHART_LOCALES else 'id'}.j2")


# line and axis names per language, as the charts show them
LABELS = {locale: dict(_words(locale).trajectory) for locale in CHART_LOCALES}

SERIES = ("actual", "trajectory", "projection")
# Colour-blind safe, and told apart in greyscale by dash pattern as well.
SERIES_COLOURS = ("#1f4e79", "#7f7f7f", "#d95f02")
SERIES_DASHES = ([1, 0], [6, 3], [2, 2])
TARGET_COLOUR = "#1b7837"


def _labels(locale: str) -> dict[str, str]:
    return LABELS.get(locale, LABELS["id"])


# The Vega-Lite version the specs below are written for: Altair's (the test compares them with Altair's build).
VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v6.4.1.json"


def trajectory_spec(locale: str = "id", width: int = 460, height: int = 200, title: str | None = None) -> dict:
    """The Vega-Lite spec of the trajectory chart, reading the named datasets `series` and `target`.

    Written out as the dict Altair's `altair_trajectory_spec` makes (the same keys in the same order, so the
    same JSON): building it with Altair's classes took 20-200 ms a spec, and a run needs five."""
    labels = _labels(locale)
    series_label = "{" + ", ".join(f"'{key}': '{labels[key]}'" for key in SERIES) + "}[datum.series]"
    names = [labels[key] for key in SERIES]

    def month_axis() -> dict:
        return {
            "axis": {"format": "%b %Y", "labelAngle": 0},
            "field": "month",
            "timeUnit": "utcyearmonth",
            "title": labels["month"],
            "type": "temporal",
        }

    lines = {
        "data": {"name": "series"},
        "mark": {"type": "line", "strokeWidth": 2},
        "encoding": {
            "color": {
                "field": "line",
                "legend": {"direction": "horizontal", "orient": "bottom"},
                "scale": {"domain": names, "range": list(SERIES_COLOURS)},
                "title": None,
                "type": "nominal",
            },
            "strokeDash": {
                "field": "line",
                "legend": None,
                "scale": {"domain": list(names), "range": [list(dash) for dash in SERIES_DASHES]},
                "type": "nominal",
            },
            "tooltip": [
                {
                    "field": "month",
                    "format": "%B %Y",
                    "timeUnit": "utcyearmonth",
                    "title": labels["month"],
                    "type": "temporal",
                },
                {"field": "line", "title": labels["line"], "type": "nominal"},
                {"field": "value", "format": ",.2f", "title": labels["coverage"], "type": "quantitative"},
            ],
            "x": month_axis(),
            "y": {
                "field": "value",
                "scale": {"nice": True, "zero": False},
                "title": labels["coverage"],
                "type": "quantitative",
            },
        },
        "transform": [{"calculate": series_label, "as": "line"}],
    }
    # dots on the measured months only: the trajectory and projection are lines, not data
    actual_points = {
        "data": {"name": "series"},
        "mark": {"type": "point", "color": SERIES_COLOURS[0], "filled": True, "size": 14},
        "encoding": {"x": month_axis(), "y": {"field": "value", "type": "quantitative"}},
        "transform": [{"filter": "datum.series == 'actual'"}],
    }
    target_rule = {
        "data": {"name": "target"},
        "mark": {"type": "rule", "color": TARGET_COLOUR, "strokeWidth": 1.5},
        "encoding": {"y": {"field": "target_pct", "type": "quantitative"}},
    }
    target_text = {
        "data": {"name": "target"},
        "mark": {"type": "text", "align": "left", "color": TARGET_COLOUR, "dx": 4, "dy": -6, "fontWeight": "bold"},
        "encoding": {
            "text": {"field": "label", "type": "nominal"},
            "x": {"field": "start", "timeUnit": "utcyearmonth", "type": "temporal"},
            "y": {"field": "target_pct", "type": "quantitative"},
        },
    }
    spec = {
        "config": {"view": {"continuousWidth": 300, "continuousHeight": 300}},
        "layer": [lines, actual_points, target_rule, target_text],
        "height": height,
    }
    if title:
        spec["title"] = title
    spec.update(width=width)
    spec["$schema"] = VEGA_LITE_SCHEMA
    return spec


SEGMENT_COLOURS = ("#0072b2", "#56b4e9", "#009e73", "#e69f00", "#d55e00", "#cc79a7")  # Okabe-Ito


def segment_mix_spec(locale: str = "id", width: int = 420) -> dict:
    """Share of participants by segment, one 100% bar per scope, reading the named dataset `segments`
    (`scope`, `order`, `segment`, `participants`, `share_pct`). Written out as the dict Altair's
    `altair_segment_mix_spec` makes, as `trajectory_spec` is."""
    axes = _words(locale).segment_mix
    share, participants, segment = axes["share"], axes["participants"], axes["segment"]
    # the data's `segment` holds the names managers use (flows/labels.py), in the segments' fixed order
    segments = [names.name(names.SEGMENT_SHORT_NAMES, code, locale) for code in names.SEGMENTS]
    return {
        "config": {"view": {"continuousWidth": 300, "continuousHeight": 300}},
        "data": {"name": "segments"},
        "mark": {"type": "bar"},
        "encoding": {
            "color": {
                "field": "segment",
                "legend": {"columns": 6, "direction": "horizontal", "orient": "bottom"},
                "scale": {"domain": segments, "range": list(SEGMENT_COLOURS)},
                "title": segment,
                "type": "nominal",
            },
            "order": {"field": "segment_order", "type": "quantitative"},
            "tooltip": [
                {"field": "scope", "title": " ", "type": "nominal"},
                {"field": "segment", "title": segment, "type": "nominal"},
                {"field": "participants", "format": ",d", "title": participants, "type": "quantitative"},
                {"field": "share_pct", "format": ",.2f", "title": share, "type": "quantitative"},
            ],
            "x": {
                "field": "share_pct",
                "scale": {"domain": [0, 100]},
                "stack": "zero",
                "title": share,
                "type": "quantitative",
            },
            "y": {"field": "scope", "sort": {"field": "order", "op": "min"}, "title": None, "type": "nominal"},
        },
        "height": {"step": 18},
        "transform": [{"calculate": "indexof(" + json.dumps(segments) + ", datum.segment)", "as": "segment_order"}],
        "width": width,
        "$schema": VEGA_LITE_SCHEMA,
    }


def trajectory_chart(
    con: duckdb.DuckDBPyConnection, level: str, code: str, month: date | None = None, locale: str = "id"
) -> alt.LayerChart:
    """The trajectory chart of one scope as an Altair chart, its data embedded."""
    import altair as alt

    data = trajectory_datasets(con, level, month, [code], locale).get(code)
    if data is None:
        raise LookupError(f"no trajectory for {level} {code}" + (f" in {month:%Y-%m}" if month else ""))
    name = data.pop("name")
    spec = trajectory_spec(locale, title=name)
    spec["datasets"] = data
    return alt.LayerChart.from_dict(spec, validate=False)


@functools.cache
def _trajectory_template(locale: str) -> str:
    """The email chart's spec without a title, as JSON (each chart gets its own copy)."""
    return json.dumps(trajectory_spec(locale))


def trajectory_png(
    con: duckdb.DuckDBPyConnection,
    level: str,
    code: str,
    month: date | None = None,
    locale: str = "id",
    scale: float = 1.5,
) -> bytes:
    """The trajectory chart of one scope as PNG bytes, for emails (no browser, no network): on white, and
    re-encoded as RGB (vl-convert writes RGBA with a light filter: 1.5x scale 167 KB, re-encoded about 25 KB)."""
    data = trajectory_datasets(con, level, month, [code], locale).get(code)
    if data is None:
        raise LookupError(f"no trajectory for {level} {code}" + (f" in {month:%Y-%m}" if month else ""))
    return render_png(png_spec(data, locale), locale, scale)


def png_spec(data: dict, locale: str = "id") -> dict:
    """The email chart's spec for one scope's `trajectory_datasets` entry: the spec as trajectory_chart builds
    it, without the round trip through Altair's classes (which checks the spec against the Vega-Lite schema:
    about 0.25 s a chart) and with the template built once."""
    datasets = {key: value for key, value in data.items() if key != "name"}
    spec = {**json.loads(_trajectory_template(locale)), "title": data["name"], "datasets": datasets}
    spec.setdefault("config", {})["background"] = "white"
    return spec


def render_png(spec: dict, locale: str = "id", scale: float = 1.5) -> bytes:
    """A `png_spec` drawn by vl-convert and compacted (`compact_png`). Touches no database. (vl-convert holds the
    GIL while its engine starts, so the alerts draw their charts in a process of their own:
    flows/alerts/chart_process.py.)"""
    png = vl_convert.vegalite_to_png(
        spec,
        scale=scale,
        format_locale=FORMAT_LOCALES.get(locale, FORMAT_LOCALES["id"]),
        time_format_locale=TIME_FORMAT_LOCALES.get(locale, TIME_FORMAT_LOCALES["id"]),
        allowed_base_urls=[],
    )
    return compact_png(png)


# The one-point chart that starts vl-convert's engine in alerts' chart process (`ChartProcess.warm_up`)
WARM_UP_MONTH = "2000-01-01"
WARM_UP_DATA = {
    "name": "",
    "series": [{"month": WARM_UP_MONTH, "series": "actual", "value": 1.0}],
    "target": [{"target_pct": 1.0, "target_date": WARM_UP_MONTH, "start": WARM_UP_MONTH, "label": ""}],
}


def trajectory_svg(spec: dict, locale: str = "id") -> str:
    """Any Vega-Lite spec (with its data) as SVG text, in the locale's number and date format."""
    return vl_convert.vegalite_to_svg(
        spec,
        format_locale=FORMAT_LOCALES.get(locale, FORMAT_LOCALES["id"]),
        time_format_locale=TIME_FORMAT_LOCALES.get(locale, TIME_FORMAT_LOCALES["id"]),
        allowed_base_urls=[],
    )


def trajectory_datasets(
    con: duckdb.DuckDBPyConnection,
    level: str,
    month: date | None = None,
    codes: list[str] | None = None,
    locale: str = "id",
) -> dict[str, dict]:
    """code -> {'name', 'series': [...], 'target': [...]} for every scope of `level` (or only `codes`)."""
    if month is None:
        month = con.execute("select max(month) from mart.trajectory where level = ?", [level]).fetchone()[0]
    # one query for every scope of the level (sql/views/trajectory_series.sql): the report draws up to 514 regions
    rows = con.execute(
        "select code, name, series, target_pct, target_month, start_month "
        f"from {views.relation(con, 'trajectory_series')} "
        "where level = $level and month = $month and ($codes is null or list_contains($codes, code)) order by code",
        {"level": level, "month": month, "codes": codes},
    ).fetchall()
    return {row[0]: _dataset(*row[1:], locale=locale) for row in rows}


def latest_trajectories(
    con: duckdb.DuckDBPyConnection,
    scopes: list[tuple[str, str]],
    locales: tuple[str, ...] = CHART_LOCALES,
    marts: str = "mart",
) -> dict[tuple[str, str, str], dict]:
    """(level, code, locale) -> the scope's `trajectory_datasets` entry in its level's latest month, for every
    (level, code) of `scopes` and each of `locales`, read in one query (the alerts' emails ask for a few scopes
    of several levels). `marts="build"`: the same from the marts built and not yet published."""
    if not scopes:
        return {}
    relation = views.relation(con, "trajectory_series") if marts == "mart" else views.over(marts, "trajectory_series")
    rows = con.execute(
        "select level, code, name, series, target_pct, target_month, start_month "
        f"from {relation} as scope_series "
        "where list_contains($keys, level || ':' || code) and month = ("
        f"select max(month) from {marts}.trajectory as latest where latest.level = scope_series.level)",
        {"keys": sorted({f"{level}:{code}" for level, code in scopes})},
    ).fetchall()
    return {
        (level, code, locale): _dataset(*values, locale=locale) for level, code, *values in rows for locale in locales
    }


def _dataset(name, series, target_pct, target_month, start_month, locale: str) -> dict:
    target_word = _labels(locale)["target"]
    number = FORMAT_LOCALES.get(locale, FORMAT_LOCALES["id"])["decimal"]
    label = f"{target_word} {target_pct:g}%".replace(".", number) + f" ({target_month[:7]})"
    return {
        "name": name,
        "series": series,
        "target": [{"target_pct": target_pct, "target_date": target_month, "start": start_month, "label": label}],
    }
