"""`jkn run` and `jkn demo`: the Prefect flow from the command line. Prefect's own chatter is kept down, each
stage prints one line when it starts and one when it ends, and a failed flow or task is one line on the console
(its traceback stays in Prefect's API and UI). Prefect is imported only when a flow runs."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from flows.errors import FilesRefused
from flows.terminal import console

# Prefect's temporary server (no PREFECT_API_URL) gives up after 20 s by default; its first start
# (database migrations) takes longer than that on a busy 2-core machine.
EPHEMERAL_TIMEOUT_SETTING = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
EPHEMERAL_TIMEOUT_SECONDS = "180"


def quiet_prefect() -> None:
    """Prefect's own chatter hides our summary; keep its warnings and errors."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault(EPHEMERAL_TIMEOUT_SETTING, EPHEMERAL_TIMEOUT_SECONDS)


def prefect_did_not_start(error: Exception) -> bool:
    return isinstance(error, RuntimeError) and "ephemeral Prefect API server" in str(error)


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_pipeline(**parameters) -> dict:
    quiet_prefect()
    from flows import checks
    from flows.pipeline import pipeline

    if not parameters.get("skip_if_nothing_new"):  # the flow would start it later (flows/checks.py)
        checks.import_gx_early()  # while Prefect's server starts and the flow run is made

    _no_tracebacks_on_console()
    _show_progress()
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        console.print(
            f"{time.strftime('%H:%M:%S')}  starting Prefect's temporary server (PREFECT_API_URL is not "
            "set; the first start takes up to a minute on a busy machine) ...",
            highlight=False,
        )
    started = time.monotonic()
    try:
        result = pipeline(**parameters)
    except FilesRefused as refused:  # published all the same: print the summary, then exit 5
        result = refused.result | {"refused": refused}
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


class _OneLineErrors(logging.Filter):
    """Prefect logs a failed flow or task with its traceback; the API keeps that (the
    Prefect UI shows it), and main() prints one line, so the console drops it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "jkn_printed_by_cli", False):  # the flow's own error lines: main() prints them
            return False
        return not (record.exc_info and record.name.startswith(("prefect.flow_runs", "prefect.task_runs")))


class _ProgressLines(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        console.print(f"{time.strftime('%H:%M:%S')}  {record.getMessage()}", markup=False, highlight=False)


def _show_progress() -> None:
    """One line per stage start and end (flows/progress.py), whatever Prefect's own log level."""
    logger = logging.getLogger("jkn.progress")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not any(isinstance(handler, _ProgressLines) for handler in logger.handlers):
        logger.addHandler(_ProgressLines())


def _no_tracebacks_on_console() -> None:
    for handler in logging.getLogger().handlers:
        if not any(isinstance(existing, _OneLineErrors) for existing in handler.filters):
            handler.addFilter(_OneLineErrors())
