"""The deployments in `prefect.yaml`, for `jkn serve`.

`prefect deploy --all` reads `prefect.yaml` and registers the deployments on a
work pool; `jkn serve` reads the same file and serves the same deployments
(name, schedules, parameters, concurrency limit) from this machine with
Prefect's `serve`, without a work pool. One file, so the two cannot drift
apart; tests/test_ops.py checks that both register the same schedules.
"""

from __future__ import annotations

import importlib
from datetime import timedelta
from pathlib import Path

import yaml
from prefect import Flow, serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron, Interval, RRule, Schedule
from prefect.types._datetime import parse_datetime

from flows.errors import ConfigError
from flows.settings import PROJECT_ROOT

PREFECT_YAML = PROJECT_ROOT / "prefect.yaml"
SCHEDULE_KEYS = {"cron", "interval", "rrule", "timezone", "anchor_date", "day_or", "active", "parameters", "slug"}


def specs(path: Path = PREFECT_YAML) -> list[dict]:
    """The `deployments:` entries of prefect.yaml."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read the deployments: {error}") from error
    deployments = (document or {}).get("deployments") or []
    if not deployments:
        raise ConfigError(f"{path}: no deployments")
    return deployments


def schedule(spec: dict) -> Schedule:
    """One `schedules:` item of prefect.yaml, read the way `prefect deploy` reads it."""
    unknown = set(spec) - SCHEDULE_KEYS
    if unknown:
        raise ConfigError(f"prefect.yaml: schedule keys jkn serve does not know: {', '.join(sorted(unknown))}")
    options = {key: spec[key] for key in ("timezone", "active", "parameters", "slug") if key in spec}
    if "cron" in spec:
        return Cron(spec["cron"], day_or=spec.get("day_or", True), **options)
    if "interval" in spec:
        interval = spec["interval"]
        seconds = interval if isinstance(interval, (int, float)) else None
        if seconds is None:
            raise ConfigError("prefect.yaml: give a schedule's interval in seconds")
        anchor = parse_datetime(spec["anchor_date"]) if spec.get("anchor_date") else None
        return Interval(timedelta(seconds=seconds), anchor_date=anchor, **options)
    if "rrule" in spec:
        return RRule(spec["rrule"], **options)
    raise ConfigError(f"prefect.yaml: a schedule needs cron, interval or rrule: {spec}")


def concurrency(spec: dict) -> ConcurrencyLimitConfig | None:
    limit = spec.get("concurrency_limit")
    if limit is None:
        return None
    if isinstance(limit, int):
        return ConcurrencyLimitConfig(limit=limit)
    return ConcurrencyLimitConfig(
        limit=limit["limit"],
        collision_strategy=ConcurrencyLimitStrategy(limit.get("collision_strategy", "ENQUEUE")),
        grace_period_seconds=limit.get("grace_period_seconds"),
    )


def load_flow(entrypoint: str) -> Flow:
    """`flows/pipeline.py:pipeline` -> the flow object, imported as a module of the package."""
    path, _, name = entrypoint.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def runner_deployments(path: Path = PREFECT_YAML) -> list[RunnerDeployment]:
    deployments = []
    for spec in specs(path):
        flow = load_flow(spec["entrypoint"])
        deployments.append(
            flow.to_deployment(
                name=spec["name"],
                description=" ".join(str(spec.get("description", "")).split()) or None,
                tags=spec.get("tags"),
                parameters=spec.get("parameters") or {},
                schedules=[schedule(item) for item in spec.get("schedules") or []],
                concurrency_limit=concurrency(spec),
                # The package is installed; a module path works from any working folder.
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return deployments


def serve_all(path: Path = PREFECT_YAML, limit: int = 1) -> None:
    """Serve every deployment until interrupted; at most `limit` runs at once."""
    serve(*runner_deployments(path), limit=limit)
