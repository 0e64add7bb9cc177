"""One line when a pipeline stage starts and one when it ends (with seconds and what it did).

The lines go to the logger `jkn.progress`, which `jkn run` and `jkn demo` print on the
terminal, and to the flow run's log in Prefect, so a long ingest is never a silent minute.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

log = logging.getLogger("jkn.progress")


def _emit(message: str) -> None:
    log.info(message)
    try:
        from prefect import get_run_logger

        get_run_logger().info(message)
    except Exception:  # noqa: BLE001 - outside a flow run (a plain `jkn metrics`): the first logger is enough
        pass


def reported(name: str, summary: Callable[[object], str] | None = None):
    """Wrap a stage function: `name ...` before, `name: done in N s (summary)` or `name: failed` after."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            _emit(f"{name} ...")
            started = time.monotonic()
            try:
                result = function(*args, **kwargs)
            except BaseException:
                _emit(f"{name}: failed after {time.monotonic() - started:.1f} s")
                raise
            detail = summary(result) if summary else ""
            _emit(f"{name}: done in {time.monotonic() - started:.1f} s" + (f" ({detail})" if detail else ""))
            return result

        return wrapper

    return decorate


def files_summary(files: list[dict]) -> str:
    loaded = [item for item in files if item.get("status") == "staged"]
    rows = sum(item.get("rows_loaded") or 0 for item in loaded)
    skipped = sum(1 for item in files if item.get("status") == "skipped")
    refused = sum(1 for item in files if item.get("status") == "rejected")
    return f"{len(loaded)} file(s) loaded, {rows:,} rows; {skipped} already loaded; {refused} refused"


def checks_summary(result: dict) -> str:
    if result.get("nothing_staged"):
        return "nothing staged, no check ran"
    return f"{result.get('checked', 0)} expectation(s), {len(result.get('warnings', []))} warning(s)"


def alerts_summary(result: dict) -> str:
    return f"{result.get('alerts_open', 0)} open, {result.get('messages', 0)} message(s)"
