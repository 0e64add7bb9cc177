"""Prefect's flow-run heartbeat, made to stop the moment its run ends (the same heartbeats).

Since Prefect 3.7 a flow run sends a heartbeat event every `PREFECT_FLOWS_HEARTBEAT_FREQUENCY` seconds (180 by
default, PrefectHQ/prefect#21058; the server marks a run that stops sending them as crashed) from a thread of
its own (`prefect.flow_engine._send_heartbeats`, PrefectHQ/prefect#19641). That thread sleeps in steps of one
second, and the run, as it ends, waits for it to wake: every flow run ended up to a second after its work was
done (half a second on average: a flow whose work took 0.1 s returned after 1.1 s, one of 0.9 s after 1.1 s,
on Prefect 3.8.8 here). `jkn run` is one flow run, so each run paid that.

`apply` (called where flows/pipeline.py is imported) puts in a context manager that does what Prefect's does,
with the thread waiting on its stop event instead of sleeping, so the run's end wakes it at once. Where
Prefect's engine is not the one this was written against (its function or the engine's two heartbeat methods
are missing), Prefect is left as it is.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Generator
from contextlib import contextmanager
from typing import Any

_ENGINE_METHODS = ("_build_heartbeat_event_template", "_emit_flow_run_heartbeat", "heartbeat_seconds")


@contextmanager
def send_heartbeats(engine: Any, join_on_exit: bool = True) -> Generator[None, None, None]:
    """Prefect's `_send_heartbeats`, whose thread waits on the stop event between heartbeats."""
    from prefect import flow_engine

    heartbeat_seconds = engine.heartbeat_seconds
    if heartbeat_seconds is None:
        yield
        return
    heartbeat_seconds = max(heartbeat_seconds, flow_engine.MINIMUM_HEARTBEAT_INTERVAL)
    resource, related = engine._build_heartbeat_event_template()
    stop_event = threading.Event()

    def heartbeat_loop() -> None:
        while not stop_event.is_set():
            if engine.flow_run and engine.flow_run.state and engine.flow_run.state.is_final():
                engine.logger.debug("Flow run in terminal state, stopping heartbeat")
                return
            try:
                engine._emit_flow_run_heartbeat(resource, related)
            except Exception:  # noqa: BLE001 - as Prefect's: a missed heartbeat is logged, never raised
                engine.logger.debug("Failed to emit heartbeat", exc_info=True)
            if stop_event.wait(heartbeat_seconds):
                return

    # the run's context (its settings: the API URL) in the thread, as Prefect's own does
    thread = threading.Thread(
        target=contextvars.copy_context().run, args=(heartbeat_loop,), daemon=True, name="jkn-flow-heartbeat"
    )
    thread.start()
    engine.logger.debug("Started flow run heartbeat context")
    try:
        yield
    finally:
        stop_event.set()
        if join_on_exit:
            thread.join(timeout=2)
        engine.logger.debug("Stopped flow run heartbeat context")


def apply() -> bool:
    """Use `send_heartbeats` for Prefect's flow runs in this process; whether it is in place."""
    from prefect import flow_engine

    engine = getattr(flow_engine, "FlowRunEngine", None)
    if getattr(flow_engine, "_send_heartbeats", None) is send_heartbeats:
        return True
    if (
        not callable(getattr(flow_engine, "_send_heartbeats", None))
        or not hasattr(flow_engine, "MINIMUM_HEARTBEAT_INTERVAL")
        or engine is None
        or not all(hasattr(engine, name) for name in _ENGINE_METHODS)
    ):
        return False
    flow_engine._send_heartbeats = send_heartbeats
    return True
