"""Great Expectations set up for jkn's checks: the context, the DuckDB workarounds, the Data Docs store.

GX 1.24.1 with duckdb-engine loses every metric result (GX issues #10738,
#11579): GX fetches the cursor after its connection block closed, and closing
rolls the shared DuckDB connection back. GX already keeps one persisted
connection for sqlite for a related reason; `persist_duckdb_connection`
adds duckdb to that list. tests/test_checks.py fails if observed values come
back empty again.

GX takes ~3 s to import: this module imports it only inside its functions, which only the
check stages call (`flows/checks.py`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
from importlib.metadata import version
from pathlib import Path

from flows.check_results import EXAMPLES
from flows.settings import Settings

log = logging.getLogger(__name__)

DOCS_SITE = "jkn"
# Data Docs keep each suite's last runs (older validation results and pages are deleted), and the
# index lists the newest validations only: building it reads every validation it lists.
RUNS_KEPT = 30
DOCS_VALIDATIONS_LISTED = 100


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


def unrendered_validations(settings: Settings, skip=()) -> list:
    """Stored validation results without a Data Docs page (a check that deferred its pages, or a
    run that stopped before the docs were built), as GX's keys; `skip`: keys already to be rendered.
    Both stores lay a result out as `<schema>/<table>/<run name>/<run time>/<batch>.(json|html)`."""
    from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier

    root, pages = validations_dir(settings), settings.data_docs_dir / "validations"
    skipped = {key.to_tuple() for key in skip}
    missing = []
    for path in sorted(root.glob("*/*/*/*/*.json")):
        relative = path.relative_to(root)
        key = (*relative.parts[:-1], relative.stem)
        if key not in skipped and not (pages / relative.with_suffix(".html")).exists():
            missing.append(ValidationResultIdentifier.from_tuple(key))
    return missing


def stale_suite_pages(settings: Settings, definitions: list[dict]) -> list[str]:
    """The suites whose Data Docs page must be rendered: new or changed since their page was (a
    suite's page shows only its expectations, and both check stages rebuild the docs every run)."""
    rendered = _rendered_suites(settings)
    return [
        definition["name"]
        for definition in definitions
        if rendered.get(definition["name"]) != _suite_digest(definition)
        or not _suite_page(settings, definition["name"]).exists()
    ]


def mark_suite_pages(settings: Settings, definitions: list[dict]) -> None:
    """Remember which version of each suite its page shows (after a docs build)."""
    rendered = _rendered_suites(settings)
    rendered.update({definition["name"]: _suite_digest(definition) for definition in definitions})
    path = _rendered_suites_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(rendered, indent=1, sort_keys=True), encoding="utf-8")
    partial.replace(path)


def _rendered_suites_path(settings: Settings) -> Path:
    return settings.home / "gx" / "suite_pages.json"


def _rendered_suites(settings: Settings) -> dict:
    try:
        return json.loads(_rendered_suites_path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none recorded (or unreadable): every page is rendered


def _suite_digest(definition: dict) -> str:
    text = json.dumps([_gx_version(), definition], sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.cache
def _gx_version() -> str:
    return version("great_expectations")  # reads the installed packages' metadata (~5 ms a call)


def _suite_page(settings: Settings, name: str) -> Path:
    return settings.data_docs_dir / "expectations" / Path(*name.split(".")).with_suffix(".html")


def prepare(settings: Settings | None = None) -> None:
    """The process-wide GX adjustments, once before any validation (`settings`: where compiled
    Data Docs templates are kept)."""
    quiet_gx()
    configuration_once_per_lookup()
    plain_values_converted_directly()
    columns_named_without_rows()
    if settings is not None:
        compiled_templates(settings)
    persist_duckdb_connection()
    no_duckdb_progress_bars()
    no_batch_notice()
    custom_sql_counted_from_its_rows()
    no_examples_query_without_unexpected()
    keep_unexpected_rows()


# What the failed custom SQL expectations of the validation under way found (their first rows), by
# expectation id: GX fetches them anyway but returns them only in its COMPLETE format.
UNEXPECTED_ROWS: dict[str, list[dict]] = {}
_ADJUSTED: set[str] = set()
# GX's own functions that `prepare` replaced, by name (tests compare the replacements with them).
GX_ORIGINALS: dict[str, object] = {}


def custom_sql_counted_from_its_rows() -> None:
    """GX runs each custom SQL rule (`unexpected_rows_expectation`) twice: its query for up to
    200 rows (`unexpected_rows_query.table`) and `select count(*)` over it
    (`unexpected_rows_query.row_count`). On SQL data sources the count is taken from the rows
    when there are fewer than 200 (the query returned them all), so a rule runs once; a rule that
    finds 200 rows or more is still counted by GX's own query. Same counts, same results."""
    if "row_count" in _ADJUSTED:
        return
    from great_expectations.constants import MAX_RESULT_RECORDS
    from great_expectations.expectations.metrics.query_metrics.query_row_count.unexpected_rows_query_row_count import (  # noqa: E501 - GX's module path
        UnexpectedRowsQueryRowCount,
    )
    from great_expectations.validator.metric_configuration import MetricConfiguration

    counted_by_query = UnexpectedRowsQueryRowCount._sqlalchemy

    # Defining the class registers it as the metric's SQL provider (GX logs a warning that it replaces one).
    registry_log = logging.getLogger("great_expectations.expectations.registry")
    level = registry_log.level
    registry_log.setLevel(logging.ERROR)
    try:
        _count_from_rows(counted_by_query, MAX_RESULT_RECORDS, MetricConfiguration)
    finally:
        registry_log.setLevel(level)
    _ADJUSTED.add("row_count")


def _count_from_rows(counted_by_query, max_rows: int, MetricConfiguration) -> None:  # noqa: N803 - GX's class
    from great_expectations.execution_engine import SqlAlchemyExecutionEngine
    from great_expectations.expectations.metrics.metric_provider import metric_value
    from great_expectations.expectations.metrics.query_metrics.query_row_count.unexpected_rows_query_row_count import (  # noqa: E501 - GX's module path
        UnexpectedRowsQueryRowCount,
    )

    class RowCountFromRows(UnexpectedRowsQueryRowCount):
        @classmethod
        def _get_evaluation_dependencies(
            cls, metric, configuration=None, execution_engine=None, runtime_configuration=None
        ):
            dependencies = super()._get_evaluation_dependencies(
                metric=metric,
                configuration=configuration,
                execution_engine=execution_engine,
                runtime_configuration=runtime_configuration,
            )
            if isinstance(execution_engine, SqlAlchemyExecutionEngine):
                dependencies["unexpected_rows_query.table"] = MetricConfiguration(
                    metric_name="unexpected_rows_query.table",
                    metric_domain_kwargs=metric.metric_domain_kwargs,
                    metric_value_kwargs=metric.metric_value_kwargs,
                )
            return dependencies

        @metric_value(engine=SqlAlchemyExecutionEngine)
        def _sqlalchemy(
            cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, runtime_configuration
        ):
            rows = metrics.get("unexpected_rows_query.table")
            if isinstance(rows, list) and len(rows) < max_rows:
                return len(rows)
            return counted_by_query(
                cls=cls,
                execution_engine=execution_engine,
                metric_domain_kwargs=metric_domain_kwargs,
                metric_value_kwargs=metric_value_kwargs,
                metrics=metrics,
                runtime_configuration=runtime_configuration,
            )


def no_examples_query_without_unexpected() -> None:
    """In its BASIC format GX asks every column rule for up to 20 unexpected values (one query each)
    even when it has just counted none. On SQL data sources that query now waits for the count and
    is not sent when the count is 0 (it could only return no rows): the same results, about half
    the statements of a mart suite."""
    if "unexpected_values" in _ADJUSTED:
        return
    from great_expectations.execution_engine import SqlAlchemyExecutionEngine
    from great_expectations.expectations import registry
    from great_expectations.expectations.metrics.map_metric_provider.map_metric_provider import MapMetricProvider
    from great_expectations.validator.metric_configuration import MetricConfiguration

    values_suffix = ".unexpected_values"
    dependencies_of = MapMetricProvider._get_evaluation_dependencies.__func__

    def with_count(cls, metric, configuration=None, execution_engine=None, runtime_configuration=None):
        dependencies = dependencies_of(cls, metric, configuration, execution_engine, runtime_configuration)
        if isinstance(execution_engine, SqlAlchemyExecutionEngine) and metric.metric_name.endswith(values_suffix):
            value_kwargs = {k: v for k, v in (metric.metric_value_kwargs or {}).items() if k != "result_format"}
            dependencies["unexpected_count"] = MetricConfiguration(
                metric_name=metric.metric_name[: -len(values_suffix)] + ".unexpected_count",
                metric_domain_kwargs=metric.metric_domain_kwargs,
                metric_value_kwargs=value_kwargs,
            )
        return dependencies

    def unless_none(provider):
        @functools.wraps(provider)
        def values(*args, **kwargs):
            if (kwargs.get("metrics") or {}).get("unexpected_count") == 0:
                return []
            return provider(*args, **kwargs)

        return values

    MapMetricProvider._get_evaluation_dependencies = classmethod(with_count)
    sql_engines, found = set(), [SqlAlchemyExecutionEngine]
    while found:  # the registry keys providers by the engine's class name
        engine_class = found.pop()
        sql_engines.add(engine_class.__name__)
        found.extend(engine_class.__subclasses__())
    for name, definition in registry._registered_metrics.items():
        if not name.endswith(values_suffix):
            continue
        providers = definition.get("providers", {})
        for engine, (provider_class, provider) in list(providers.items()):
            if engine in sql_engines and provider is not None:
                providers[engine] = (provider_class, unless_none(provider))
    _ADJUSTED.add("unexpected_values")


def keep_unexpected_rows() -> None:
    """Keep the first rows a failed custom SQL expectation found (`UNEXPECTED_ROWS`, by expectation
    id), from the query GX ran to validate it, so that examples need no second run of the rule."""
    if "unexpected_rows" in _ADJUSTED:
        return
    from great_expectations.expectations.core.unexpected_rows_expectation import UnexpectedRowsExpectation

    validate = UnexpectedRowsExpectation._validate

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
        result = validate(self, metrics, runtime_configuration, execution_engine)
        rows = metrics.get("unexpected_rows_query.table")
        if self.id and isinstance(rows, list) and rows and metrics.get("unexpected_rows_query.row_count"):
            UNEXPECTED_ROWS[self.id] = rows[:EXAMPLES]
        return result

    UnexpectedRowsExpectation._validate = _validate
    _ADJUSTED.add("unexpected_rows")


def configuration_once_per_lookup() -> None:
    """GX rebuilds an expectation's configuration (a pydantic `dict()` and an `ExpectationConfiguration`)
    each time it reads one of its kwargs: `_get_domain_kwargs`, `_get_success_kwargs` and
    `_get_runtime_kwargs` rebuild it once per key, `_get_success_kwarg` twice, ~85 builds per expectation
    per validation (about a third of GX's own time in check-marts). They now build it once per call;
    the configuration depends only on the expectation, so the values are the same. The class name ->
    expectation type conversion (two regular expressions, on every build) is remembered per name."""
    if "configuration" in _ADJUSTED:
        return
    import great_expectations.expectations.expectation as expectation_module
    from great_expectations.expectations.expectation import Expectation, InvalidExpectationKwargsError

    expectation_module.camel_to_snake = functools.lru_cache(maxsize=None)(expectation_module.camel_to_snake)

    def _get_domain_kwargs(self):
        kwargs = self.configuration.kwargs
        domain_kwargs = {key: kwargs.get(key, self._get_default_value(key)) for key in self.domain_keys}
        missing_kwargs = set(self.domain_keys) - set(domain_kwargs.keys())
        if missing_kwargs:
            raise InvalidExpectationKwargsError(f"Missing domain kwargs: {list(missing_kwargs)}")
        return domain_kwargs

    def _get_success_kwargs(self):
        configuration = self.configuration
        kwargs = configuration.kwargs
        domain_kwargs = {key: kwargs.get(key, self._get_default_value(key)) for key in self.domain_keys}
        missing_kwargs = set(self.domain_keys) - set(domain_kwargs.keys())
        if missing_kwargs:
            raise InvalidExpectationKwargsError(f"Missing domain kwargs: {list(missing_kwargs)}")
        success_kwargs = {key: kwargs.get(key, self._get_default_value(key)) for key in self.success_keys}
        success_kwargs.update(domain_kwargs)
        return success_kwargs

    def kwarg(self, kwargs, key, default=None):  # GX's `_get_success_kwarg`, given the configuration's kwargs
        if key in kwargs:
            return kwargs[key]
        field = self.__fields__.get(key)
        if field is not None:
            return field.default if not field.required else default
        expectation_module.logger.warning(
            f'_get_success_kwarg called with key "{key}", but it is not a known field of {type(self).__name__}'
        )
        return default

    def _get_success_kwarg(self, key, default=None):
        return kwarg(self, self.configuration.kwargs, key, default)

    def _get_runtime_kwargs(self, runtime_configuration=None):
        runtime_configuration = runtime_configuration or {}
        success_kwargs = self._get_success_kwargs()
        kwargs = self.configuration.kwargs
        runtime_kwargs = {key: runtime_configuration.get(key, kwarg(self, kwargs, key)) for key in self.runtime_keys}
        runtime_kwargs.update(success_kwargs)
        runtime_kwargs["result_format"] = expectation_module.parse_result_format(runtime_kwargs["result_format"])
        return runtime_kwargs

    GX_ORIGINALS.update(
        {
            name: getattr(Expectation, name)
            for name in ("_get_domain_kwargs", "_get_success_kwargs", "_get_runtime_kwargs")
        }
    )
    GX_ORIGINALS["_get_success_kwarg"] = Expectation._get_success_kwarg
    Expectation._get_domain_kwargs = _get_domain_kwargs
    Expectation._get_success_kwargs = _get_success_kwargs
    Expectation._get_success_kwarg = _get_success_kwarg
    Expectation._get_runtime_kwargs = _get_runtime_kwargs
    _ADJUSTED.add("configuration")


def compiled_templates(settings: Settings) -> None:
    """Data Docs are rendered with Jinja; each of GX's three page views has its own Jinja environment,
    which compiles the templates it uses (~75 a build, the bigger part of a small build). The views keep
    the compiled templates in Jinja's own bytecode cache under `$JKN_HOME/gx/templates`: compiled once
    for every view and every later build (Jinja checks each cached template against its source)."""
    from great_expectations.render.view.view import DefaultJinjaView
    from jinja2 import FileSystemBytecodeCache

    directory = settings.home / "gx" / "templates"
    directory.mkdir(parents=True, exist_ok=True)
    _TEMPLATE_CACHE["cache"] = FileSystemBytecodeCache(str(directory))
    if "templates" in _ADJUSTED:
        return
    init = DefaultJinjaView.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.env.bytecode_cache = _TEMPLATE_CACHE["cache"]
        self.env.auto_reload = False  # GX's templates do not change while it runs (else: a stat per use)

    DefaultJinjaView.__init__ = __init__
    _ADJUSTED.add("templates")


_TEMPLATE_CACHE: dict = {}
# Data Docs folders whose pages are written offline (`offline_pages`), as GX's store backends name them.
OFFLINE_SITES: set[str] = set()


def offline_pages(site: Path) -> None:
    """GX's pages load scripts from CDNs; those its builds write into `site` are written pointed at the
    vendored copies (`flows/data_docs.py`), instead of written by GX and then rewritten."""
    from great_expectations.data_context.store.tuple_store_backend import TupleFilesystemStoreBackend

    from flows import data_docs

    data_docs.copy_assets(site)
    OFFLINE_SITES.add(os.path.normpath(str(site.resolve())))
    if "offline" in _ADJUSTED:
        return
    write = TupleFilesystemStoreBackend._set

    def _set(self, key, value, **kwargs):
        base = os.path.normpath(self.full_base_directory)
        if isinstance(value, str) and base in OFFLINE_SITES:
            relative = self._convert_key_to_filepath(key if isinstance(key, tuple) else key.to_tuple())
            if relative.endswith(".html"):
                value = data_docs.offline_page(value, len(Path(os.path.normpath(relative)).parts) - 1)
        return write(self, key, value, **kwargs)

    TupleFilesystemStoreBackend._set = _set
    _ADJUSTED.add("offline")


def columns_named_without_rows() -> None:
    """duckdb-engine cannot reflect a query's columns, so GX falls back to running the batch's query and
    reading the names off the result: the whole query (on a staging view, every column of every staged
    row; ~0.1 s for the participants). On DuckDB the query is now run as `select * from (...) limit 0`,
    the same column names and no rows."""
    if "columns" in _ADJUSTED:
        return
    import great_expectations.expectations.metrics.util as metrics_util
    from sqlalchemy import TextClause, text

    fallback = GX_ORIGINALS["column_reflection_fallback"] = metrics_util.column_reflection_fallback

    def column_reflection_fallback(selectable, dialect, sqlalchemy_engine, schema_name=None):
        if dialect.name.lower() == "duckdb" and isinstance(selectable, TextClause) and not selectable._bindparams:
            selectable = text(f"select * from ({selectable.text}) as reflected limit 0")
        return fallback(
            selectable=selectable, dialect=dialect, sqlalchemy_engine=sqlalchemy_engine, schema_name=schema_name
        )

    metrics_util.column_reflection_fallback = column_reflection_fallback
    _ADJUSTED.add("columns")


def plain_values_converted_directly() -> None:
    """GX turns every metric's kwargs into JSON-ready values to name the metric (`IDDict.to_id`, ~11,000
    times in check-marts), and its conversion tries pydantic, numpy and pandas types before it returns
    a str, int or None as they are (four numpy checks for each None). Plain values (None, str, int, bool,
    float, and dicts, lists, tuples and sets of them) are now converted as GX would convert them, at once;
    anything else still by GX."""
    if "json" in _ADJUSTED:
        return
    import math
    import sys

    import great_expectations.util as gx_util

    convert = GX_ORIGINALS["convert_to_json_serializable"] = gx_util.convert_to_json_serializable
    scalars = (str, int, bool, type(None))

    def convert_to_json_serializable(data):
        kind = type(data)
        if kind in scalars:
            return data
        if kind is float:
            return None if math.isnan(data) else data
        if kind is dict:
            return {str(key): convert_to_json_serializable(value) for key, value in data.items()}
        if kind is list or kind is tuple or kind is set:
            return [convert_to_json_serializable(value) for value in data]
        return convert(data)

    for name, module in list(sys.modules.items()):
        if name.startswith("great_expectations") and getattr(module, "convert_to_json_serializable", None) is convert:
            module.convert_to_json_serializable = convert_to_json_serializable
    _ADJUSTED.add("json")


def persist_duckdb_connection() -> None:
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


def no_duckdb_progress_bars() -> None:
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


def quiet_gx() -> None:
    """GX logs at INFO from a module whose level it pins to INFO; users should see only problems."""
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)


def no_batch_notice() -> None:
    """GX prints a notice to stdout each time it builds a custom SQL expectation whose query has no
    `{batch}` (dozens of times a run). The participants rules query the participant profile instead
    of the rows on purpose (flows/participant_profile.py); the notice would only fill the CLI's
    output, so that module's print goes to the debug log instead."""
    import great_expectations.expectations.core.unexpected_rows_expectation as module

    module.print = lambda *values, **_: log.debug(" ".join(str(value) for value in values))


def context(settings: Settings):
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
    ephemeral = gx.get_context(mode="ephemeral", project_config=config)
    # An ephemeral context "saves" its whole configuration, as YAML into a store in memory that nothing
    # reads, on every data source and asset added (~15 times a check stage, ~0.1 s): not here.
    ephemeral._save_project_config = lambda: None
    _index_reads_headers(ephemeral)
    _suites_read_once(ephemeral)
    return ephemeral


def _suites_read_once(ephemeral) -> None:
    """GX's suite collection deserialises a suite from its store on every `get` (marshmallow, then each
    expectation built anew): `add` reads the suite back, and each validation page reads its suite again
    for its meta. Here a suite is read from the store once and then kept until it is added or deleted
    again (nothing in the check stages changes a suite once added)."""
    factory = ephemeral.suites
    read, add, delete = factory.get, factory.add, factory.delete
    kept: dict = {}

    def get(name):
        if name not in kept:
            kept[name] = read(name=name)
        return kept[name]

    def add_suite(suite):
        kept.pop(suite.name, None)
        return add(suite)

    def delete_suite(name):
        kept.pop(name, None)
        return delete(name)

    factory.get, factory.add, factory.delete = get, add_suite, delete_suite


def _index_reads_headers(ephemeral) -> None:
    """The Data Docs index lists up to `DOCS_VALIDATIONS_LISTED` stored validation results, and GX's
    index builder loads each whole (its file, with every expectation's result, through marshmallow;
    ~3 ms each, more for a failed suite) for its success, meta and asset name. This context's
    `get_validation_result`, which only the index builder calls, now reads the stored JSON and returns
    those parts (`success`, `meta`, `statistics`, the suite) without the expectations' results."""
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    whole = ephemeral.get_validation_result

    def get_validation_result(
        expectation_suite_name,
        run_id=None,
        batch_identifier=None,
        validation_results_store_name=None,
        failed_only=False,
    ):
        if run_id is None or batch_identifier is None or failed_only:
            return whole(expectation_suite_name, run_id, batch_identifier, validation_results_store_name, failed_only)
        store = ephemeral.stores[validation_results_store_name or ephemeral.validation_results_store_name]
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=expectation_suite_name),
            run_id=run_id,
            batch_identifier=batch_identifier,
        )
        text = store._store_backend.get(store.key_to_tuple(key))
        if not text:
            return whole(expectation_suite_name, run_id, batch_identifier, validation_results_store_name, failed_only)
        stored = json.loads(text)
        return ExpectationSuiteValidationResult(
            success=stored["success"],
            results=[],
            suite_name=stored["suite_name"],
            suite_parameters=stored.get("suite_parameters"),
            statistics=stored.get("statistics"),
            meta=stored.get("meta"),
            id=stored.get("id"),
        )

    ephemeral.get_validation_result = get_validation_result


def close(datasource) -> None:
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
