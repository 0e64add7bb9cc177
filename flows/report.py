"""The managers' report: one static HTML page in $JKN_HOME/report/, read from the published marts."""

from __future__ import annotations

from pathlib import Path

import duckdb
from jinja2 import Environment, PackageLoader, select_autoescape

from flows.settings import Settings

STATUS_ORDER = ("CRITICAL", "BEHIND", "AT_RISK", "ON_TRACK", "ACHIEVED")


def _environment() -> Environment:
    return Environment(loader=PackageLoader("flows", "templates"), autoescape=select_autoescape())


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params=()) -> list[dict]:
    cursor = con.execute(sql, list(params))
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def write(con: duckdb.DuckDBPyConnection, settings: Settings) -> Path:
    month = con.execute("select max(month) from mart.trajectory").fetchone()[0]
    headline = _rows(
        con,
        "select level, code, name, coverage_pct, active_rate_pct, participants, population, is_uhc "
        "from mart.coverage where month = ? and level <> 'region' order by level = 'national' desc, level, code",
        [month],
    )
    regions = _rows(
        con,
        "select code, name, actual_pct, expected_pct, gap_pp, people_needed, projected_target_month, status "
        "from mart.trajectory where month = ? and level = 'region' order by gap_pp desc",
        [month],
    )
    html = _environment().get_template("report.html.j2").render(
        month=month.strftime("%Y-%m") if month else None, headline=headline, regions=regions
    )
    settings.report_dir.mkdir(parents=True, exist_ok=True)
    path = settings.report_dir / "index.html"
    path.write_text(html, encoding="utf-8")
    return path
