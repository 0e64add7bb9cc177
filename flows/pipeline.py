"""The Prefect flow: the pipeline's stages in order, each a task wrapping a function of flows/stages.py.

landing -> ingest -> check staging -> build marts -> check marts -> publish -> alerts and report

(the report is made beside the alerts, in a thread of its own: it reads the published marts, not the
alerts' states, and the two together took 3.1-3.4 s one after the other, 2.2-2.3 s side by side)

Only network steps retry (downloads, deliveries); a stage that failed on bad
data or a bug would fail the same way again. Every run, however it ends,
publishes three Prefect artifacts: a summary, coverage by region, a link to the report.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

from prefect import flow, get_run_logger, task
from prefect.artifacts import Artifact, create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment as prefect_deployment
from prefect.runtime import flow_run as prefect_flow_run
from pydantic import Field

from flows import checks, database, notices, prefect_patches, progress, runs, stages
from flows.alerts import chart_process
from flows.errors import ConfigError, DataQualityError, FilesRefused, JknError
from flows.settings import Settings, load_settings

prefect_patches.apply()  # a flow run ends when its work does, not up to a second later


def _not_a_usage_error(task, task_run, state) -> bool:
    """Retry a network step unless the request itself was wrong (not an http(s) URL, not an extract
    file name, a malformed checksum): asking again would not change that."""
    return not isinstance(state.result(raise_on_failure=False), ConfigError)


# Network steps: the functions retry quick glitches themselves; these retries outlast a longer
# outage, and the timeouts stop a hung server from holding the database for ever.
@task(
    name="download",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[60, 300],
    timeout_seconds=3600,
    retry_condition_fn=_not_a_usage_error,
)
def download_stage(settings: Settings, url: str) -> str:
    from flows import download  # imported only by runs that download (it brings requests)

    return str(download.download(url, settings.landing_dir).path)


@task(name="find-new-work", cache_policy=NO_CACHE)
def pending_stage(settings: Settings, files: list[str] | None) -> dict:
    return runs.pending_work(settings, files)


@task(name="ingest", cache_policy=NO_CACHE)
@progress.reported("ingest", progress.files_summary)
def ingest_stage(settings: Settings, run_id: str, files: list[str] | None = None) -> list[dict]:
    paths = [Path(f) for f in files] if files else None
    return [result.__dict__ for result in stages.ingest(settings, paths, run_id, on_cluster=True)]


@task(name="check-staging", cache_policy=NO_CACHE)
@progress.reported("check staging", progress.checks_summary)
def check_staging_stage(settings: Settings, run_id: str) -> dict:
    return stages.check_staging(settings, run_id)


@task(name="build-metrics", cache_policy=NO_CACHE)
@progress.reported("build metrics", lambda models: f"{len(models)} model(s)")
def build_stage(settings: Settings, window: runs.Window | None = None, early_charts: bool = False) -> list[str]:
    return stages.build(settings, window, early_charts)


@task(name="check-marts", cache_policy=NO_CACHE)
@progress.reported("check marts", progress.checks_summary)
def check_marts_stage(settings: Settings, run_id: str) -> dict:
    return stages.check_marts(settings, run_id)


@task(name="publish", cache_policy=NO_CACHE)
@progress.reported("publish")
def publish_stage(settings: Settings, window: runs.Window | None = None) -> None:
    stages.publish(settings, window)


# A network step (it delivers); a retry is safe: alert states are stored before delivery, so a
# second attempt composes nothing new and delivers what is still pending in ops.outgoing.
@task(name="alerts", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[60, 300], timeout_seconds=1800)
@progress.reported("alerts", progress.alerts_summary)
def alerts_stage(settings: Settings, run_id: str) -> dict:
    return stages.alerts(settings, run_id)


@task(name="report", cache_policy=NO_CACHE)
@progress.reported("report")
def report_stage(settings: Settings) -> str:
    return stages.report(settings)


@task(name="notify-ops", cache_policy=NO_CACHE)
def notify_stage(settings: Settings, run_id: str, to_send: list[notices.Notice]) -> dict:
    return stages.notify(settings, run_id, to_send)


def _notify_ops(settings: Settings, run: runs.Run, failure: BaseException | None) -> None:
    """Refused files, a failed critical check or a crash reach the ops recipients; never raises."""
    to_send = notices.for_refused_files(run.files, settings)
    if isinstance(failure, DataQualityError):
        to_send.append(
            notices.for_failed_checks(
                failure, getattr(failure, "files", []), getattr(failure, "months", []), run.run_id
            )
        )
    elif isinstance(failure, Exception):
        months = [notices.month_of(item.get("period")) for item in run.files if item.get("status") == "staged"]
        to_send.append(notices.for_crash(failure, run.run_id, max(filter(None, months), default=None)))
    if not to_send:
        return
    try:
        notify_stage(settings, run.run_id, to_send)
    except Exception as error:  # noqa: BLE001
        get_run_logger().error("could not tell ops: %s: %s", type(error).__name__, error)


def _log_failure(error: BaseException) -> None:
    """The error as lines in the flow run's log (Prefect's own state line keeps it on one line)."""
    lines = error.lines() if isinstance(error, DataQualityError) else str(error).splitlines() or [""]
    name = "" if isinstance(error, JknError) else f"{type(error).__name__}: "
    get_run_logger().error("%s%s", name, "\n".join(lines), extra={"jkn_printed_by_cli": True})


@task(name="artifacts", cache_policy=NO_CACHE)
def artifacts_stage(settings: Settings, run: runs.Run, read_marts: bool = True) -> None:
    marts = runs.published(settings) if read_marts else runs.Published()
    create_markdown_artifact(
        runs.summary_markdown(run, marts), key="jkn-run-summary", description=f"jkn run {run.run_id}: {run.status}"
    )
    if marts.coverage:
        create_table_artifact(
            runs.coverage_table(marts),
            key="jkn-coverage-by-region",
            description=f"Published coverage by region, {marts.month}",
        )
    if marts.report:
        served_at = settings.report_url if settings else None
        create_link_artifact(
            runs.report_url(marts, served_at),
            link_text=f"jkn report, {marts.month}",
            key="jkn-report",
            description="The managers' HTML report"
            + ("" if served_at else " (a file on the machine that ran the flow; set JKN_REPORT_URL)"),
        )


@contextmanager
def _reported(run: runs.Run) -> Iterator[None]:
    """However the run ends, it leaves its artifacts: `_locked` publishes them while it still
    holds the database (they read the published marts); a run that never got that far (a
    download failed, another run held the database) leaves its summary alone."""
    try:
        yield
    except BaseException as error:
        if not run.reported:
            run.failed(error)
            _publish_artifacts(None, run, read_marts=False)
        raise


@contextmanager
def _chart_process_closed() -> Iterator[None]:
    """A drawing process started early and not taken by the alerts (they were not due, or failed) ends with the run."""
    try:
        yield
    finally:
        chart_process.close_early()


@contextmanager
def _locked(settings: Settings, run: runs.Run) -> Iterator[None]:
    with database.writer_lock(settings, f"{run.purpose} {run.run_id}"):
        failure = None
        try:
            yield
        except BaseException as error:
            failure = error
            run.failed(error)
            _log_failure(error)
            raise
        finally:
            _notify_ops(settings, run, failure)
            _publish_artifacts(settings, run)


def _publish_artifacts(settings: Settings | None, run: runs.Run, read_marts: bool = True) -> None:
    """Artifacts describe the run; failing to write them must not fail (or hide the error of) the run."""
    run.reported = True
    _reported_flow_runs.add(str(prefect_flow_run.id))
    try:
        artifacts_stage(settings, run, read_marts)
    except Exception as error:  # noqa: BLE001
        get_run_logger().warning("could not publish the run's artifacts: %s", error)


# Flow runs whose own code published their artifacts; the failure hook covers the others.
_reported_flow_runs: set[str] = set()


def _summary_when_the_flow_never_ran(flow, flow_run, state) -> None:
    """A run that failed before its code ran (Prefect refused a parameter) still leaves its summary."""
    if str(flow_run.id) in _reported_flow_runs:
        return
    try:
        # The hook runs outside the flow run's context (Prefect refused it before it started), so the
        # artifact names its flow run itself; Prefect warns about that form, which is what it is for.
        warnings.filterwarnings("ignore", "Artifact creation outside", FutureWarning)
        Artifact(
            type="markdown",
            key="jkn-run-summary",
            flow_run_id=flow_run.id,
            description=f"jkn flow run {flow_run.name}: failed before it started",
            data=f"# jkn flow run {flow_run.name}: failed before it started\n\n**Error:** "
            f"{runs.mask_identifiers(' '.join((state.message or '').split()))}\n\nNothing was loaded, checked, "
            "published, alerted or reported. Correct the parameter and run again.\n",
        ).create()
    except Exception as error:  # noqa: BLE001
        get_run_logger().warning("could not publish the run's summary: %s", error)


def _purpose() -> str:
    """How the lock file names this run to anyone who finds the database busy."""
    deployment = prefect_deployment.name
    return f"jkn run (flow run {prefect_flow_run.name}, deployment {deployment})" if deployment else "jkn run"


# What a month parameter must look like; Prefect checks it (and shows it in the run form) before the run starts.
Month = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2022-06"])]
MONTH_PARAMETERS = ("from_month", "to_month")


@flow(name="jkn-pipeline", log_prints=True, on_failure=[_summary_when_the_flow_never_ran])
def pipeline(
    files: list[str] | None = None,
    urls: list[str] | None = None,
    from_month: Month | None = None,
    to_month: Month | None = None,
    skip_if_nothing_new: bool = False,
    lock_timeout_seconds: Annotated[float, Field(ge=0)] | None = None,
) -> dict:
    """Ingest new extracts, check them, publish metrics, send alerts, write the report.

    Args:
        files: Extract files to load (paths on the machine that runs the flow) instead of the new
            files in the landing folder.
        urls: Extracts to download (http or https) into the landing folder first.
        from_month: Backfill from this month (YYYY-MM): recompute and republish the marts of the months
            from from_month to to_month only, from what is already loaded; no files are loaded, and alerts
            only if the window reaches the latest month. Empty: from the first month (if to_month is set).
        to_month: Backfill up to this month (YYYY-MM). Empty: to the latest month (if from_month is set).
        skip_if_nothing_new: The landing watch: finish at once when there is no new file, nothing staged
            and no unfinished run.
        lock_timeout_seconds: Seconds to wait for another run holding the database before failing (exit 4);
            empty: JKN_LOCK_TIMEOUT.
    """
    overrides = {} if lock_timeout_seconds is None else {"lock_timeout": lock_timeout_seconds}
    run = runs.Run(runs.new_run_id(), purpose=_purpose())
    logger = get_run_logger()
    with _reported(run):
        settings = load_settings(**overrides)
        run.database = str(settings.db_path)
        run.window = runs.Window.parse(from_month, to_month, names=MONTH_PARAMETERS)
        if run.window and (files or urls):
            raise ConfigError("a backfill recomputes months from what is loaded; it takes no files (files, urls)")
        # Downloads come before the lock: a slow server must not keep other runs off the database.
        downloaded = [download_stage(settings, url) for url in urls or []]
        files = [*files, *downloaded] if files else files
        with _locked(settings, run), _chart_process_closed():
            if skip_if_nothing_new:
                run.pending = pending_stage(settings, files)
                if not runs.has_work(run.pending):
                    run.status = "nothing_new"
                    logger.info("nothing new in %s: nothing to do", settings.landing_dir)
                    return run.result()
            with runs.recorded(settings, run, "backfill" if run.window else "run"):
                checks.import_gx_early()  # check-staging's 3 s of imports, while ingest works in DuckDB
                if run.window is None:
                    run.files = ingest_stage(settings, run.run_id, files)
                run.add_checks(check_staging_stage(settings, run.run_id))
                # the email charts' drawing starts after the build, while the marts are checked and published
                build_stage(settings, run.window, early_charts=run.window is None)
                run.add_checks(check_marts_stage(settings, run.run_id))
                publish_stage(settings, run.window)
                due, why_not = runs.alerts_due(settings, run.window)
                # The report reads the published marts, never the alerts' states: it is made beside them.
                report = report_stage.submit(settings)
                try:
                    run.alerts = alerts_stage(settings, run.run_id) if due else {"skipped": why_not}
                except BaseException:
                    report.wait()  # made (or failed) before the run ends; the alerts' error is the run's
                    raise
                run.report = report.result()
    logger.info(
        "run %s %s: %d file(s) seen, %s message(s) sent",
        run.run_id,
        run.status,
        len(run.files),
        run.alerts.get("messages", 0),
    )
    refused = [item["file_name"] for item in run.files if item.get("status") == "rejected"]
    if refused:
        # docs/contract.md section 4: published, but exit 5, so the flow run shows Failed and monitoring sees it.
        raise FilesRefused(refused, run.result())
    return run.result()


if __name__ != "flows.pipeline":
    # A deployment (prefect.yaml's entrypoint `flows/pipeline.py:pipeline`) loads this file by its path,
    # under another module name ('pipeline'). Objects of that module are pickled by that name, which a
    # Dask worker cannot import (JKN_DASK_ADDRESS: the flow run's context travels with each task): hand
    # the deployment the flow of the importable module instead.
    from flows.pipeline import pipeline  # noqa: E402, F401, F811
