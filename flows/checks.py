"""Great Expectations suites from `expectations/`, pushed down to DuckDB as SQL.

Each suite file is GX's own JSON suite format; its name is the relation it
checks (`staging.region_counts`, `build.coverage`, ...). Every expectation has
a GX severity and a `meta.description` in plain words: a failed `critical` one
stops the batch, `warning` ones are reported and the batch is published.

What a suite sees as its batch (the `{batch}` of custom SQL expectations):
- `staging.*`: only the rows of the files waiting in `ops.load_log` with status
  `staged`, so a batch is judged on its own rows; custom SQL compares them with
  what is already published (the whole staging view) where a rule spans months.
- `build.*`: the whole built mart, since that is what gets published.

The participants suite keeps only batch-level rules (row rules are ingest's rejects) and reads,
instead of the participant rows, a profile of each load computed once in one pass
(`flows/participant_profile.py`, brought up to date before the suites run; docs/checks.md).

Checks run through a GX SQL data source on the DuckDB file, so every metric is
a query inside DuckDB; nothing is pulled into pandas. Results go to
`ops.dq_results`, GX's validation results to `$JKN_HOME/gx/validations/`, and
GX Data Docs are rebuilt into `$JKN_HOME/data_docs/` after every run.

GX 1.24.1 with duckdb-engine loses every metric result (GX issues #10738,
#11579): GX fetches the cursor after its connection block closed, and closing
rolls the shared DuckDB connection back. GX already keeps one persisted
connection for sqlite for a related reason; `_persist_duckdb_connection`
adds duckdb to that list. tests/test_checks.py fails if observed values come
back empty again. GX's column-type expectations cannot read DuckDB column
types (duckdb-engine's reflection fails), so suites check types with a custom
SQL expectation over DuckDB's own `describe`.

GX takes ~3 s to import: it is imported only inside the functions that run checks.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from flows import data_docs, database, participant_profile
from flows.database import duckdb_config, utc_now
from flows.errors import DataQualityError
from flows.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
DOCS_SITE = "jkn"
# Custom SQL results quoted in a failure message; the rest stay in Data Docs and ops.dq_results.
EXAMPLES = 5
# Data Docs keep each suite's last runs (older validation results and pages are deleted), and the
# index lists the newest validations only: building it reads every validation it lists.
RUNS_KEPT = 30
DOCS_VALIDATIONS_LISTED = 100
STAGED_FILES = "select file_name from ops.load_log where status = 'staged'"
# Suites whose rules read the participant profile, which is brought up to date before they run.
PROFILED_SUITES = ("staging.participants", "staging.region_counts")


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
    skipped: list[str] = field(default_factory=list)
    data_docs: Path | None = None
    nothing_staged: bool = False  # staging suites with no staged file: nothing was checked, nothing passed

    @property
    def critical_failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "critical"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity != "critical"]

    @property
    def passed(self) -> bool:
        return not self.critical_failures


def suite_files(prefix: str = "") -> list[Path]:
    """Suites whose relation starts with `prefix` ('staging.' or 'build.'; all by default)."""
    return sorted(EXPECTATIONS_DIR.glob(f"{prefix}*.json"))


def read_suite(path: Path) -> dict:
    """A suite file as GX's ExpectationSuite takes it."""
    definition = json.loads(path.read_text(encoding="utf-8"))
    definition.pop("id", None)
    return definition


def write_suite(suite, directory: Path = EXPECTATIONS_DIR) -> Path:
    """Save a GX ExpectationSuite as `<directory>/<name>.json` in the layout of the files here
    (GX's own JSON, without the ids a context assigns), so a suite edited with GX's API
    round-trips to a small diff."""
    definition = suite.to_json_dict()
    definition["id"] = None
    for expectation in definition["expectations"]:
        expectation.pop("id", None)
    path = directory / f"{definition['name']}.json"
    path.write_text(json.dumps(definition, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def batch_query(relation: str) -> str:
    """The rows a suite validates: the staged files' rows of a staging view, or a whole mart."""
    if relation.startswith("staging."):
        return f"select * from {relation} where file_name in ({STAGED_FILES})"
    return f"select * from {relation}"


def validations_dir(settings: Settings) -> Path:
    """GX's stored validation results, from which Data Docs list the runs."""
    return settings.home / "gx" / "validations"


def prune_validations(settings: Settings, keep: int = RUNS_KEPT) -> int:
    """Delete all but each suite's `keep` newest runs from the stored validation results and
    from the Data Docs pages (both laid out `validations/<schema>/<table>/<run>/...`)."""
    removed = 0
    for root in (validations_dir(settings), settings.data_docs_dir / "validations"):
        for suite_dir in (path for path in root.glob("*/*") if path.is_dir()):
            runs = sorted(
                (path for path in suite_dir.iterdir() if path.is_dir()),
                key=lambda path: path.stat().st_mtime,
                reverse=True,
            )
            for old in runs[keep:]:
                shutil.rmtree(old, ignore_errors=True)
                removed += 1
    return removed


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


def _no_duckdb_progress_bars() -> None:
    """DuckDB draws a progress bar on stdout for any query over 2 s, and a national extract's
    checks take that long: it would fill the run's log. The option is per connection, so it is
    set on each DuckDB connection SQLAlchemy opens for GX (once per process)."""
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    if event.contains(Pool, "connect", _quiet_duckdb_connection):
        return
    event.listen(Pool, "connect", _quiet_duckdb_connection)


def _quiet_duckdb_connection(dbapi_connection, _record) -> None:
    if type(dbapi_connection).__module__.startswith("duckdb"):
        dbapi_connection.execute("set enable_progress_bar = false")


def _quiet_gx() -> None:
    """GX logs at INFO from a module whose level it pins to INFO; users should see only problems."""
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _context(settings: Settings):
    """An ephemeral GX context: suites in memory, validation results and Data Docs on disk,
    no progress bars, no analytics, no temporary docs site."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        data_docs_sites={
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(settings.data_docs_dir.resolve()),
                },
                "site_index_builder": {
                    "class_name": "DefaultSiteIndexBuilder",
                    "validation_results_limit": DOCS_VALIDATIONS_LISTED,
                },
            }
        },
    )
    config.stores[config.validation_results_store_name] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(validations_dir(settings).resolve()),
        },
    }
    return gx.get_context(mode="ephemeral", project_config=config)


def _existing_relations(settings: Settings, relations: list[str]) -> set[str]:
    with database.connected(settings) as con:
        rows = con.execute("select table_schema || '.' || table_name from information_schema.tables").fetchall()
    present = {row[0] for row in rows}
    return {relation for relation in relations if relation in present}


def _label(config) -> str:
    description = (config.meta or {}).get("description")
    if description:
        return description
    kwargs = config.kwargs
    columns = kwargs.get("column") or ", ".join(kwargs.get("column_list", []))
    return f"{config.type}({columns})" if columns else config.type


def _columns(config) -> set[str]:
    kwargs = config.kwargs
    return {kwargs["column"]} if "column" in kwargs else set(kwargs.get("column_list") or [])


def _example(row: dict, personal: set[str]) -> str:
    return " ".join(f"{key}={value}" for key, value in row.items() if key not in personal)


def _observed(result, personal: set[str], rows: list[dict] | None = None) -> tuple[str, list]:
    """What GX observed, in words, and example values; "" when GX returned nothing
    (the symptom of the duckdb-engine bug). Values of personal columns are never quoted."""
    config = result.expectation_config
    data = result.result or {}
    for info in [result.exception_info or {}, *(result.exception_info or {}).values()]:
        if isinstance(info, dict) and info.get("raised_exception"):
            message = str(info.get("exception_message", "")).strip().splitlines()
            return "error: " + (message[0] if message else "unknown")[:300], []
    if config.type == "unexpected_rows_expectation" and "observed_value" in data:
        count = data["observed_value"]
        examples = [_example(row, personal) for row in (rows or [])[:EXAMPLES]]
        text = f"{count} row" + ("" if count == 1 else "s")
        examples = [example for example in examples if example]
        return (text + (": " + "; ".join(examples) if examples else ""))[:500], examples
    if "observed_value" in data:
        return json.dumps(data["observed_value"], default=str)[:500], []
    if "unexpected_count" in data:
        text = f"{data['unexpected_count']} of {data.get('element_count')} rows"
        examples = []
        if not (_columns(config) & personal):
            examples = [str(value) for value in (data.get("partial_unexpected_list") or [])[:EXAMPLES]]
        return (text + (", e.g. " + ", ".join(examples) if examples else ""))[:500], examples
    if data:
        return json.dumps(data, default=str)[:500], []
    return "", []


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


def run_suites(settings: Settings, suites: list[Path], run_id: str, build_docs: bool = True) -> CheckReport:
    """Validate each suite against its relation in the DuckDB file and, unless told
    otherwise, rebuild the Data Docs. No connection to the file with other settings
    may be open in this process while this runs."""
    import great_expectations as gx

    _quiet_gx()
    _persist_duckdb_connection()
    _no_duckdb_progress_bars()
    _no_batch_notice()
    report = CheckReport(run_id)
    definitions = {path: read_suite(path) for path in suite_files()}
    wanted = [definitions.get(path) or read_suite(path) for path in suites]
    present = _existing_relations(settings, [definition["name"] for definition in wanted])
    report.skipped = [d["name"] for d in wanted if d["name"] not in present]
    for relation in report.skipped:
        log.warning("suite %s not run: the relation does not exist", relation)
    to_run = [d for d in wanted if d["name"] in present]
    if to_run and all(d["name"].startswith("staging.") for d in to_run) and not _anything_staged(settings):
        report.nothing_staged = True  # suites over empty batches would all "pass": say so instead
        return report
    if not to_run:
        return report
    if any(d["name"] in PROFILED_SUITES for d in to_run):
        _profile_participants(settings)

    context = _context(settings)
    # Every suite goes into the context so the Data Docs index lists them all, not just this stage's.
    suites_by_name = {d["name"]: context.suites.add(gx.ExpectationSuite(**d)) for d in definitions.values()}
    for definition in wanted:
        if definition["name"] not in suites_by_name:
            suites_by_name[definition["name"]] = context.suites.add(gx.ExpectationSuite(**definition))
    datasource = context.data_sources.add_sql(
        name="jkn",
        connection_string=f"duckdb:///{settings.db_path.resolve()}",
        kwargs={"connect_args": {"config": duckdb_config(settings)}},
    )
    try:
        batches = {}
        validations = []
        for definition in to_run:
            relation = definition["name"]
            asset = datasource.add_query_asset(name=relation, query=batch_query(relation))
            batches[relation] = asset.add_batch_definition_whole_table("all")
            validations.append(
                context.validation_definitions.add(
                    gx.ValidationDefinition(name=relation, data=batches[relation], suite=suites_by_name[relation])
                )
            )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name="jkn",
                validation_definitions=validations,
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": 20},
            )
        )
        outcome = checkpoint.run(run_id=gx.RunIdentifier(run_name=run_id))
        by_suite = {key.expectation_suite_identifier.name: value for key, value in outcome.run_results.items()}
        for definition in to_run:
            relation = definition["name"]
            personal = set((definition.get("meta") or {}).get("personal_columns", []))
            validation = by_suite[relation]
            examples = _unexpected_rows(batches[relation], validation.results)
            for position, result in enumerate(validation.results):
                config = result.expectation_config
                observed, sample = _observed(result, personal, examples.get(position))
                details = {"type": config.type, "columns": sorted(_columns(config))}
                if sample:
                    details["examples"] = sample
                report.results.append(
                    CheckResult(
                        suite=relation,
                        expectation=_label(config),
                        severity=getattr(config.severity, "value", str(config.severity or "critical")),
                        success=bool(result.success),
                        observed=observed,
                        details=json.dumps(details, default=str),
                    )
                )
        if build_docs:
            # One build for the whole run (GX's UpdateDataDocsAction rebuilds the index once per
            # suite): this run's validation pages, every suite's page, and the index.
            from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

            pages = [*outcome.run_results, *(ExpectationSuiteIdentifier(name) for name in suites_by_name)]
            prune_validations(settings)
            context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=pages)
            data_docs.make_offline(settings.data_docs_dir)  # GX's pages load their scripts from CDNs
            report.data_docs = settings.data_docs_dir / "index.html"
    finally:
        _close(datasource)
    # At INFO: the CLI prints failures itself, and a critical one stops the run with all of them in its error.
    for result in report.results:
        if not result.success:
            log.info(
                "check failed [%s] %s %s: observed %s",
                result.severity,
                result.suite,
                result.expectation,
                result.observed,
            )
    return report


def _unexpected_rows(batch_definition, results) -> dict[int, list[dict]]:
    """The rows a failed custom SQL expectation found. GX computes them anyway but returns
    them only in its COMPLETE format, which for column expectations would also fetch every
    unexpected value; so only the failed custom SQL expectations are asked again."""
    failed = {
        position: result.expectation_config
        for position, result in enumerate(results)
        if not result.success
        and result.expectation_config.type == "unexpected_rows_expectation"
        and "observed_value" in (result.result or {})
    }
    if not failed:
        return {}
    batch = batch_definition.get_batch()
    rows = {}
    for position, config in failed.items():
        again = batch.validate(config.to_domain_obj(), result_format="COMPLETE")
        rows[position] = ((again.result or {}).get("details") or {}).get("unexpected_rows", [])[:EXAMPLES]
    return rows


def record(con, report: CheckReport) -> None:
    """Store the results in ops.dq_results."""
    now = utc_now()
    rows = [
        (report.run_id, r.suite, r.expectation, r.severity, r.success, r.observed, r.details, now)
        for r in report.results
    ]
    if rows:
        con.executemany("insert into ops.dq_results values (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _no_batch_notice() -> None:
    """GX prints a notice to stdout each time it builds a custom SQL expectation whose query has no
    `{batch}` (dozens of times a run). The participants rules query the participant profile instead
    of the rows on purpose (flows/participant_profile.py); the notice would only fill the CLI's
    output, so that module's print goes to the debug log instead."""
    import great_expectations.expectations.core.unexpected_rows_expectation as module

    module.print = lambda *values, **_: log.debug(" ".join(str(value) for value in values))


def _profile_participants(settings: Settings) -> None:
    with database.connected(settings) as con:  # closed before GX opens the file (one configuration per file)
        participant_profile.profile_loads(con)


def _anything_staged(settings: Settings) -> bool:
    with database.connected(settings) as con:  # as _existing_relations: one configuration per file in a process
        return con.execute(f"select exists ({STAGED_FILES})").fetchone()[0]


def quarantine_staged(con, reason: str) -> int:
    """Take the staged files out of the staging views after a failed critical check."""
    staged = con.execute("select count(*) from ops.load_log where status = 'staged'").fetchone()[0]
    con.execute("update ops.load_log set status = 'quarantined', message = ? where status = 'staged'", [reason])
    return staged


def describe_failure(result: CheckResult) -> str:
    return f"{result.suite}: {result.expectation}: observed {result.observed}"


def gate(settings: Settings, suites: list[Path], run_id: str) -> dict:
    """Run suites, store results and rebuild Data Docs; on a critical failure quarantine
    the batch and raise DataQualityError (exit 3), so nothing from it is published.
    Returns the failed warnings, which do not stop the batch."""
    report = run_suites(settings, suites, run_id)
    with database.connected(settings) as con:
        record(con, report)
        if not report.passed:
            failures = [describe_failure(r) for r in report.critical_failures]
            quarantined = quarantine_staged(con, "failed critical checks: " + "; ".join(failures)[:2000])
            docs = f"; Data Docs: {report.data_docs}" if report.data_docs else ""
            # One line: Prefect shows an exception's text in its state message, where a line
            # break would appear as a literal \n; the CLI and the flow log print one line per failure.
            raise DataQualityError(
                f"critical data-quality checks failed; {quarantined} staged file(s) quarantined and "
                "nothing from this batch was published: " + "; ".join(failures) + docs,
                failures=[asdict(r) for r in report.critical_failures],
                details=failures + ([f"Data Docs: {report.data_docs}"] if report.data_docs else []),
            )
    return {
        "checked": len(report.results),
        "warnings": [asdict(r) for r in report.warnings],
        "skipped": report.skipped,
        "nothing_staged": report.nothing_staged,
        "data_docs": str(report.data_docs) if report.data_docs else None,
    }
