"""Run the SQL models in `sql/` in one explicit order, then publish the marts.

Staging models become views over `raw`; intermediate and mart models become
tables in the `build` schema. Marts reach `mart` only through `publish`, which
copies every built mart in one transaction, so a failed check or a crash
half-way leaves the published marts exactly as they were. With them it (re)creates
the views of `sql/views/` in schema `report`: what the report and the CLI read.

The two employer marts (`SWAPPED_MARTS`, a row per company and month) are not copied: written a second
time they cost most of a publish. DuckDB cannot move a table from one schema to another, so they are
built into `mart` under a name of their own, `mart.<name>__built` (`built_table`), with `build.<name>` a
view over it: what the later models, the checks and a backfill read. Publish drops the published table
and renames the built one in its place, in its one transaction; `build.<name>` then reads the published
table (the same rows). The snapshot and the publication labels leave `__built` tables out.

An intermediate model that only the models after it read, in the same connection (`TEMP_MODELS`), is a
temp table (`temp.<name>`): never written to the file. The build's tables are written without FSST, the
string compression that cost most of writing the employer marts (`build_writes`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from flows import participant_profile, parts, snapshot, views
from flows.ingest import slices
from flows.settings import PROJECT_ROOT

log = logging.getLogger(__name__)

SQL_DIR = PROJECT_ROOT / "sql"

# The one place the run order lives; tests/test_metrics.py checks it against sql/.
MODELS = (
    "staging/current_loads",
    "staging/current_rows",
    "staging/region_counts",
    "staging/population",
    "staging/participants",
    "staging/employers",
    "staging/workforce",
    "intermediate/region_month_counts",
    "intermediate/region_population",
    "intermediate/region_minimum_wages",
    "intermediate/employer_companies",
    "intermediate/employer_worker_wages",
    "intermediate/region_reporting_months",
    "marts/coverage",
    "marts/coverage_by_segment",
    "marts/trajectory",
    "marts/employer_compliance",
    "marts/compliance_by_region",
    "marts/enforcement_worklist",
    "marts/region_reporting",
    # the report's and the CLI's views over the published marts (schema `report`), made by publish
    "views/scopes",
    "views/segments",
    "views/compliance",
    "views/worklist",
    "views/worklist_groups",
    "views/trajectory_series",
    "views/data_quality",
    "views/loads",
    "views/open_alerts",
    "views/region_actions",
    "views/employer_actions",
    "views/check_counts",
    "views/not_reported",
    "views/partial_scopes",
    "views/forecasts",
)

# Intermediate models read only by the models after them, in the build's own connection (a backfill makes
# them again for its window, flows/backfill.py): temp tables, `temp.<name>`, which DuckDB neither compresses
# nor writes to the file (employer_companies: 200,000 rows at national scale, a third of a second to write).
TEMP_MODELS = ("employer_companies",)

# Models that are table macros, with their parameters: the one query several views call with their own kind.
MACRO_PARAMETERS = {"current_rows": "extract_kind"}

# Contribution rules for wage earners (DOMAIN.md; Perpres 64/2020): 5% of the wage floored at the regional
# minimum wage and capped, split 4% employer / 1% worker. Sanctions (PP 86/2013): a fine of 0.1% per month
# of the contributions owed.
CONTRIBUTION_RULES = {
    "contribution_wage_cap_idr": 12_000_000,
    "contribution_rate_pct": 5.0,
    "employer_share_pct": 4.0,
    "worker_share_pct": 1.0,
    "fine_pct_per_month": 0.1,
}


@dataclass(frozen=True)
class Model:
    layer: str
    name: str

    @property
    def path(self) -> Path:
        return SQL_DIR / self.layer / f"{self.name}.sql"

    @property
    def relation(self) -> str:
        if self.name in TEMP_MODELS:
            return f"temp.{self.name}"
        schema = {"staging": "staging", "views": "report"}.get(self.layer, "build")
        return f"{schema}.{self.name}"

    @property
    def materialization(self) -> str:
        if self.name in MACRO_PARAMETERS:
            return "macro"
        if self.name in TEMP_MODELS:
            return "temp table"
        return "view" if self.layer in ("staging", "views") else "table"


BUILD_LAYERS = ("staging", "intermediate", "marts")


def models(layers: tuple[str, ...] = BUILD_LAYERS) -> list[Model]:
    """The models of `layers` in run order: by default those a build makes (the views come with publish)."""
    return [Model(*entry.split("/")) for entry in MODELS if entry.split("/")[0] in layers]


def mart_names() -> list[str]:
    return [model.name for model in models() if model.layer == "marts"]


# The loads current now (flows/ingest/slices.py), as one text; `build.built_from` keeps the value
# the build tables were last built whole from (flows/backfill.py).
CURRENT_LOADS_LIST = (
    f"select coalesce(string_agg(load_id::varchar, ',' order by load_id), '') from ({slices.CURRENT_LOADS})"
)


# Marts built into `mart` under BUILT_SUFFIX and published by a rename (the module docstring).
SWAPPED_MARTS = ("employer_compliance", "enforcement_worklist")
BUILT_SUFFIX = snapshot.BUILT_SUFFIX


def built_table(name: str) -> str:
    """The table a swapped mart is built into (`build.<name>` is a view over it until the next publish)."""
    return f"mart.{name}{BUILT_SUFFIX}"


def _relation_type(con: duckdb.DuckDBPyConnection, relation: str) -> str | None:
    """'BASE TABLE', 'VIEW' or None (no such relation)."""
    schema, name = relation.split(".")
    found = con.execute(
        "select table_type from information_schema.tables where table_catalog = current_database() "
        "and table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchone()
    return found[0] if found else None


def _point_build_view(con: duckdb.DuckDBPyConnection, name: str, table: str) -> None:
    """`build.<name>` as a view over `table` (a table an earlier release built there is dropped)."""
    if _relation_type(con, f"build.{name}") == "BASE TABLE":
        con.execute(f"drop table build.{name}")
    con.execute(f"create or replace view build.{name} as select * from {table}")


def drop_stored_temp_model(con: duckdb.DuckDBPyConnection, model: Model) -> None:
    """The table an earlier release stored for a model that is now a temp table (`TEMP_MODELS`), dropped."""
    con.execute(f"drop table if exists build.{model.name}")


def build_model(con: duckdb.DuckDBPyConnection, model: Model) -> str:
    """Create one build model (`run_model`; a swapped mart into `built_table`, `build.<name>` a view over it)."""
    if model.name in TEMP_MODELS:
        drop_stored_temp_model(con, model)
        return run_model(con, model)
    if model.layer != "marts" or model.name not in SWAPPED_MARTS:
        return run_model(con, model)
    sql = model.path.read_text(encoding="utf-8")
    try:
        con.execute(f"create or replace table {built_table(model.name)} as\n{sql}")
    except duckdb.Error as error:
        raise RuntimeError(f"{model.path.relative_to(PROJECT_ROOT)}: {error}") from error
    _point_build_view(con, model.name, built_table(model.name))
    return model.relation


def writable_build(con: duckdb.DuckDBPyConnection, model: Model) -> str:
    """The table whose rows a backfill replaces for `model`: its `build` table, or a swapped mart's
    `built_table` (made from the published rows first when `build.<name>` reads the published table)."""
    if model.layer != "marts" or model.name not in SWAPPED_MARTS:
        return model.relation
    table = built_table(model.name)
    if _relation_type(con, table) is None:
        con.execute(f"create table {table} as select * from build.{model.name}")
        _point_build_view(con, model.name, table)
    return table


# DuckDB tries each compression method on each column of a table it writes. FSST, for strings that are mostly
# distinct (the employers' keys, ids and names: 4 columns of 275,000 rows in each employer mart), cost ~0.4
# CPU s of writing the employer marts at national scale; without it those columns are stored as they are
# (1 M bench: 95 -> 177 blocks of 256 KB for the two marts), every other method stays.
BUILD_DISABLED_COMPRESSION = "fsst"


@contextmanager
def build_writes(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The build's tables written without `BUILD_DISABLED_COMPRESSION` (a setting of the database instance,
    restored after)."""
    before = con.execute("select current_setting('disabled_compression_methods')").fetchone()[0]
    methods = sorted({method.strip().lower() for method in before.split(",") if method.strip()})
    disabled = ",".join(sorted({*methods, BUILD_DISABLED_COMPRESSION}))
    con.execute(f"set disabled_compression_methods = '{disabled}'")
    try:
        yield
    finally:
        if methods:
            con.execute(f"set disabled_compression_methods = '{','.join(methods)}'")
        else:
            con.execute("reset disabled_compression_methods")


def set_parameters(con: duckdb.DuckDBPyConnection, population_lag_months: int = 0) -> None:
    """Values the SQL reads with getvariable()."""
    con.execute("set variable population_lag_months = ?", [population_lag_months])
    for name, value in CONTRIBUTION_RULES.items():
        con.execute(f"set variable {name} = ?", [value])


def run_model(con: duckdb.DuckDBPyConnection, model: Model) -> str:
    """Create one model from its file as its materialization; an error names the file. Returns the relation."""
    sql = model.path.read_text(encoding="utf-8")
    relation = model.relation
    if model.materialization == "macro":
        relation = f"{relation}({MACRO_PARAMETERS[model.name]}) as table"
    else:
        relation += " as"
    try:
        con.execute(f"create or replace {model.materialization} {relation}\n{sql}")
    except duckdb.Error as error:
        raise RuntimeError(f"{model.path.relative_to(PROJECT_ROOT)}: {error}") from error
    return model.relation


def build(
    con: duckdb.DuckDBPyConnection,
    population_lag_months: int = 0,
    layers: tuple[str, ...] = ("staging", "intermediate", "marts"),
) -> list[str]:
    """Create the models of `layers` in order; return the relations built."""
    set_parameters(con, population_lag_months)
    if "intermediate" in layers:
        # region_month_counts reads every current participants load's profile, not its rows
        participant_profile.profile_loads(con)
    built = []
    with build_writes(con):
        for model in (model for model in models() if model.layer in layers):
            built.append(build_model(con, model))
            log.debug("built %s", model.relation)
    if {"intermediate", "marts"} <= set(layers):
        con.execute(f"create or replace table build.built_from as select ({CURRENT_LOADS_LIST}) as current_loads")
    return built


def create_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The views of sql/views/ over the published marts, in schema `report` (copied into the snapshot)."""
    con.execute("create schema if not exists report")
    created = []
    for model in models(("views",)):
        created.append(run_model(con, model))
        con.execute(f"comment on view {model.relation} is '{views.label(model.name)}'")
    return created


def _publish_mart(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """`mart.<name>` made the built one: a swapped mart by a rename (nothing to do when nothing was built
    since its last publish), any other by a copy."""
    if name in SWAPPED_MARTS and _relation_type(con, f"build.{name}") == "VIEW":
        if _relation_type(con, built_table(name)) is not None:
            con.execute(f"drop table if exists mart.{name}")
            con.execute(f"alter table {built_table(name)} rename to {name}")
            _point_build_view(con, name, f"mart.{name}")
        return
    con.execute(f"create or replace table mart.{name} as select * from build.{name}")


def publish(con: duckdb.DuckDBPyConnection) -> None:
    """Make every built mart the published one (`mart`) in one transaction."""
    con.begin()
    try:
        for name in mart_names():
            _publish_mart(con, name)
        create_views(con)
        snapshot.label_marts(con)
        # a load no province takes its rows from any more (flows/ingest/slices.py) is superseded
        con.execute(
            "update ops.load_log set status = 'superseded' where status = 'published' and "
            f"load_id not in ({slices.CURRENT_LOADS})"
        )
        con.execute("update ops.load_log set status = 'published' where status = 'staged'")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    # A corrected file replaced these; their parts are no longer read by anything.
    parts.refresh_views(con)
    parts.remove_unregistered(con)
    snapshot.publish(con)


def publish_months(con: duckdb.DuckDBPyConnection, first: date, last: date) -> None:
    """Backfill: replace the rows of months `first`..`last` in every mart with the
    built ones, in one transaction; other months keep their published rows, and
    file statuses are left for the next regular run. A mart without a `month`
    column is replaced whole. Where the published mart has the built one's columns, the window's
    rows are deleted and inserted, so the other months' rows are not written again (a year of
    national history is millions of employer rows)."""
    window = {"first": first, "last": last}
    con.begin()
    try:
        for name in mart_names():
            if name in SWAPPED_MARTS and _relation_type(con, built_table(name)) is None:
                continue  # build.<name> reads the published table: nothing was built since it was published
            built = con.execute(f"select column_name, column_type from (describe build.{name})").fetchall()
            exists = con.execute(
                "select count(*) from information_schema.tables where table_schema = 'mart' and table_name = ?",
                [name],
            ).fetchone()[0]
            if "month" not in {column for column, _ in built} or not exists:
                _publish_mart(con, name)
                continue
            published = con.execute(f"select column_name, column_type from (describe mart.{name})").fetchall()
            if published == built:
                con.execute(f"delete from mart.{name} where month between $first and $last", window)
                con.execute(
                    f"insert into mart.{name} select * from build.{name} where month between $first and $last", window
                )
                continue
            con.execute(
                f"create or replace table mart.{name} as "
                f"select * from mart.{name} where month not between $first and $last "
                f"union all by name select * from build.{name} where month between $first and $last",
                window,
            )
        create_views(con)
        snapshot.label_marts(con)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    snapshot.publish(con)
