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
from datetime import UTC, date, datetime
from importlib.metadata import version
from pathlib import Path

import duckdb
import vl_convert
from jinja2 import Environment, PackageLoader, pass_context, select_autoescape

from flows import actions, charts, database, labels, missing_regions, report_views
from flows.errors import ConfigError
from flows.formats import EMPTY, month_name, number, percent, points, rupiah, timestamp
from flows.settings import Settings

LOCALES = ("id", "en")
STATUS_ORDER = ("CRITICAL", "BEHIND", "AT_RISK", "ON_TRACK", "ACHIEVED")
# A shape per status as well as a colour, so the status reads in greyscale and for colour-blind readers.
STATUS_ICONS = {"CRITICAL": "✖", "BEHIND": "▼", "AT_RISK": "▲", "ON_TRACK": "●", "ACHIEVED": "✔"}
SEGMENTS = ("PBI_APBN", "PBI_APBD", "PPU_PN", "PPU_BU", "PBPU", "BP")
# Enough for a manager to act on; the whole list stays in mart.enforcement_worklist.
WORKLIST_ROWS_PER_REGION = 10


# The columns shown, in this order, of those the compliance marts have (CONTRACT.md section 3);
# the metrics model owns the tables, so a column it drops is simply not shown.
COMPLIANCE_COLUMNS = (
    "employers_reported",
    "employers_registered",
    "employers_not_registered",
    "workers_reported",
    "workers_registered",
    "unregistered_workers",
    "worker_registration_pct",
    "underreporting_employers",
    "arrears_employers",
    "unpaid_contributions_idr",
    "payment_ratio_pct",
    "estimated_contributions_lost_idr",
)
WORKLIST_COLUMNS = (
    "priority",
    "name",
    "business_id",
    "unregistered_workers",
    "unpaid_contributions_idr",
    "estimated_contributions_lost_idr",
    "months_non_compliant",
    "reasons",
    "next_sanction_step",
)


def _words(locale: str):
    """The report's words in one language, from templates/report_words_<locale>.j2 (as alerts reads alert_words_*)."""
    environment = Environment(loader=PackageLoader("flows", "templates"))
    return environment.get_template(f"report_words_{locale}.j2").module


TEXT = {locale: _words(locale).text for locale in LOCALES}
COLUMN_LABELS = {locale: _words(locale).column_labels for locale in LOCALES}
# Codes and phrases the worklist model writes, in the report's language (a code without one is shown as is).
VALUE_LABELS = {locale: _words(locale).value_labels for locale in LOCALES}


# ---------------------------------------------------------------- formatting


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
        return ", ".join(labels.get(part, part) for part in value.split(", "))
    if isinstance(value, date | datetime):
        return month_name(value, locale)
    if isinstance(value, int | float) or hasattr(value, "as_integer_ratio"):
        if column.endswith("_pct"):
            return percent(value, locale)
        if any(word in column for word in ("contribution", "wage", "_idr", "unpaid")):
            return rupiah(value, locale)
        whole = column in {"rank", "priority"} or column.startswith(("months", "workers", "employers"))
        if isinstance(value, int) or whole:
            return number(value, locale)
        return number(value, locale, 2)
    return str(value)


def column_label(column: str, locale: str) -> str:
    return COLUMN_LABELS[locale].get(column, column.replace("_", " "))


# ---------------------------------------------------------------- reading the marts


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params=()) -> list[dict]:
    cursor = con.execute(sql, params)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    schema, name = table.split(".")
    return [
        row[0]
        for row in con.execute(
            "select column_name from duckdb_columns() where database_name = current_database() "
            "and schema_name = ? and table_name = ? order by column_index",
            [schema, name],
        ).fetchall()
    ]


SCOPES_SQL = """
with regions as (
    select region_code, province_code, nullif(branch_office, '') as branch_office from ref.regions
),
uhc as (
    select
        grouping(regions.province_code) as no_province,
        grouping(regions.branch_office) as no_branch,
        regions.province_code,
        regions.branch_office,
        count(*) as regions,
        count(*) filter (where coverage.is_uhc) as uhc_regions
    from mart.coverage as coverage
    inner join regions on coverage.code = regions.region_code
    where coverage.month = $month and coverage.level = 'region'
    group by grouping sets ((regions.province_code), (regions.branch_office), ())
),
branch_provinces as (
    select branch_office, string_agg(distinct province_code, ' ' order by province_code) as provinces
    from regions where branch_office is not null group by branch_office
)
select
    coverage.level,
    coverage.code,
    coverage.name,
    case coverage.level
        when 'province' then coverage.code
        when 'branch' then branch_provinces.provinces
    end as provinces,
    coverage.population,
    coverage.participants,
    coverage.active_participants,
    coverage.coverage_pct,
    coverage.active_rate_pct,
    coverage.is_uhc,
    uhc.regions,
    uhc.uhc_regions,
    trajectory.expected_pct,
    trajectory.gap_pp,
    trajectory.target_pct,
    trajectory.target_date,
    trajectory.projected_target_month,
    trajectory.status
from mart.coverage as coverage
left join mart.trajectory as trajectory
    on coverage.month = trajectory.month and coverage.level = trajectory.level and coverage.code = trajectory.code
left join branch_provinces on coverage.level = 'branch' and coverage.code = branch_provinces.branch_office
left join uhc
    on (coverage.level = 'national' and uhc.no_province = 1 and uhc.no_branch = 1)
    or (coverage.level = 'province' and uhc.no_province = 0 and uhc.province_code = coverage.code)
    or (coverage.level = 'branch' and uhc.no_branch = 0 and uhc.branch_office = coverage.code)
where coverage.month = $month and coverage.level <> 'region'
order by coverage.level, coverage.code
"""

REGIONS_SQL = """
select
    coverage.code,
    coverage.name,
    regions.province_code,
    regions.province_name,
    nullif(regions.branch_office, '') as branch_office,
    coverage.population,
    coverage.participants,
    coverage.active_participants,
    coverage.coverage_pct,
    coverage.active_rate_pct,
    coverage.is_uhc,
    trajectory.expected_pct,
    trajectory.gap_pp,
    trajectory.people_needed,
    trajectory.target_pct,
    trajectory.target_date,
    trajectory.projected_target_month,
    trajectory.status
from mart.coverage as coverage
left join mart.trajectory as trajectory
    on coverage.month = trajectory.month and coverage.level = trajectory.level and coverage.code = trajectory.code
left join ref.regions as regions on coverage.code = regions.region_code
where coverage.month = $month and coverage.level = 'region'
order by trajectory.gap_pp desc nulls last, coverage.code
"""

SEGMENTS_SQL = """
select level, code, segment, participants, active_participants, share_pct
from mart.coverage_by_segment
where month = $month
order by level, code, array_position($segments, segment), segment
"""

# Level rows carry the province(s) and branch they belong to, so one filter serves every table.
COMPLIANCE_SQL = """
with regions as (
    select region_code, province_code, nullif(branch_office, '') as branch_office from ref.regions
),
branch_provinces as (
    select branch_office, string_agg(distinct province_code, ' ' order by province_code) as provinces
    from regions where branch_office is not null group by branch_office
)
select
    compliance.*,
    coalesce(names.name, compliance.code) as scope_name,
    case compliance.level
        when 'region' then regions.province_code
        when 'province' then compliance.code
        when 'branch' then branch_provinces.provinces
    end as provinces,
    case compliance.level
        when 'region' then regions.branch_office
        when 'branch' then compliance.code
    end as branch
from mart.compliance_by_region as compliance
left join regions on compliance.level = 'region' and compliance.code = regions.region_code
left join branch_provinces on compliance.level = 'branch' and compliance.code = branch_provinces.branch_office
left join (select distinct level, code, name from mart.coverage) as names
    on compliance.level = names.level and compliance.code = names.code
where compliance.month = (select max(month) from mart.compliance_by_region)
order by
    array_position(['national', 'province', 'branch', 'region'], compliance.level),
    compliance.code
"""


def _worklist(con: duckdb.DuckDBPyConnection, columns: list[str]) -> tuple[list[str], list[dict], date | None]:
    """The latest month's worklist: the first rows of each region, in the model's own priority order."""
    if "month" not in columns or "region_code" not in columns:
        return [], [], None
    order = "priority" if "priority" in columns else "region_code"
    rows = _rows(
        con,
        f"""
        select worklist.*, regions.province_code as provinces, nullif(regions.branch_office, '') as branch,
            regions.region_name as scope_name
        from mart.enforcement_worklist as worklist
        left join ref.regions as regions on worklist.region_code = regions.region_code
        where worklist.month = (select max(month) from mart.enforcement_worklist)
        qualify row_number() over (partition by worklist.region_code order by worklist.{order}) <= $limit
        order by worklist.region_code, worklist.{order}
        """,
        {"limit": WORKLIST_ROWS_PER_REGION},
    )
    return [name for name in WORKLIST_COLUMNS if name in columns], rows, rows[0]["month"] if rows else None


def collect(con: duckdb.DuckDBPyConnection, month: date | None = None, report_dir: Path | None = None) -> dict:
    """Everything the report shows, language-neutral, read from mart.*, ops.* and ref.* (worklist files
    already exported into `report_dir` are linked)."""
    tables = database.existing_tables(con)
    data: dict = {"month": None, "generated_at": datetime.now(UTC)}
    have_marts = {"mart.coverage", "mart.trajectory"} <= tables
    if month is not None and not (
        have_marts and con.execute("select count(*) from mart.coverage where month = ?", [month]).fetchone()[0]
    ):
        raise ConfigError(f"no published coverage for {month:%Y-%m}")
    if have_marts:
        data["month"] = month or con.execute("select max(month) from mart.coverage").fetchone()[0]
    if data["month"] is not None:
        params = {"month": data["month"]}
        scopes = _rows(con, SCOPES_SQL, params)
        data["national"] = next((row for row in scopes if row["level"] == "national"), None)
        data["provinces"] = [row for row in scopes if row["level"] == "province"]
        data["branches"] = [row for row in scopes if row["level"] == "branch"]
        data["regions"] = _rows(con, REGIONS_SQL, params)
        missing_regions.annotate_scopes(con, data["month"], scopes)
        data["not_reported"] = missing_regions.not_reported(con, data["month"])
        data["trajectories"] = {
            f"{level}:{code}": {"series": value["series"], "target": value["target"]}
            for level in ("national", "province", "branch", "region")
            for code, value in charts.trajectory_datasets(con, level, data["month"]).items()
        }
        data["segments"] = (
            _rows(con, SEGMENTS_SQL, {**params, "segments": list(SEGMENTS)})
            if "mart.coverage_by_segment" in tables
            else []
        )
    data["compliance"], data["compliance_columns"], data["compliance_month"] = [], [], None
    if "mart.compliance_by_region" in tables:
        data["compliance"] = _rows(con, COMPLIANCE_SQL)
        present = set(_columns(con, "mart.compliance_by_region"))
        data["compliance_columns"] = [name for name in COMPLIANCE_COLUMNS if name in present]
        data["compliance_month"] = data["compliance"][0]["month"] if data["compliance"] else None
    data["worklist_columns"], data["worklist"], data["worklist_month"] = [], [], None
    if "mart.enforcement_worklist" in tables:
        data["worklist_columns"], data["worklist"], data["worklist_month"] = _worklist(
            con, _columns(con, "mart.enforcement_worklist")
        )
    data["dq"] = _rows(
        con,
        """
        -- the run that published the marts shown (a `jkn check` of staged files since is not it);
        -- marts published by `jkn metrics` alone have no ops.runs row: then the newest checks
        with latest as (select run_id, max(checked_at) as checked_at from ops.dq_results
                        group by run_id
                        order by run_id in (select run_id from ops.runs where status = 'completed') desc,
                                 checked_at desc
                        limit 1)
        select results.run_id, latest.checked_at, results.suite, results.expectation, results.severity,
            results.success, results.observed
        from ops.dq_results as results
        inner join latest on results.run_id = latest.run_id
        order by results.success, results.severity, results.suite, results.expectation
        """,
    )
    data["loads"] = _rows(
        con,
        """
        select file_name, kind, period, rows_loaded, rows_rejected, status, message, loaded_at
        from ops.load_log
        order by status <> 'published', loaded_at desc, file_name
        """,
    )
    data.update(report_views.collect(con, data, report_dir))
    return data


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
    )
    environment.filters.update(
        number=_localised(lambda value, digits=0, locale="id": number(value, locale, digits)),
        percent=_localised(lambda value, digits=2, locale="id": percent(value, locale, digits)),
        points=_localised(points),
        rupiah=_localised(rupiah),
        month_name=_localised(month_name),
        timestamp=_localised(timestamp),
        cell=_localised(lambda value, column, locale="id": cell(value, column, locale)),
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
    text = {**TEXT[locale], **report_views.TEXT[locale], **missing_regions.TEXT[locale]}
    script = assets(cache_dir) if data["month"] else None
    failed = [row for row in data["dq"] if row["success"] is not True]
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            locale=locale,
            t=text,
            data=data,
            status_order=STATUS_ORDER,
            status_icons=STATUS_ICONS,
            column_label=lambda column: column_label(column, locale),
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
        html = render(data, language, other_file=file_name(other, primary), cache_dir=settings.home / "cache")
        # write then rename, so a reader never opens a half-written page
        target = settings.report_dir / file_name(language, primary)
        partial = target.with_suffix(".partial")
        partial.write_text(html, encoding="utf-8")
        partial.replace(target)
    return settings.report_dir / "index.html"
