"""The pipeline's stages as plain functions, written once: `flows/pipeline.py` wraps them as Prefect
tasks (the flow runs them in order) and `flows/cli.py` calls them for `jkn ingest`, `jkn check`,
`jkn metrics`, `jkn alerts` and `jkn report`.

landing -> ingest -> check staging -> build marts -> check marts -> publish -> alerts -> report

Each stage opens the DuckDB file for itself and closes it before it returns: Great Expectations
opens the same file between stages, and DuckDB allows one configuration per file in a process.
Nothing here imports Prefect, so the commands that do not run the flow never load it.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb

from flows import alerts as alert_rules
from flows import checks, database, metrics, notices, snapshot
from flows import ingest as loading
from flows.alerts import chart_process
from flows.backfill import build_window
from flows.errors import DataQualityError
from flows.ingest import LoadResult
from flows.runs import Window
from flows.settings import Settings

log = logging.getLogger(__name__)


def ingest(
    settings: Settings,
    paths: list[Path] | None = None,
    run_id: str | None = None,
    *,
    retry_rejected: bool = False,
    on_cluster: bool = False,
) -> list[LoadResult]:
    """Load the files named (default: the new files in the landing folder) into the raw tables.
    `on_cluster`: the flow reads new files on JKN_DASK_ADDRESS's workers, if set; this process registers."""
    read_many = loading.read_here
    if on_cluster and settings.dask_address:
        from flows.ingest import fanout  # imported only by runs on a cluster (it brings Dask)

        read_many = fanout.reader(settings.dask_address, settings.threads)
    with database.connected(settings) as con:
        database.load_seeds(con, settings.seeds)
        return loading.ingest_files(
            con,
            paths or loading.discover(settings.landing_dir),
            settings.reject_threshold_pct,
            run_id,
            pseudonym_key=settings.pseudonym_key,
            retry_rejected=retry_rejected,
            read_many=read_many,
        )


def build_staging(settings: Settings) -> int:
    """The staging views over the current files; returns how many files are staged (waiting for their checks)."""
    with database.connected(settings) as con:
        database.load_seeds(con, settings.seeds)
        metrics.build(con, settings.population_lag_months, layers=("staging",))
        return con.execute("select count(*) from ops.load_log where status = 'staged'").fetchone()[0]


def check_staging(settings: Settings, run_id: str) -> dict:
    """The flow's gate: the staging suites; a critical failure quarantines the batch (DataQualityError, exit 3)."""
    build_staging(settings)
    # Data Docs only if it stops the run: otherwise check-marts builds them once for both stages.
    return _check_and_gate(settings, run_id, checks.suite_files("staging."), defer_docs=True)


def try_staging_checks(settings: Settings, run_id: str) -> tuple[int, checks.CheckReport]:
    """`jkn check`: the staging suites on the staged files, results recorded (unless nothing is staged);
    nothing is quarantined or published. Returns the number of staged files and the report."""
    staged = build_staging(settings)
    report = checks.run_suites(settings, checks.suite_files("staging."), run_id)
    if not report.nothing_staged:
        # Suites over no rows would all pass; recording that would pass off nothing as a clean batch.
        with database.connected(settings) as con:
            checks.record(con, report)
    return staged, report


def build(settings: Settings, window: Window | None = None, early_charts: bool = False) -> list[str]:
    """The intermediate models and the marts (in `build`); a backfill's window month by month. `early_charts`
    (the flow, not a backfill): then the email charts' drawing process started and given charts to draw
    while the marts are checked and published (`draw_charts_early`)."""
    with database.connected(settings) as con:
        database.load_seeds(con, settings.seeds)
        if window is not None:
            build_window(con, window.first, window.last, settings.population_lag_months)
            return [model.relation for model in metrics.models() if model.layer != "staging"]
        built = metrics.build(con, settings.population_lag_months, layers=("intermediate", "marts"))
        if early_charts:
            draw_charts_early(con, settings)
        return built


def draw_charts_early(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """The email charts' drawing process started (flows/alerts/chart_process.py) and given each email
    recipient's own scope chart, from the built marts, to draw on another core while the marts are checked
    and published. The alerts take one only where the spec they compute from the published marts is the
    same; a failure here only leaves the charts to be drawn when the alerts ask for them."""
    chart_process.start_early()
    try:
        specs = alert_rules.early_chart_specs(con, settings)
    except Exception as error:  # noqa: BLE001 - an optimisation: the alerts stage reports what is wrong
        log.info("email charts not drawn early: %s: %s", type(error).__name__, error)
        return
    chart_process.draw_early(specs)


def check_marts(settings: Settings, run_id: str) -> dict:
    """The marts' suites; a critical failure keeps them unpublished (DataQualityError, exit 3)."""
    return _check_and_gate(settings, run_id, checks.suite_files("build."))


def publish(settings: Settings, window: Window | None = None) -> None:
    """Copy the checked marts to `mart` (a backfill: its months only) and write the readers' snapshot."""
    with database.connected(settings) as con:
        if window is None:
            metrics.publish(con)
        else:
            metrics.publish_months(con, window.first, window.last)


def alerts(settings: Settings, run_id: str) -> dict:
    """Evaluate the alert rules on the published marts and deliver; then tell ops about deliveries pending too long."""
    with database.connected(settings) as con:
        database.load_seeds(con, settings.seeds)  # thresholds edited in seeds/ count now
        summary = alert_rules.send(con, settings, run_id)
        # After this run's own attempts: what is still undelivered after JKN_PENDING_ALERT_HOURS reaches ops.
        late = notices.for_pending_deliveries(con, settings, database.utc_now())
        summary["notices"] = notices.send(con, settings, run_id, late)
        snapshot.refresh(con, run_id)  # readers see the alerts' new states (the marts are as published)
        return summary


def alerts_dry_run(settings: Settings, run_id: str) -> dict:
    """Who would get what, read from the published snapshot: nothing changes, a run under way is not held up."""
    with snapshot.connect(settings) as con:
        return alert_rules.send(con, settings, run_id, dry_run=True)


def report(settings: Settings) -> str:
    """The flow's report, with the manpower office's worklist beside it (CSV; recorded in ops.worklist_exports)."""
    from flows import report as reporting  # the report's modules bring Jinja and the charts
    from flows import worklist

    with _imports_left_uncollected(), database.connected(settings) as con:
        # CSV only on every run: openpyxl writes a national .xlsx (~250,000 companies) in over a minute,
        # so the workbook is made on request (`jkn worklist --format xlsx`)
        worklist.export(con, settings.report_dir, "ID", formats=("csv",), language=settings.locale)
        return str(reporting.write(con, settings))


def report_published(settings: Settings, locale: str | None = None, month: date | None = None) -> Path:
    """`jkn report`: the report from the published snapshot (it neither waits for nor holds up a run)."""
    from flows import report as reporting

    with _imports_left_uncollected(), snapshot.connect(settings) as con:
        return reporting.write(con, settings, locale=locale, month=month)


@contextmanager
def _imports_left_uncollected() -> Iterator[None]:
    """The objects alive now (mostly what the process imported: GX, Altair, Prefect, pandas) left out of
    Python's garbage collection while the report is made: the report's tens of thousands of rows and cells
    set off full collections, each of which walked all of them (~0.25 s a collection in a run's process)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def notify(settings: Settings, run_id: str, to_send: list[notices.Notice]) -> dict:
    """Send ops notices (refused files, failed checks, a crash), recorded in the database if it opens."""
    try:
        con = database.connect(settings)
    except Exception:  # noqa: BLE001 - the database may be what failed: tell ops all the same
        return notices.send(None, settings, run_id, to_send)
    with con:
        return notices.send(con, settings, run_id, to_send)


def _check_and_gate(settings: Settings, run_id: str, suites: list[Path], defer_docs: bool = False) -> dict:
    try:
        return checks.gate(settings, suites, run_id, defer_docs=defer_docs)
    except DataQualityError as failure:
        # What the ops notice names: the quarantined files and the months they bring (read as the checks began).
        batch = getattr(failure, "staged", [])
        failure.files = [name for name, _ in batch]
        failure.months = sorted({month for _, period in batch if (month := notices.month_of(period))})
        raise
