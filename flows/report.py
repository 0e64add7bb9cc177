"""The managers' report: one static HTML page per language in $JKN_HOME/report/.

Reads only the published marts (`mart.*`), the run's records (`ops.*`) and the
reference seeds (`ref.*`), never raw extracts. The page opens from disk with no
network: the charting library (Vega, via vega-embed, from vl-convert) and the
data are inlined. Tables are rendered here, already formatted the local way;
charts are drawn in the browser, only when they scroll into view, so a national
report over 514 regions opens at once and stays light. One small script filters
everything to a province, a branch or a region name.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from datetime import date, datetime
from importlib.metadata import version
from pathlib import Path

import duckdb
import vl_convert
from jinja2 import Environment, PackageLoader, pass_context, select_autoescape
from markupsafe import Markup, escape

from flows import actions, charts, labels, report_views, words
from flows.formats import EMPTY, month_name, number, percent, points, rupiah, timestamp

# What the page shows is read by report_data; COMPLIANCE_COLUMNS, WORKLIST_COLUMNS stay importable from here.
from flows.report_data import COMPLIANCE_COLUMNS, SEGMENTS, WORKLIST_COLUMNS, WORKLIST_ROWS_PER_REGION, collect  # noqa: F401
from flows.settings import Settings

LOCALES = ("id", "en")
STATUS_ORDER = ("CRITICAL", "BEHIND", "AT_RISK", "ON_TRACK", "ACHIEVED")
# A shape per status as well as a colour, so the status reads in greyscale and for colour-blind readers.
STATUS_ICONS = {"CRITICAL": "✖", "BEHIND": "▼", "AT_RISK": "▲", "ON_TRACK": "●", "ACHIEVED": "✔"}


def _words(locale: str):
    """The report's words in one language, from templates/report_words_<locale>.j2 (as alerts reads alert_words_*),
    compiled once per process (the worklist export reads its headers from the same module)."""
    return words.module(f"report_words_{locale}.j2")


# The page's words; "this month"'s title and its "nothing to do" are the digests' own (templates/this_month_*.j2).
TEXT = {
    locale: {**_words(locale).text, "this_month": actions.title(locale), "nothing_to_do": actions.nothing(locale)}
    for locale in LOCALES
}
COLUMN_LABELS = {locale: _words(locale).column_labels for locale in LOCALES}
# Codes and phrases the worklist model writes, in the report's language (a code without one is shown as is).
VALUE_LABELS = {locale: _words(locale).value_labels for locale in LOCALES}


# ---------------------------------------------------------------- formatting


@functools.cache
def _number_format(column: str) -> str:
    """How a number in `column` is shown, by what the name says it holds (asked once per column name:
    the page formats ~100,000 worklist cells a language)."""
    if column.endswith("_pct"):
        return "percent"
    if any(word in column for word in ("contribution", "wage", "_idr", "unpaid")):
        return "rupiah"
    if column in {"rank", "priority"} or column.startswith(("months", "workers", "employers")):
        return "whole"
    return "number"


def cell(value, column: str, locale: str) -> str:
    """A worklist or compliance value, formatted by what its column name says it holds."""
    if value is None:
        return EMPTY
    if isinstance(value, bool):
        return TEXT[locale]["yes"] if value else TEXT[locale]["no"]
    if isinstance(value, str):
        if column.endswith("_since") and len(value) == 7:
            return month_name(value, locale)
        labels = VALUE_LABELS.get(locale, {})
        if ", " not in value:  # one code or phrase (most cells): no list to split
            return labels.get(value, value)
        return ", ".join(labels.get(part, part) for part in value.split(", "))
    if isinstance(value, date | datetime):
        return month_name(value, locale)
    if isinstance(value, int | float) or hasattr(value, "as_integer_ratio"):
        shown = _number_format(column)
        if shown == "percent":
            return percent(value, locale)
        if shown == "rupiah":
            return rupiah(value, locale)
        if shown == "whole" or isinstance(value, int):
            return number(value, locale)
        return number(value, locale, 2)
    return str(value)


def worklist_rows(rows: list[dict], columns: list[str], locale: str, memo: dict | None = None) -> Markup:
    """The rows of one worklist table as HTML, as the template's loop wrote them cell by cell (about 13,000
    rows a language: a loop of Jinja filters took ~4 times as long). Text cells carry class="text".
    `memo` (one per page) keeps each column's cells already written: steps, reasons, months and small
    counts repeat across the page's thousands of rows."""
    memo = {} if memo is None else memo
    opening = {
        column: (f'<td data-field="{escape(column)}" class="text">', f'<td data-field="{escape(column)}">')
        for column in columns
    }
    lines = []
    for row in rows:
        cells = []
        for column in columns:
            value = row[column]
            key = (column, value.__class__, value)  # the class too: True == 1 == Decimal(1) as keys
            try:
                written = memo.get(key)
            except TypeError:  # an unhashable value: written, not kept
                key, written = None, None
            if written is None:
                written = (
                    f"{opening[column][0 if isinstance(value, str) else 1]}{escape(cell(value, column, locale))}</td>"
                )
                if key is not None:
                    memo[key] = written
            cells.append(written)
        lines.append(f'<tr data-code="{escape(row["region_code"])}">\n{"".join(cells)}      </tr>')
    return Markup("\n      ".join(lines))  # the template indents the first row and ends the last line


def column_label(column: str, locale: str) -> str:
    return COLUMN_LABELS[locale].get(column, column.replace("_", " "))


# ---------------------------------------------------------------- rendering


@functools.cache
def _chart_sources() -> dict:
    """The chart templates as Vega-Lite, per language (the same Altair specs as the email PNG)."""
    return {
        locale: {
            "trajectory": charts.trajectory_spec(locale, width=290, height=150),
            "trajectory_wide": charts.trajectory_spec(locale, width=760, height=240),
            "segments": charts.segment_mix_spec(locale),
        }
        for locale in LOCALES
    }


_ASSETS: dict[str, dict] = {}


def assets(cache_dir: Path | None = None) -> dict:
    """The script to inline (vega-embed with Vega and Vega-Lite, ~0.9 MB) and the chart templates compiled
    to Vega, so the browser only fills in each chart's data.

    Making them starts vl-convert's JavaScript engine (~4 s), so they are kept per process and, given a
    folder, on disk, keyed by the vl-convert version and the chart specs: a changed chart is rebuilt.
    """
    sources = _chart_sources()
    key = hashlib.sha256(
        json.dumps([version("vl-convert-python"), sources], sort_keys=True).encode("utf-8")
    ).hexdigest()[:16]
    if key in _ASSETS:
        return _ASSETS[key]
    path = cache_dir / f"report-assets-{key}.json" if cache_dir else None
    if path and path.exists():
        try:
            _ASSETS[key] = json.loads(path.read_text(encoding="utf-8"))
            return _ASSETS[key]
        except (OSError, ValueError):
            pass  # a damaged cache is rebuilt below
    made = {
        "bundle": vl_convert.javascript_bundle(),
        "specs": {
            locale: {name: vl_convert.vegalite_to_vega(spec) for name, spec in specs.items()}
            for locale, specs in sources.items()
        },
    }
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial")  # two processes may build it at once
        partial.write_text(json.dumps(made), encoding="utf-8")
        partial.replace(path)
    _ASSETS[key] = made
    return made


def assets_cache_dir(settings) -> Path:
    """Where the compiled chart assets are kept: the user's cache folder (`$XDG_CACHE_HOME/jkn`, else
    `~/.cache/jkn`), so that they are made once per release and machine rather than once per
    `$JKN_HOME` (a benchmark, a test or a new home would otherwise pay the ~4 s each time). They hold
    vl-convert's script and the chart specs, nothing of the data. `$JKN_HOME/cache` where that folder
    cannot be written."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(base) / "jkn"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if os.access(folder, os.W_OK):
            return folder
    except OSError:
        pass
    return settings.home / "cache"


@functools.cache
def _static(name: str) -> str:
    """A stylesheet or script inlined as is (read raw: no template syntax is interpreted in it)."""
    return (Path(__file__).parent / "templates" / name).read_text(encoding="utf-8")


def _localised(function):
    """A Jinja filter that formats in the page's language (the template variable `locale`)."""

    @pass_context
    def localised_filter(context, value, *args):
        return function(value, *args, locale=context["locale"])

    return localised_filter


@functools.cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("flows", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=words.jinja_bytecode_cache("report"),  # the page's templates compiled once per release
        auto_reload=False,  # the package's templates do not change under a process: no stat per {% include %}
    )
    environment.filters.update(
        number=_localised(lambda value, digits=0, locale="id": number(value, locale, digits)),
        percent=_localised(lambda value, digits=2, locale="id": percent(value, locale, digits)),
        points=_localised(points),
        rupiah=_localised(rupiah),
        month_name=_localised(month_name),
        timestamp=_localised(timestamp),
        cell=_localised(cell),
    )
    return environment


def _script_json(value) -> str:
    """JSON safe to put inside <script>: no '</script>' or '<!--' can end it early."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).replace("<", "\\u003c")


def _browser_data(data: dict, locale: str, specs: dict) -> dict:
    """What the page's script needs: the chart templates, each scope's chart data and the scope tree."""
    names = {f"{row['level']}:{row['code']}": row["name"] for row in (data.get("provinces") or [])}
    names.update({f"{row['level']}:{row['code']}": row["name"] for row in (data.get("branches") or [])})
    names.update({f"region:{row['code']}": row["name"] for row in (data.get("regions") or [])})
    if data.get("national"):
        names["national:ID"] = data["national"]["name"]
    segments: dict[str, list] = {}
    for row in data.get("segments") or []:
        segments.setdefault(f"{row['level']}:{row['code']}", []).append(
            [
                labels.name(labels.SEGMENT_SHORT_NAMES, row["segment"], locale),
                row["participants"],
                round(row["share_pct"] or 0, 3),
            ]
        )
    return {
        "locale": locale,
        "formatLocale": charts.FORMAT_LOCALES[locale],
        "timeFormatLocale": charts.TIME_FORMAT_LOCALES[locale],
        "specs": specs,
        "trajectories": data.get("trajectories") or {},
        "segments": segments,
        "names": names,
        "regions": [
            {"code": row["code"], "province": row["province_code"], "branch": row["branch_office"]}
            for row in data.get("regions") or []
        ],
        "provinces": [row["code"] for row in data.get("provinces") or []],
        "text": {key: TEXT[locale][key] for key in ("national", "showing", "of", "regions_word")},
        "limits": {
            "checks": 1,
            "region": actions.REGIONS_PER_SCOPE,
            "employer": actions.EMPLOYERS_PER_SCOPE,
            "groups": report_views.WORKLIST_GROUPS_OPEN,
        },
    }


def render(data: dict, locale: str, other_file: str | None = None, cache_dir: Path | None = None) -> str:
    """The report page in one language."""
    script = assets(cache_dir) if data["month"] else None
    failed = [row for row in data["dq"] if row["success"] is not True]
    memo: dict = {}  # the worklist's cells already written on this page (worklist_rows)
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            locale=locale,
            t=TEXT[locale],
            data=data,
            status_order=STATUS_ORDER,
            status_icons=STATUS_ICONS,
            column_label=lambda column: column_label(column, locale),
            worklist_rows=lambda rows, columns: worklist_rows(rows, columns, locale, memo),
            views=report_views,
            worklist_rows_per_region=WORKLIST_ROWS_PER_REGION,
            dq_failed=failed,
            other_file=other_file,
            browser_data=_script_json(_browser_data(data, locale, script["specs"][locale])) if script else None,
            vega_bundle=script["bundle"].replace("</script", "<\\/script") if script else None,
            report_css=_static("report.css"),
            report_js=_static("report.js"),
        )
    )


def file_name(locale: str, primary: str) -> str:
    return "index.html" if locale == primary else f"index.{locale}.html"


def write(
    con: duckdb.DuckDBPyConnection, settings: Settings, locale: str | None = None, month: date | None = None
) -> Path:
    """Write the report in every language (the primary one, JKN_LOCALE by default, as index.html)."""
    primary = locale or settings.locale
    data = collect(con, month, settings.report_dir)
    settings.report_dir.mkdir(parents=True, exist_ok=True)
    for language in LOCALES:
        other = next(name for name in LOCALES if name != language)
        html = render(data, language, other_file=file_name(other, primary), cache_dir=assets_cache_dir(settings))
        # write then rename, so a reader never opens a half-written page
        target = settings.report_dir / file_name(language, primary)
        partial = target.with_suffix(".partial")
        partial.write_text(html, encoding="utf-8")
        partial.replace(target)
    return settings.report_dir / "index.html"
