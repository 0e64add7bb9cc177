"""Prefect's flow-run heartbeat as flows/prefect_patches.py runs it: still sent by a flow run, from a thread that
waits on the run's end rather than sleeping a second at a time (which kept every run up to a second longer)."""

from __future__ import annotations

import threading
import time

from prefect import flow, flow_engine
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from flows import pipeline, prefect_patches

HEARTBEAT_THREAD = "jkn-flow-heartbeat"


def test_importing_the_pipeline_puts_the_heartbeat_in_place():
    assert pipeline.prefect_patches is prefect_patches
    assert flow_engine._send_heartbeats is prefect_patches.send_heartbeats
    assert prefect_patches.apply()  # again: a no-op


def test_a_flow_run_sends_its_heartbeat_from_a_thread_that_never_sleeps(prefect_server, monkeypatch):
    sent, slept = [], []
    emit = flow_engine.FlowRunEngine._emit_flow_run_heartbeat

    def counted(engine, *args):
        sent.append(threading.current_thread().name)
        return emit(engine, *args)

    real_sleep = time.sleep

    def sleep(seconds):
        slept.append(threading.current_thread().name)
        real_sleep(seconds)

    monkeypatch.setattr(flow_engine.FlowRunEngine, "_emit_flow_run_heartbeat", counted)
    monkeypatch.setattr(time, "sleep", sleep)

    @flow(name="heartbeat-test")
    def beating() -> list[str]:
        return [thread.name for thread in threading.enumerate()]

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 30}):
        during = beating()
    assert HEARTBEAT_THREAD in during  # the run had its heartbeat thread
    assert sent == [HEARTBEAT_THREAD]  # its first heartbeat went out as the run began
    assert HEARTBEAT_THREAD not in slept  # it waited on the run's end, never on time.sleep
    assert HEARTBEAT_THREAD not in [thread.name for thread in threading.enumerate()]  # and ended with the run
