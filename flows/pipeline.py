"""The Prefect flows: the pipeline's stages in order, each a task. Logic lives in the stage modules.

landing -> ingest -> check staging -> build marts -> check marts -> publish -> alerts -> report
"""

from __future__ import annotations

import uuid
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows import alerts, checks, database, ingest, metrics, report
from flows.errors import DataQualityError
from flows.settings import Settings, load_settings


def new_run_id() -> str:
    return uuid.uuid4().hex


@task(name="ingest", cache_policy=NO_CACHE)
def ingest_stage(settings: Settings, run_id: str, files: list[str] | None = None) -> list[dict]:
    con = database.connect(settings)
    try:
        database.load_seeds(con, settings.seeds)
        paths = [Path(f) for f in files] if files else ingest.discover(settings.landing_dir)
        results = ingest.ingest_files(con, paths, settings.reject_threshold_pct, run_id,
                                      pseudonym_key=settings.pseudonym_key)
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
def publish_stage(settings: Settings) -> None:
    con = database.connect(settings)
    try:
        metrics.publish(con)
    finally:
        con.close()


@task(name="alerts", cache_policy=NO_CACHE)
def alerts_stage(settings: Settings, run_id: str) -> dict:
    con = database.connect(settings)
    try:
        return alerts.send(con, settings, run_id)
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


@flow(name="jkn-pipeline", log_prints=True)
def pipeline(files: list[str] | None = None) -> dict:
    """Ingest new extracts, check them, publish metrics, send alerts, write the report."""
    settings = load_settings()
    run_id = new_run_id()
    logger = get_run_logger()
    with database.writer_lock(settings, f"jkn run {run_id}"):
        loaded = ingest_stage(settings, run_id, files)
        staging_checks = check_staging_stage(settings, run_id)
        build_stage(settings)
        mart_checks = check_marts_stage(settings, run_id)
        publish_stage(settings)
        sent = alerts_stage(settings, run_id)
        report_path = report_stage(settings)
    logger.info("run %s done: %d file(s) seen, %d message(s) sent", run_id, len(loaded), sent["messages"])
    return {
        "run_id": run_id,
        "files": loaded,
        "warnings": staging_checks["warnings"] + mart_checks["warnings"],
        "alerts": sent,
        "report": report_path,
        "database": str(settings.db_path),
    }
