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
a query inside DuckDB; nothing is pulled into pandas. A staging view's batch (employers, workforce,
population, region counts) is copied once into a temporary table that its suite's queries read (each
query over the view computed it anew). Results go to
`ops.dq_results`, GX's validation results to `$JKN_HOME/gx/validations/`, and
GX Data Docs are rebuilt into `$JKN_HOME/data_docs/` after every run (in the flow, once by
check-marts for both stages, unless check-staging stops the run). `flows/gx_setup.py` has GX send
each custom SQL rule once and ask for examples only where it counted unexpected values, and trims
GX's own Python per expectation and per Data Docs page (each adjustment says what it saves).

GX's set-up for DuckDB (one persisted connection, for GX issues #10738 and #11579; tests/test_checks.py
fails if observed values come back empty again), its context and the Data Docs store are in
`flows/gx_setup.py`; what a result says, and `ops.dq_results`, in `flows/check_results.py`.
GX's column-type expectations cannot read DuckDB column types (duckdb-engine's reflection fails),
so suites check types with a custom SQL expectation over DuckDB's own `describe`.

GX takes ~3 s to import: it is imported only inside the functions that run checks. A run that has files
to check starts that import on a thread of its own while ingest works in DuckDB (`import_gx_early`);
the checks wait for it rather than import GX beside it.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import threading
import uuid
from dataclasses import asdict
from pathlib import Path

from flows import database, gx_patches, gx_setup, participant_profile
from flows.check_results import EXAMPLES, CheckReport, CheckResult, describe_failure, from_validation, record
from flows.database import duckdb_config
from flows.errors import DataQualityError
from flows.gx_setup import DOCS_SITE, prune_validations, validations_dir
from flows.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

# What run_suites and gx_setup import of GX (and the SQLAlchemy dialect GX opens DuckDB with).
GX_MODULES = (
    "great_expectations",
    "great_expectations.validator.v1_validator",
    "great_expectations.data_context.types.resource_identifiers",
    "great_expectations.render.view.view",
    "great_expectations.execution_engine.sqlalchemy_execution_engine",
    "great_expectations.expectations.core.unexpected_rows_expectation",
    "duckdb_engine",
)
_early_import: list[threading.Thread] = []


def import_gx_early() -> None:
    """Import GX on a thread (once per process): a run calls this before its ingest, whose DuckDB
    work leaves the interpreter idle, so check-staging finds GX imported. run_suites waits for the
    thread, so GX is never imported by two threads at once. A failure is left to run_suites's own import."""
    if _early_import or "great_expectations" in sys.modules:
        return

    def import_modules() -> None:
        try:
            for name in GX_MODULES:
                importlib.import_module(name)
        except Exception as error:  # noqa: BLE001 - run_suites imports them again and fails there
            log.debug("GX not imported early: %s", error)

    _early_import.append(threading.Thread(target=import_modules, name="jkn-import-gx", daemon=True))
    _early_import[0].start()


# Other modules and tests use these from here; the results and the Data Docs store live beside.
__all__ = [
    "EXPECTATIONS_DIR",
    "CheckReport",
    "CheckResult",
    "batch_query",
    "describe_failure",
    "gate",
    "prune_validations",
    "quarantine_staged",
    "read_suite",
    "record",
    "run_suites",
    "suite_files",
    "validations_dir",
    "write_suite",
]

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
STAGED_FILES = "select file_name from ops.load_log where status = 'staged'"
STAGED_BATCH = "select file_name, period from ops.load_log where status = 'staged' order by load_id"
# Suites whose rules read the participant profile, which is brought up to date before they run.
PROFILED_SUITES = ("staging.participants", "staging.region_counts")
TEMP_TABLE_SUITES = ("staging.employers", "staging.workforce", "staging.population", "staging.region_counts")


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


def _existing_relations(settings: Settings, relations: list[str]) -> tuple[set[str], list[tuple]]:
    """Which of `relations` exist, and the staged files (name, period; by load): one open of the file.
    Read-only unless a suite that reads the participant profile is to run, which brings the profile up to
    date in the same open (a writable connection also brings the schema up to date each time it opens,
    and the file is opened several times a check stage). Closed before GX opens the file (one
    configuration per file in a process)."""
    profiled = any(relation in PROFILED_SUITES for relation in relations)
    with database.connected(settings, read_only=not profiled) as con:
        rows = con.execute("select table_schema || '.' || table_name from information_schema.tables").fetchall()
        present = {row[0] for row in rows}
        staged = con.execute(STAGED_BATCH).fetchall() if "ops.load_log" in present else []
        to_run = [relation for relation in relations if relation in present]
        if any(relation in PROFILED_SUITES for relation in to_run) and not _nothing_staged(to_run, staged):
            participant_profile.profile_loads(con)
    return set(to_run), staged


def _nothing_staged(relations: list[str], staged: list[tuple]) -> bool:
    """Only staging suites are to run and no file is staged: suites over empty batches would all "pass"."""
    return all(relation.startswith("staging.") for relation in relations) and not staged


def run_suites(
    settings: Settings, suites: list[Path], run_id: str, build_docs: bool = True, defer_docs: bool = False
) -> CheckReport:
    """Validate each suite against its relation in the DuckDB file and, unless told
    otherwise, rebuild the Data Docs. `defer_docs`: when no critical check failed, leave the pages
    to the next build (the flow's check-marts, a few seconds later), which renders every stored
    validation still without a page. No connection to the file with other settings
    may be open in this process while this runs."""
    for thread in _early_import:
        thread.join()
    import great_expectations as gx
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )
    from great_expectations.validator.v1_validator import Validator

    gx_setup.prepare(settings)
    report = CheckReport(run_id)
    definitions = {path: read_suite(path) for path in suite_files()}
    wanted = [definitions.get(path) or read_suite(path) for path in suites]
    present, report.staged = _existing_relations(settings, [definition["name"] for definition in wanted])
    report.skipped = [d["name"] for d in wanted if d["name"] not in present]
    for relation in report.skipped:
        log.warning("suite %s not run: the relation does not exist", relation)
    to_run = [d for d in wanted if d["name"] in present]
    if to_run and _nothing_staged([d["name"] for d in to_run], report.staged):
        report.nothing_staged = True  # say so instead
        return report
    if not to_run:
        return report

    context = gx_setup.context(settings)
    gx_patches.UNEXPECTED_ROWS.clear()
    # The suites this run validates; every other suite goes into the context before a Data Docs build,
    # so that the index lists them all, not just this stage's (a check without a build does not pay for it).
    suites_by_name = {}
    for definition in wanted:
        if definition["name"] not in suites_by_name:
            suites_by_name[definition["name"]] = context.suites.add(gx.ExpectationSuite(**definition))
    known = {d["name"] for d in definitions.values()}
    datasource = context.data_sources.add_sql(
        name="jkn",
        connection_string=f"duckdb:///{settings.db_path.resolve()}",
        kwargs={"connect_args": {"config": duckdb_config(settings)}},
    )
    try:
        batches = {}
        for definition in to_run:
            relation = definition["name"]
            asset = datasource.add_query_asset(name=relation, query=batch_query(relation))
            batches[relation] = asset.add_batch_definition_whole_table("all")
        # BASIC: counts and up to 20 unexpected values, what ops.dq_results and Data Docs show. SUMMARY would
        # add a value-counts query per column expectation (partial_unexpected_counts, which nothing reads) and
        # ~40% more of GX's own time per expectation.
        # Each suite is validated and its result stored as GX's ValidationDefinition.run does it (the same
        # meta, the results stored for Data Docs and keyed the same way), without a Checkpoint (it has no
        # actions here, and its freshness check re-serialised every suite) nor a ValidationDefinition (added
        # to a store only to be read back by its own freshness check, which re-reads suite and batch definition).
        result_format = {"result_format": "BASIC", "partial_unexpected_count": 20}
        run_identifier = gx.RunIdentifier(run_name=run_id)
        run_results = {}
        by_suite = {}
        for definition in to_run:
            relation = definition["name"]
            # A staging view is computed anew by every query over it: its batch is copied once into a temporary
            # table (GX's own option), which the suite's queries read. Not the participants' (its rules read
            # the profile) nor a mart's (already a table).
            datasource.get_execution_engine()._create_temp_table = relation in TEMP_TABLE_SUITES
            validator = Validator(batch_definition=batches[relation], result_format=result_format)
            validation = validator.validate_expectation_suite(suites_by_name[relation], None)
            validation.meta.update(
                validation_id=str(uuid.uuid4()),
                checkpoint_id=None,
                run_id=run_identifier,
                validation_time=run_identifier.run_time,
                batch_parameters=None,
            )
            suite_key = ExpectationSuiteIdentifier(name=relation)
            key = ValidationResultIdentifier(
                expectation_suite_identifier=suite_key,
                run_id=run_identifier,
                batch_identifier=validator.active_batch_id,
            )
            context.validation_results_store.store_validation_results(
                suite_validation_result=validation,
                suite_validation_result_identifier=key,
                expectation_suite_identifier=suite_key,
            )
            run_results[key] = validation
            by_suite[relation] = validation
        for definition in to_run:
            relation = definition["name"]
            personal = set((definition.get("meta") or {}).get("personal_columns", []))
            validation = by_suite[relation]
            examples = _unexpected_rows(batches[relation], validation.results)
            report.results += from_validation(relation, personal, validation.results, examples)
        if build_docs and not (defer_docs and report.passed):
            # One build for the whole run (GX's UpdateDataDocsAction rebuilds the index once per
            # suite): this run's validation pages, those of earlier checks that deferred theirs,
            # every suite's page, and the index.
            # Suite pages only where the suite changed (or its page is missing): they do not depend on the run.
            every_suite = [*definitions.values(), *(d for d in wanted if d["name"] not in known)]
            for definition in definitions.values():
                if definition["name"] not in suites_by_name:
                    suites_by_name[definition["name"]] = context.suites.add(gx.ExpectationSuite(**definition))
            stale = gx_setup.stale_suite_pages(settings, every_suite)
            prune_validations(settings)
            deferred = gx_setup.unrendered_validations(settings, skip=run_results)
            pages = [*run_results, *deferred, *(ExpectationSuiteIdentifier(name) for name in stale)]
            # GX's pages load their scripts from CDNs: the pages are written pointed at vendored copies.
            gx_setup.offline_pages(settings.data_docs_dir)
            context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=pages)
            gx_setup.mark_suite_pages(settings, every_suite)
            report.data_docs = settings.data_docs_dir / "index.html"
    finally:
        gx_setup.close(datasource)
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
    unexpected value; they are kept as GX validates (`gx_patches.keep_unexpected_rows`), and only
    a failed custom SQL expectation whose rows were not kept is asked again."""
    failed = {
        position: result.expectation_config
        for position, result in enumerate(results)
        if not result.success
        and result.expectation_config.type == "unexpected_rows_expectation"
        and "observed_value" in (result.result or {})
    }
    rows = {}
    for position, config in list(failed.items()):
        if config.id in gx_patches.UNEXPECTED_ROWS:
            rows[position] = gx_patches.UNEXPECTED_ROWS.pop(config.id)[:EXAMPLES]
            del failed[position]
    if not failed:
        return rows
    batch = batch_definition.get_batch()
    for position, config in failed.items():
        again = batch.validate(config.to_domain_obj(), result_format="COMPLETE")
        rows[position] = ((again.result or {}).get("details") or {}).get("unexpected_rows", [])[:EXAMPLES]
    return rows


def quarantine_staged(con, reason: str) -> int:
    """Take the staged files out of the staging views after a failed critical check."""
    staged = con.execute("select count(*) from ops.load_log where status = 'staged'").fetchone()[0]
    con.execute("update ops.load_log set status = 'quarantined', message = ? where status = 'staged'", [reason])
    return staged


def gate(settings: Settings, suites: list[Path], run_id: str, defer_docs: bool = False) -> dict:
    """Run suites, store results and rebuild Data Docs (`defer_docs`: only on a critical failure, see
    `run_suites`); on a critical failure quarantine the batch and raise DataQualityError (exit 3), so
    nothing from it is published. Returns the failed warnings, which do not stop the batch."""
    report = run_suites(settings, suites, run_id, defer_docs=defer_docs)
    with database.connected(settings) as con:
        record(con, report)
        if not report.passed:
            failures = [describe_failure(r) for r in report.critical_failures]
            quarantined = quarantine_staged(con, "failed critical checks: " + "; ".join(failures)[:2000])
            docs = f"; Data Docs: {report.data_docs}" if report.data_docs else ""
            # One line: Prefect shows an exception's text in its state message, where a line
            # break would appear as a literal \n; the CLI and the flow log print one line per failure.
            failure = DataQualityError(
                f"critical data-quality checks failed; {quarantined} staged file(s) quarantined and "
                "nothing from this batch was published: " + "; ".join(failures) + docs,
                failures=[asdict(r) for r in report.critical_failures],
                details=failures + ([f"Data Docs: {report.data_docs}"] if report.data_docs else []),
            )
            failure.staged = report.staged  # the files quarantined (name, period), for the ops notice
            raise failure
    return {
        "checked": len(report.results),
        "warnings": [asdict(r) for r in report.warnings],
        "skipped": report.skipped,
        "nothing_staged": report.nothing_staged,
        "data_docs": str(report.data_docs) if report.data_docs else None,
    }
