"""The snapshot after alerts keeps the published marts (a file copy) and rewrites only ops and ref."""

import duckdb

from flows import metrics, snapshot
from tests import rows


def _read(settings, sql: str):
    con = duckdb.connect(str(snapshot.snapshot_path(settings.db_path)), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _published(con):
    rows.population(con, "2022-S1", {"3325": 1000, "3326": 2000})
    rows.region_counts(con, "2022-08", {"3325": (800, 100), "3326": (1500, 300)})
    rows.build(con)
    metrics.publish(con)


def test_refresh_rewrites_ops_and_keeps_the_published_marts(con, settings):
    _published(con)
    first_taken = _read(settings, "select taken_at, marts from ops.snapshot")[0]
    assert "jkn publication" in first_taken[1]
    con.execute("update ops.load_log set message = 'seen by alerts'")
    # The writer's marts differ from the snapshot's only if a publish wrote them (which labels them):
    # a change to mart.coverage outside a publish stays out of the refreshed snapshot's marts.
    con.execute("update mart.coverage set participants = -1 where code = '3325'")
    snapshot.refresh(con, "run-after-alerts")
    assert _read(settings, "select distinct message from ops.load_log") == [("seen by alerts",)]
    assert _read(settings, "select run_id from ops.snapshot") == [("run-after-alerts",)]
    assert _read(settings, "select participants from mart.coverage where level = 'region' and code = '3325'") == [
        (900,)
    ]


def test_refresh_writes_everything_when_marts_were_replaced_since(con, settings):
    _published(con)
    # A mart rewritten by anything but a publish loses its label: the refresh cannot trust the copy.
    con.execute("create or replace table mart.coverage as select * replace (0 as participants) from mart.coverage")
    snapshot.refresh(con, "run-2")
    assert _read(settings, "select distinct participants from mart.coverage") == [(0,)]
    assert "null" in _read(settings, "select marts from ops.snapshot")[0][0]


def test_refresh_without_a_snapshot_writes_one(con, settings):
    rows.population(con, "2022-S1", {"3325": 1000})
    rows.region_counts(con, "2022-08", {"3325": (800, 100)})
    rows.build(con)
    con.execute("create or replace table mart.coverage as select * from build.coverage")  # an older release's
    snapshot.refresh(con, "run-1")
    assert _read(settings, "select count(*) > 0 from mart.coverage") == [(True,)]
