"""Prefect-native parameters: typed and described in the deployment's schema, months a constrained type,
a bad value refused by Prefect naming the parameter, and a run summary artifact even then."""

from __future__ import annotations

import asyncio

import pytest


def test_the_schema_types_and_describes_every_parameter():
    from flows.pipeline import pipeline

    properties = pipeline.parameters.model_dump()["properties"]
    assert set(properties) == {"files", "urls", "from_month", "to_month", "skip_if_nothing_new", "lock_timeout_seconds"}
    for name, schema in properties.items():
        assert schema.get("description"), f"{name} has no description in the deployment's schema"
    [month] = [item for item in properties["from_month"]["anyOf"] if item.get("type") == "string"]
    assert month["pattern"] == r"^\d{4}-(0[1-9]|1[0-2])$"
    [seconds] = [item for item in properties["lock_timeout_seconds"]["anyOf"] if item.get("type") == "number"]
    assert seconds["minimum"] == 0


def test_a_bad_month_is_refused_naming_the_parameter_and_leaves_a_summary(jkn_env, prefect_server):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.exceptions import ParameterTypeError

    from flows.pipeline import pipeline

    with pytest.raises(ParameterTypeError, match="from_month"):
        pipeline(from_month="2022-13")

    async def read():
        async with get_client() as client:
            [flow_run] = await client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)
            artifacts = await client.read_artifacts()
            return flow_run, [a for a in artifacts if a.flow_run_id == flow_run.id and a.key == "jkn-run-summary"]

    flow_run, [summary] = asyncio.run(read())
    assert flow_run.state.is_failed()
    assert "failed before it started" in summary.data and "from_month" in summary.data


def test_months_out_of_order_name_the_flow_parameters(jkn_env, prefect_server):
    from flows.errors import ConfigError
    from flows.pipeline import pipeline

    with pytest.raises(ConfigError, match="from_month 2022-09 is after to_month 2022-06"):
        pipeline(from_month="2022-09", to_month="2022-06")


def test_the_report_link_is_where_the_report_is_served():
    from flows import runs

    marts = runs.Published(report="/srv/jkn/report/index.html")
    assert runs.report_url(marts, "https://jkn.example.go.id/report/") == "https://jkn.example.go.id/report/index.html"
    assert runs.report_url(marts) == "file:///srv/jkn/report/index.html"
