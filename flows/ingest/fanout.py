"""Ingest fanned out on a Dask cluster (`JKN_DASK_ADDRESS`): the workers read, the writer registers.

The writer (the process that holds the database) plans as always (`flows.ingest.plan`); each new
file is then one Prefect task run by prefect-dask's `DaskTaskRunner` on a worker of the cluster at
the address, where `read_file` writes the file's part into the parts folder (so that folder must be
the same path on every machine: a shared mount). The outcomes come back to the writer, which
registers them, one transaction per file, in plan order (`flows.ingest.register_all`). No worker
opens the database.

Files are submitted at most `BATCH_SIZE` at a time: Dask scheduling under Prefect hangs near 2,000
tasks in one flow (PrefectHQ/prefect#12877). The writer waits for a batch's outcomes, in plan order,
registering each as it arrives, before it submits the next batch. A task whose worker dies is
rerun by Dask on another worker; it rewrites the same part (a part's name is its file's sha256).
A crash of the writer leaves parts nobody registered: they are never read, and the next ingest
removes them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.errors import ConfigError
from flows.ingest import ReadOptions
from flows.ingest.part import FileOutcome

BATCH_SIZE = 500


@task(name="read-file", cache_policy=NO_CACHE, task_run_name="read {file_name}")
def read_file_task(file_name: str, path: str, sha256: str, options: ReadOptions) -> FileOutcome:
    return replace(options, config=on_this_machine(options.config)).read(Path(path), sha256)


def on_this_machine(config: dict) -> dict:
    """The writer's DuckDB limits, for the worker that reads: the writer's spill folder may not
    exist on this machine (then DuckDB spills to this machine's temporary folder instead)."""
    temp = config.get("temp_directory")
    if temp and not Path(temp).parent.exists():
        return {**config, "temp_directory": str(Path(tempfile.gettempdir()) / "jkn-spill")}
    return config


def reader(address: str, threads: int | None = None, batch_size: int | None = None):
    """A `ReadMany` for `flows.ingest.ingest_files` that reads on the Dask cluster at `address`.

    `threads` is JKN_THREADS: unset, each worker's DuckDB uses all the cores of its own machine
    (not the writer's count); run one Dask worker thread per machine (`dask worker --nthreads 1`)
    so that one file at a time has them all."""
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise ConfigError(
            f"JKN_DASK_ADDRESS is set ({address}) but prefect-dask is not installed here: "
            "pip install 'jkn[dask]' (or unset JKN_DASK_ADDRESS to ingest in this process)"
        ) from None

    def read_many(files: list[tuple[Path, str]], options: ReadOptions) -> Iterator[FileOutcome]:
        if not files:
            return
        if threads is None:
            options = replace(options, config={k: v for k, v in options.config.items() if k != "threads"})
        size = batch_size or BATCH_SIZE
        with DaskTaskRunner(address=address) as runner:
            for start in range(0, len(files), size):
                futures = [
                    runner.submit(
                        read_file_task,
                        {"file_name": path.name, "path": str(path.resolve()), "sha256": sha256, "options": options},
                    )
                    for path, sha256 in files[start : start + size]
                ]
                for future in futures:
                    yield future.result()

    return read_many
