"""Shared fixtures: a throwaway JKN_HOME per test and one Prefect test server per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

FIXTURES = Path(__file__).parent / "fixtures"
TEST_KEY = "test-pseudonym-key-at-least-32-bytes"


@pytest.fixture
def jkn_env(tmp_path, monkeypatch) -> Path:
    """A clean environment: only the JKN_ settings this test sets, home under tmp_path."""
    for name in list(os.environ):
        if name.upper().startswith("JKN_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("JKN_HOME", str(home))
    monkeypatch.setenv("JKN_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def settings(jkn_env):
    from flows.settings import load_settings

    return load_settings()


@pytest.fixture
def con(settings):
    """A connection to a fresh database with the tables and seeds in place."""
    from flows import database

    connection = database.connect(settings)
    database.load_seeds(connection, settings.seeds)
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def prefect_server():
    """One Prefect test server for the whole session (it takes ~10 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files with the most slow tests first: `make test` runs the suite on two workers, a file
    to a worker (`--dist loadfile`), and a long file taken last would leave the other worker idle."""
    slow_per_file: dict[str, int] = {}
    for item in items:
        slow_per_file.setdefault(item.path.name, 0)
        slow_per_file[item.path.name] += item.get_closest_marker("slow") is not None
    # sorted() is stable: within a file, and among files alike, the collection order stays
    items[:] = sorted(items, key=lambda item: -slow_per_file[item.path.name])


@pytest.fixture(scope="module")
def extension_con():
    """An in-memory DuckDB with the project's extension loaded (flows/native/: the row rules, the repeated-keys
    aggregate); fails where setup.py could not build it."""
    import duckdb

    from flows.ingest import pseudonym

    assert pseudonym.EXTENSION_PATH.exists(), f"{pseudonym.EXTENSION_PATH} was not built: see setup.py's warning"
    connection = duckdb.connect(config={"threads": 2, **pseudonym.connect_config()})
    assert pseudonym.person_key_way(connection) == "extension"  # loads it
    yield connection
    connection.close()
