"""Great Expectations suites from `expectations/`, pushed down to DuckDB as SQL.

Each suite file is GX's own JSON suite format; its name is the relation it
checks (`staging.region_counts`, `build.coverage`, ...). Expectations carry a
GX severity: a failed `critical` one stops the batch, `warning` ones are
reported and published.

GX 1.24.1 with duckdb-engine loses every metric result (GX issues #10738,
#11579): GX fetches the cursor after its connection block closed, and closing
rolls the shared DuckDB connection back. GX already keeps one persisted
connection for sqlite for a related reason; `_persist_duckdb_connection`
adds duckdb to that list. tests/test_checks.py fails if observed values come
back empty again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from flows import database
from flows.database import duckdb_config, utc_now
from flows.errors import DataQualityError
from flows.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"


@dataclass
class CheckResult:
    suite: str
    expectation: str
    severity: str
    success: bool
    observed: str
    details: str = ""


@dataclass
class CheckReport:
    run_id: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def critical_failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "critical"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity != "critical"]

    @property
    def passed(self) -> bool:
        return not self.critical_failures


def suite_files(prefix: str) -> list[Path]:
    """Suites whose relation starts with `prefix` ('staging.' or 'build.')."""
    return sorted(EXPECTATIONS_DIR.glob(f"{prefix}*.json"))


def _persist_duckdb_connection() -> None:
    import great_expectations.execution_engine.sqlalchemy_execution_engine as engine_module

    class _DuckDBDialect:
        value = "duckdb"

        def __eq__(self, other: object) -> bool:
            return str(getattr(other, "value", other)).lower() == "duckdb"

        def __hash__(self) -> int:
            return hash("duckdb")

    dialects = engine_module._PERSISTED_CONNECTION_DIALECTS
    if not any(dialect == "duckdb" for dialect in dialects):
        engine_module._PERSISTED_CONNECTION_DIALECTS = (*dialects, _DuckDBDialect())


def _describe(config) -> str:
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id",)}
    label = config.type
    if "column" in kwargs:
        label += f"({kwargs['column']})"
    elif "column_list" in kwargs:
        label += f"({', '.join(kwargs['column_list'])})"
    description = (config.meta or {}).get("description")
    return f"{label}: {description}" if description else label


def _observed(result) -> str:
    data = result.result or {}
    if "observed_value" in data:
        return json.dumps(data["observed_value"], default=str)
    if "unexpected_count" in data:
        observed = {"unexpected_count": data.get("unexpected_count"), "element_count": data.get("element_count")}
        if data.get("partial_unexpected_list"):
            observed["examples"] = data["partial_unexpected_list"][:5]
        return json.dumps(observed, default=str)
    if result.exception_info and result.exception_info.get("raised_exception"):
        return "error: " + str(result.exception_info.get("exception_message", ""))[:500]
    for info in (result.exception_info or {}).values():
        if isinstance(info, dict) and info.get("raised_exception"):
            return "error: " + str(info.get("exception_message", ""))[:500]
    return json.dumps(data, default=str)[:500]


def _close(datasource) -> None:
    """Close every connection GX opened. GX keeps the ephemeral context (and so
    the datasource's engines) alive after validation; an open connection would
    stop the next stage from opening the file with its own settings."""
    execution_engine = datasource._execution_engine
    if execution_engine is not None:
        if execution_engine._connection is not None:
            execution_engine._connection.close()
            execution_engine._connection = None
        execution_engine.engine.dispose()
    if datasource._engine is not None:
        datasource._engine.dispose()


def run_suites(settings: Settings, suites: list[Path], run_id: str) -> CheckReport:
    """Validate each suite against its relation in the DuckDB file. No other
    connection to the file may be open in this process while this runs."""
    import great_expectations as gx

    _persist_duckdb_connection()
    report = CheckReport(run_id)
    if not suites:
        return report
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    datasource = context.data_sources.add_sql(
        name="jkn",
        connection_string=f"duckdb:///{settings.db_path.resolve()}",
        kwargs={"connect_args": {"config": duckdb_config(settings)}},
    )
    try:
        for path in suites:
            definition = json.loads(path.read_text(encoding="utf-8"))
            definition.pop("id", None)
            relation = definition["name"]
            suite = context.suites.add(gx.ExpectationSuite(**definition))
            asset = datasource.add_query_asset(name=relation, query=f"select * from {relation}")
            batch = asset.add_batch_definition_whole_table("all").get_batch()
            validation = batch.validate(suite, result_format="SUMMARY")
            for result in validation.results:
                config = result.expectation_config
                severity = getattr(config.severity, "value", str(config.severity or "critical"))
                report.results.append(
                    CheckResult(
                        suite=relation,
                        expectation=_describe(config),
                        severity=severity,
                        success=bool(result.success),
                        observed=_observed(result),
                    )
                )
    finally:
        _close(datasource)
    for result in report.results:
        if not result.success:
            level = logging.ERROR if result.severity == "critical" else logging.WARNING
            log.log(level, "check failed [%s] %s %s: observed %s", result.severity, result.suite,
                    result.expectation, result.observed)
    return report


def record(con, report: CheckReport) -> None:
    """Store the results in ops.dq_results."""
    now = utc_now()
    rows = [
        (report.run_id, r.suite, r.expectation, r.severity, r.success, r.observed, r.details, now)
        for r in report.results
    ]
    if rows:
        con.executemany("insert into ops.dq_results values (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def quarantine_staged(con, reason: str) -> int:
    """Take the staged files out of the staging views after a failed critical check."""
    staged = con.execute("select count(*) from ops.load_log where status = 'staged'").fetchone()[0]
    con.execute(
        "update ops.load_log set status = 'quarantined', message = ? where status = 'staged'", [reason]
    )
    return staged


def gate(settings: Settings, suites: list[Path], run_id: str) -> dict:
    """Run suites and store results; on a critical failure quarantine the batch and
    raise DataQualityError (exit 3), so nothing from it is published."""
    report = run_suites(settings, suites, run_id)
    con = database.connect(settings)
    try:
        record(con, report)
        if not report.passed:
            failures = [f"{r.suite} {r.expectation}: observed {r.observed}" for r in report.critical_failures]
            quarantine_staged(con, "failed critical checks: " + "; ".join(failures)[:2000])
            raise DataQualityError(
                "critical data-quality checks failed; nothing from this batch was published:\n  "
                + "\n  ".join(failures),
                failures=[r.__dict__ for r in report.critical_failures],
            )
    finally:
        con.close()
    return {"checked": len(report.results), "warnings": [r.__dict__ for r in report.warnings]}
