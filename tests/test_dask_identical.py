"""Ingest fanned out on a real Dask cluster gives exactly what one process gives.

The same three batches run through the real Prefect flow twice, once in one process and once with
`JKN_DASK_ADDRESS` pointing at a `distributed.LocalCluster` (2 worker processes, 1 thread each, on
127.0.0.1): a first load of all five kinds for two months (generated, small), a correction of one
file and of one province's participants (a province file, `_p33`), a batch that fails a critical
staging check (a month missing a region), and a backfill of both months after the seeds changed
(month by month, flows/backfill.py). After each batch every `mart.*` table, every `raw.*` view,
`ops.load_log` (without its timestamps and run ids) and `ops.rejects` must be the same both ways,
the distributed run's files must really have been read on the cluster's workers, and the
backfilled marts must be a full rebuild's (EXCEPT ALL both ways).
"""

from __future__ import annotations

import csv
import shutil
import sys

import duckdb
import pytest

from flows import database, generate, metrics
from flows.settings import load_settings
from tests.conftest import FIXTURES
from tests.test_backfill import _changed_seeds, _differences

pytest.importorskip("prefect_dask")
distributed = pytest.importorskip("distributed")

REGIONS = "3171,3325,3326,3327,3375"  # two provinces: 31 and 33
MONTHS = ("2022-07", "2022-08")
LOAD_LOG = "load_id, file_name, sha256, kind, period, rows_loaded, rows_rejected, status, message, part, province_code"


def _first_load(landing, monkeypatch) -> None:
    """Two months alike (the same seed: no month-on-month check trips); July without the last row of
    each file, so that no file of it has the bytes of August's (which would be loaded once)."""
    for month in MONTHS:
        generate.generate(landing, participants=400, employers=8, workforce=10, regions=REGIONS, month=month, seed=7)
    for path in landing.glob(f"*_{MONTHS[0]}.csv"):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(lines[:-1]), encoding="utf-8")


def _correction(landing, monkeypatch) -> None:
    """The population of the semester again, one region's figure one higher (new bytes: a correction),
    and August's participants of Central Java (33) again, two of them now inactive."""
    path = landing / "population_2022-S1.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    table[1][-1] = str(int(table[1][-1]) + 1)
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(table)
    with (landing / "participants_2022-08.csv").open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    central = [row for row in rows if row[2].startswith("33")]
    for row in [row for row in central if row[4] == "ACTIVE"][:2]:
        row[4] = "INACTIVE"
    with (landing / "participants_2022-08_p33.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows([header, *central])


def _failing_batch(landing, monkeypatch) -> None:
    """September's employer registry has an employer paying more than it owes: a critical staging check stops it."""
    shutil.copy(FIXTURES / "checks" / "overpaid_employer" / "employers_2022-09.csv", landing)


def _changed_seeds_then(landing, monkeypatch) -> None:
    """A UHC rule and targets that change every month: what a backfill is for."""
    monkeypatch.setenv("JKN_SEEDS", str(_changed_seeds(landing.parent)))


# (what lands, the arguments of `jkn run`, its exit code)
BACKFILL = ["--from", MONTHS[0], "--to", MONTHS[-1]]
BATCHES = [(_first_load, [], 0), (_correction, [], 0), (_failing_batch, [], 3), (_changed_seeds_then, BACKFILL, 0)]


def _jkn_run(monkeypatch, arguments: list[str]) -> int:
    from flows.cli import main

    monkeypatch.setattr(sys, "argv", ["jkn", "run", *arguments])
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code


def _contents(db_path) -> dict[str, list[tuple]]:
    """Everything ingest and the marts leave, as sorted rows per table or view."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        relations = [
            f"{schema}.{name}"
            for schema, name in con.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_schema in ('mart', 'raw') order by all"
            ).fetchall()
        ]
        queries = {name: f"select * from {name}" for name in relations}
        queries["ops.load_log"] = f"select {LOAD_LOG} from ops.load_log"
        queries["ops.rejects"] = "select * from ops.rejects"
        return {name: con.execute(f"{sql} order by all").fetchall() for name, sql in queries.items()}
    finally:
        con.close()


def _run_batches(tmp_path, monkeypatch, name: str, address: str | None) -> list[dict]:
    home = tmp_path / name
    monkeypatch.setenv("JKN_HOME", str(home))
    monkeypatch.delenv("JKN_SEEDS", raising=False)
    if address:
        monkeypatch.setenv("JKN_DASK_ADDRESS", address)
    else:
        monkeypatch.delenv("JKN_DASK_ADDRESS", raising=False)
    landing = home / "landing"
    landing.mkdir(parents=True)
    states = []
    for make_batch, arguments, expected_exit in BATCHES:
        make_batch(landing, monkeypatch)
        assert _jkn_run(monkeypatch, arguments) == expected_exit, make_batch.__name__
        states.append(_contents(home / "jkn.duckdb"))
    return states


@pytest.mark.slow
def test_ingest_on_a_dask_cluster_gives_the_marts_of_one_process(jkn_env, tmp_path, prefect_server, monkeypatch):
    from flows.ingest import fanout

    monkeypatch.setattr(fanout, "BATCH_SIZE", 2)  # the first load's 5 files go in 3 batches, as 1,200 would in 3 of 500
    single = _run_batches(tmp_path, monkeypatch, "single", None)

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        workers = set(client.scheduler_info()["workers"])
        with distributed.get_task_stream(client) as stream:
            spread = _run_batches(tmp_path, monkeypatch, "spread", cluster.scheduler_address)
        read_on = [event["worker"] for event in stream.data]

    # 9 generated files, then 2 corrections, then 1 failing file (the backfill reads none): each read
    # once, on a worker of the cluster
    assert len(read_on) == 12 and set(read_on) <= workers
    assert len(set(read_on)) == 2  # both workers had work: the reads really were spread

    first, corrected, failed, backfilled = single
    assert {"mart.coverage", "mart.trajectory", "mart.employer_compliance", "raw.participants"} <= set(first)
    assert first["mart.coverage"] and first["raw.participants"] and first["mart.employer_compliance"]
    assert corrected["mart.coverage"] != first["mart.coverage"]  # the correction changed what is published
    assert [row[7] for row in failed["ops.load_log"]].count("quarantined") >= 1
    # the province file replaced Central Java's August rows only: Jakarta's still come from the national file
    statuses = {row[1]: row[7] for row in corrected["ops.load_log"]}
    assert statuses["participants_2022-08_p33.csv"] == statuses["participants_2022-08.csv"] == "published"
    assert backfilled["mart.coverage"] != failed["mart.coverage"]  # the new UHC rule reached both months
    _assert_a_full_rebuild_gives(tmp_path / "single", monkeypatch)
    for batch, (here, there) in enumerate(zip(single, spread, strict=True)):
        assert set(here) == set(there)
        for name in here:
            assert here[name] == there[name], f"batch {batch + 1}: {name} differs"


def _assert_a_full_rebuild_gives(home, monkeypatch) -> None:
    """The backfilled marts (July and August: every published month) are what a full rebuild gives."""
    monkeypatch.setenv("JKN_HOME", str(home))
    settings = load_settings()
    con = database.connect(settings)
    try:
        database.load_seeds(con, settings.seeds)
        metrics.build(con, layers=("staging", "intermediate", "marts"))
        for name in metrics.mart_names():
            assert _differences(con, f"mart.{name}", f"build.{name}") == 0, name
    finally:
        con.close()


def test_the_flow_a_deployment_loads_by_its_path_is_the_importable_one():
    """prefect.yaml's entrypoint is a file path; Prefect loads it under another module name. Its flow
    must still be pickled by an importable name, or no Dask worker could run a task of its runs."""
    from prefect.flows import load_flow_from_entrypoint

    from flows import pipeline

    loaded = load_flow_from_entrypoint(str(pipeline.__file__) + ":pipeline")
    assert loaded is pipeline.pipeline
    assert loaded.fn.__module__ == "flows.pipeline"
