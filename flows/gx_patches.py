"""Adjustments of Great Expectations 1.24.1's internals for jkn's checks, made once per process by
`flows.gx_setup.prepare` (which also sets up the Data Docs they render).

Each function replaces one GX function or method with one that gives GX's own result at less cost (or, for
`persist_duckdb_connection`, at all: see `flows.gx_setup`), and keeps GX's original in `GX_ORIGINALS` where
tests/test_gx_setup.py compares the two. A GX upgrade must re-run those tests and tests/test_checks.py.
"""

from __future__ import annotations

import functools
import logging

from flows.check_results import EXAMPLES

log = logging.getLogger(__name__)

# What the failed custom SQL expectations of the validation under way found (their first rows), by
# expectation id: GX fetches them anyway but returns them only in its COMPLETE format.
UNEXPECTED_ROWS: dict[str, list[dict]] = {}
ADJUSTED: set[str] = set()
# GX's own functions that `prepare` replaced, by name (tests compare the replacements with them).
GX_ORIGINALS: dict[str, object] = {}


def custom_sql_counted_from_its_rows() -> None:
    """GX runs each custom SQL rule (`unexpected_rows_expectation`) twice: its query for up to
    200 rows (`unexpected_rows_query.table`) and `select count(*)` over it
    (`unexpected_rows_query.row_count`). On SQL data sources the count is taken from the rows
    when there are fewer than 200 (the query returned them all), so a rule runs once; a rule that
    finds 200 rows or more is still counted by GX's own query. Same counts, same results."""
    if "row_count" in ADJUSTED:
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
    ADJUSTED.add("row_count")


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
    if "unexpected_values" in ADJUSTED:
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
    ADJUSTED.add("unexpected_values")


def keep_unexpected_rows() -> None:
    """Keep the first rows a failed custom SQL expectation found (`UNEXPECTED_ROWS`, by expectation
    id), from the query GX ran to validate it, so that examples need no second run of the rule."""
    if "unexpected_rows" in ADJUSTED:
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
    ADJUSTED.add("unexpected_rows")


def configuration_once_per_lookup() -> None:
    """GX rebuilds an expectation's configuration (a pydantic `dict()` and an `ExpectationConfiguration`)
    each time it reads one of its kwargs: `_get_domain_kwargs`, `_get_success_kwargs` and
    `_get_runtime_kwargs` rebuild it once per key, `_get_success_kwarg` twice, ~85 builds per expectation
    per validation (about a third of GX's own time in check-marts). They now build it once per call;
    the configuration depends only on the expectation, so the values are the same. The class name ->
    expectation type conversion (two regular expressions, on every build) is remembered per name."""
    if "configuration" in ADJUSTED:
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
    ADJUSTED.add("configuration")


def columns_named_without_rows() -> None:
    """duckdb-engine cannot reflect a query's columns, so GX falls back to running the batch's query and
    reading the names off the result: the whole query (on a staging view, every column of every staged
    row; ~0.1 s for the participants). On DuckDB the query is now run as `select * from (...) limit 0`,
    the same column names and no rows."""
    if "columns" in ADJUSTED:
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
    ADJUSTED.add("columns")


def plain_values_converted_directly() -> None:
    """GX turns every metric's kwargs into JSON-ready values to name the metric (`IDDict.to_id`, ~11,000
    times in check-marts), and its conversion tries pydantic, numpy and pandas types before it returns
    a str, int or None as they are (four numpy checks for each None). Plain values (None, str, int, bool,
    float, and dicts, lists, tuples and sets of them) are now converted as GX would convert them, at once;
    anything else still by GX."""
    if "json" in ADJUSTED:
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
    ADJUSTED.add("json")


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
