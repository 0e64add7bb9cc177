"""The DuckDB a file is read in, and what it is given: the writer's limits and reference codes, and, for
the files of one batch read in this process, one shared in-memory instance (`shared_reader`).

`read_file` (`flows.ingest.part`) opens no shared database: it gets a connection of its own here
(`connection_for`), to the batch's instance or to a new in-memory DuckDB, with what loading the
person_key extension needs (`flows.ingest.pseudonym.connect_config`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb

from flows.ingest.pseudonym import connect_config


@dataclass(frozen=True)
class Reference:
    """What rows are checked against: region codes and NIK province codes (from `seeds/regions.csv`)."""

    region_codes: tuple[str, ...]
    province_codes: tuple[str, ...]


def reference_of(con: duckdb.DuckDBPyConnection) -> Reference:
    """The codes rows are checked against, from the seeds loaded into `ref.regions`."""
    regions = [row[0] for row in con.execute("select region_code from ref.regions order by 1").fetchall()]
    provinces = sorted({code[:2] for code in regions})
    return Reference(tuple(regions), tuple(provinces))


def duckdb_limits(con: duckdb.DuckDBPyConnection) -> dict:
    """The writer's memory limit, threads and spill folder, for the DuckDB that reads a file."""
    memory, threads, temp = con.execute(
        "select current_setting('memory_limit'), current_setting('threads'), current_setting('temp_directory')"
    ).fetchone()
    config = {"memory_limit": memory, "threads": int(threads)}
    if temp:
        config["temp_directory"] = temp
    return config


# The in-memory DuckDB that files read in a `shared_reader` block share, per thread.
_shared = threading.local()


@contextmanager
def shared_reader(config: dict | None = None) -> Iterator[None]:
    """Files read by `read_file` in this block, in this thread, with this `config`, share one
    in-memory DuckDB, each on a connection of its own (its temporary tables and registrations are
    its own and go with it): a DuckDB instance costs 20-40 ms to open and close, which is most of
    the cost of a small file (a batch of 31 demo files spent 1.4 s on it). The instance is closed
    when the block ends, so the memory of a large file's read is not kept by the process."""
    instance = _new_instance(config)
    previous = getattr(_shared, "reader", None)
    _shared.reader = (config or {}, instance)
    try:
        yield
    finally:
        _shared.reader = previous
        instance.close()


def connection_for(config: dict | None) -> duckdb.DuckDBPyConnection:
    """A connection of its own for one file: on the `shared_reader` instance when there is one for
    this config, else to a new in-memory DuckDB."""
    shared = getattr(_shared, "reader", None)
    if shared is not None and shared[0] == (config or {}):
        return shared[1].cursor()
    return _new_instance(config)


def _new_instance(config: dict | None) -> duckdb.DuckDBPyConnection:
    # connect_config: what loading the person_key extension needs (flows.ingest.pseudonym)
    return duckdb.connect(config={**(config or {}), **connect_config()})
