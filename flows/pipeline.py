"""The Prefect flow: the pipeline's stages in order, each a task. Logic lives in the stage modules.

landing -> ingest -> check staging -> build marts -> check marts -> publish -> alerts -> report

Only network steps retry (downloads, deliveries); a stage that failed on bad
data or a bug would fail the same way again. Every run, however it ends,
publishes three Prefect artifacts: a summary, coverage by region, a link to the report.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment as prefect_deployment
from prefect.runtime import flow_run as prefect_flow_run

from flows import alerts, checks, database, ingest, metrics, report, runs, snapshot
from flows.errors import ConfigError, DataQualityError
from flows.settings import Settings, load_settings

new_run_id = runs.new_run_id


def _not_a_usage_error(task, task_run, state) -> bool:
    """Retry a network step unless the request itself was wrong (not an http(s) URL, not an extract
    file name, a malformed checksum): asking again would not change that."""
    return not isinstance(state.result(raise_on_failure=False), ConfigError)


# Network steps: the functions retry quick glitches themselves; these retries outlast a longer
# outage, and the timeouts stop a hung server from holding the database for ever.
@task(name="download", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[60, 300], timeout_seconds=3600,
      retry_condition_fn=_not_a_usage_error)
def download_stage(settings: Settings, url: str) -> str:
    from flows import download  # imported only by runs that download (it brings requests)

    return str(download.download(url, settings.landing_dir).path)


@task(name="find-new-work", cache_policy=NO_CACHE)
def pending_stage(settings: Settings, files: list[str] | None) -> dict:
    return runs.pending_work(settings, files)


@task(name="ingest", cache_policy=NO_CACHE)
def ingest_stage(settings: Settings, run_id: str, files: list[str] | None = None) -> list[dict]:
    con = database.connect(settings)
    try:
        database.load_seeds(con, settings.seeds)
        paths = [Path(f) for f in files] if files else ingest.discover(settings.landing_dir)
        read_many = ingest.read_here
        if settings.dask_address:  # the new files are read on the cluster's workers; this process registers
            from flows.ingest import fanout

            read_many = fanout.reader(settings.dask_address, settings.threads)
        results = ingest.ingest_files(con, paths, settings.reject_threshold_pct, run_id,
                                      pseudonym_key=settings.pseudonym_key, read_many=read_many)
    finally:
        con.close()
    return [result.__dict__ for result in results]


@task(name="check-staging", cache_policy=NO_CACHE)
def check_staging_stage(settings: Settings, run_id: str) -> dict:
    con = database.connect(settings)
    try:
        metrics.build(con, settings.population_lag_months, layers=("staging",))
    finally:
        con.close()
    return _check_and_gate(settings, run_id, checks.suite_files("staging."))


@task(name="build-metrics", cache_policy=NO_CACHE)
def build_stage(settings: Settings) -> list[str]:
    con = database.connect(settings)
    try:
        database.load_seeds(con, settings.seeds)
        return metrics.build(con, settings.population_lag_months, layers=("intermediate", "marts"))
    finally:
        con.close()


@task(name="check-marts", cache_policy=NO_CACHE)
def check_marts_stage(settings: Settings, run_id: str) -> dict:
    return _check_and_gate(settings, run_id, checks.suite_files("build."))


@task(name="publish", cache_policy=NO_CACHE)
def publish_stage(settings: Settings, window: runs.Window | None = None) -> None:
    con = database.connect(settings)
    try:
        if window is None:
            metrics.publish(con)
        else:
            metrics.publish_months(con, window.first, window.last)
    finally:
        con.close()


# A network step (it delivers); a retry is safe: alert states are stored before delivery, so a
# second attempt composes nothing new and delivers what is still pending in ops.outgoing.
@task(name="alerts", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[60, 300], timeout_seconds=1800)
def alerts_stage(settings: Settings, run_id: str) -> dict:
    con = database.connect(settings)
    try:
        summary = alerts.send(con, settings, run_id)
        snapshot.publish(con, run_id)  # readers see the alerts' new states
        return summary
    finally:
        con.close()


@task(name="report", cache_policy=NO_CACHE)
def report_stage(settings: Settings) -> str:
    con = database.connect(settings, read_only=False)
    try:
        return str(report.write(con, settings))
    finally:
        con.close()


def _check_and_gate(settings: Settings, run_id: str, suites: list[Path]) -> dict:
    try:
        return checks.gate(settings, suites, run_id)
    except DataQualityError as failure:
        con = database.connect(settings)
        try:
            alerts.notify_data_quality(con, settings, run_id, failure)
        finally:
            con.close()
        raise


@task(name="artifacts", cache_policy=NO_CACHE)
def artifacts_stage(settings: Settings, run: runs.Run, read_marts: bool = True) -> None:
    marts = runs.published(settings) if read_marts else runs.Published()
    create_markdown_artifact(runs.summary_markdown(run, marts), key="jkn-run-summary",
                             description=f"jkn run {run.run_id}: {run.status}")
    if marts.coverage:
        create_table_artifact(runs.coverage_table(marts), key="jkn-coverage-by-region",
                              description=f"Published coverage by region, {marts.month}")
    if marts.report:
        create_link_artifact(runs.report_url(marts), link_text=f"jkn report, {marts.month}", key="jkn-report",
                             description="The managers' HTML report (a file on the machine that ran the flow)")


@contextmanager
def _reported(settings: Settings, run: runs.Run) -> Iterator[None]:
    """However the run ends, it leaves its artifacts: `_locked` publishes them while it still
    holds the database (they read the published marts); a run that never got that far (a
    download failed, another run held the database) leaves its summary alone."""
    try:
        yield
    except BaseException as error:
        if not run.reported:
            run.failed(error)
            _publish_artifacts(settings, run, read_marts=False)
        raise


@contextmanager
def _locked(settings: Settings, run: runs.Run) -> Iterator[None]:
    with database.writer_lock(settings, f"{run.purpose} {run.run_id}"):
        try:
            yield
        except BaseException as error:
            run.failed(error)
            raise
        finally:
            _publish_artifacts(settings, run)


def _publish_artifacts(settings: Settings, run: runs.Run, read_marts: bool = True) -> None:
    """Artifacts describe the run; failing to write them must not fail (or hide the error of) the run."""
    run.reported = True
    try:
        artifacts_stage(settings, run, read_marts)
    except Exception as error:  # noqa: BLE001
        get_run_logger().warning("could not publish the run's artifacts: %s", error)


def _purpose() -> str:
    """How the lock file names this run to anyone who finds the database busy."""
    deployment = prefect_deployment.name
    return f"jkn run (flow run {prefect_flow_run.name}, deployment {deployment})" if deployment else "jkn run"


@flow(name="jkn-pipeline", log_prints=True)
def pipeline(
    files: list[str] | None = None,
    urls: list[str] | None = None,
    from_month: str | None = None,
    to_month: str | None = None,
    skip_if_nothing_new: bool = False,
    lock_timeout_seconds: float | None = None,
) -> dict:
    """Ingest new extracts, check them, publish metrics, send alerts, write the report.

    files: extract files to load instead of the new files in the landing folder.
    urls: extracts to download into the landing folder first (http or https).
    from_month, to_month: backfill (YYYY-MM): recompute and republish the marts of these months
        only, from what is already loaded; alerts only if the window reaches the latest month.
    skip_if_nothing_new: the landing watch: finish at once when there is no new file, nothing
        staged and no unfinished run.
    lock_timeout_seconds: how long to wait for another run holding the database (default JKN_LOCK_TIMEOUT).
    """
    overrides = {} if lock_timeout_seconds is None else {"lock_timeout": lock_timeout_seconds}
    settings = load_settings(**overrides)
    run = runs.Run(new_run_id(), purpose=_purpose(), window=runs.Window.parse(from_month, to_month),
                   database=str(settings.db_path))
    if run.window and (files or urls):
        raise ConfigError("a backfill recomputes months from what is loaded; it takes no files")
    logger = get_run_logger()
    with _reported(settings, run):
        # Downloads come before the lock: a slow server must not keep other runs off the database.
        downloaded = [download_stage(settings, url) for url in urls or []]
        files = [*files, *downloaded] if files else files
        with _locked(settings, run):
            if skip_if_nothing_new:
                run.pending = pending_stage(settings, files)
                if not runs.has_work(run.pending):
                    run.status = "nothing_new"
                    logger.info("nothing new in %s: nothing to do", settings.landing_dir)
                    return run.result()
            with runs.recorded(settings, run, "backfill" if run.window else "run"):
                if run.window is None:
                    run.files = ingest_stage(settings, run.run_id, files)
                run.add_checks(check_staging_stage(settings, run.run_id))
                build_stage(settings)
                run.add_checks(check_marts_stage(settings, run.run_id))
                publish_stage(settings, run.window)
                due, why_not = runs.alerts_due(settings, run.window)
                run.alerts = alerts_stage(settings, run.run_id) if due else {"skipped": why_not}
                run.report = report_stage(settings)
    logger.info("run %s %s: %d file(s) seen, %s message(s) sent", run.run_id, run.status, len(run.files),
                run.alerts.get("messages", 0))
    return run.result()


if __name__ != "flows.pipeline":
    # A deployment (prefect.yaml's entrypoint `flows/pipeline.py:pipeline`) loads this file by its path,
    # under another module name ('pipeline'). Objects of that module are pickled by that name, which a
    # Dask worker cannot import (JKN_DASK_ADDRESS: the flow run's context travels with each task): hand
    # the deployment the flow of the importable module instead.
    from flows.pipeline import pipeline  # noqa: E402, F401, F811
