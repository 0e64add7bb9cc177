"""The views of sql/views/ (schema `report`): made by each publish, carried into the published snapshot, made
for a database published before they existed, and read in place (their SQL) where a database has none."""

from __future__ import annotations

import re
import shutil

import duckdb
import pytest

from flows import labels, metrics, views
from tests import rows
from tests.conftest import TEST_KEY

VIEW_NAMES = [model.name for model in metrics.models(("views",))]


def _stored_views(con) -> set[str]:
    return {
        row[0]
        for row in con.execute(
            "select view_name from duckdb_views() where database_name = current_database() and schema_name = 'report'"
        ).fetchall()
    }


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory):
    """The demo landing folder ingested and published once (without the flow: fast)."""
    from flows import database
    from flows.settings import Settings

    settings = Settings(home=tmp_path_factory.mktemp("demo"), pseudonym_key=TEST_KEY)
    con = database.connect(settings)
    try:
        rows.publish_demo(con, settings)
    finally:
        con.close()
    return settings.db_path


@pytest.fixture
def demo_copy(settings, demo_database):
    """A test's own copy of the published demo database and its snapshot (closed: open it as the test needs)."""
    from flows import snapshot

    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(demo_database, settings.db_path)
    shutil.copy(snapshot.snapshot_path(demo_database), snapshot.snapshot_path(settings.db_path))
    parts = demo_database.with_name(demo_database.name + ".parts")
    shutil.copytree(parts, settings.db_path.with_name(settings.db_path.name + ".parts"))
    return settings


def test_scopes_given_rows_expect_rows(con):
    # 3325 and 3326 are branch Pekalongan in province 33; 3601 branch Serang in province 36
    rows.population(con, "2022-S1", {"3325": 1000, "3326": 2000, "3601": 4000})
    rows.region_counts(con, "2022-08", {"3325": (800, 100), "3326": (1500, 300), "3601": (3800, 100)})
    rows.build(con)
    metrics.publish(con)
    got = rows.query(
        con,
        "select level, code, level_rank, provinces, province_code, branch_office, participants, is_uhc, regions, "
        "uhc_regions from report.scopes where month = '2022-08-01' order by level_rank, code",
    )
    assert got == [
        ("national", "ID", 0, None, None, None, 6600, False, 3, 1),
        ("province", "33", 1, "33", None, None, 2700, False, 2, 0),
        ("province", "36", 1, "36", None, None, 3900, True, 1, 1),
        ("branch", "PEKALONGAN", 2, "33", None, None, 2700, False, 2, 0),
        ("branch", "SERANG", 2, "36", None, None, 3900, True, 1, 1),
        ("region", "3325", 3, None, "33", "PEKALONGAN", 900, False, None, None),
        ("region", "3326", 3, None, "33", "PEKALONGAN", 1800, False, None, None),
        ("region", "3601", 3, None, "36", "SERANG", 3900, True, None, None),
    ]
    # a scope's trajectory comes with it; is_tracked says a trajectory row exists
    tracked = rows.query(
        con,
        "select count(*) filter (where is_tracked), count(*) from report.scopes as scopes "
        "where not is_tracked or exists (select 1 from mart.trajectory as trajectory where "
        "trajectory.month = scopes.month and trajectory.level = scopes.level and trajectory.code = scopes.code)",
    )
    assert tracked[0][0] == rows.query(con, "select count(*) from mart.trajectory")[0][0]


def test_every_view_is_in_the_snapshot_and_reads_its_tables(demo_copy):
    from flows import snapshot

    reader = snapshot.connect(demo_copy)
    try:
        assert _stored_views(reader) == set(VIEW_NAMES)
        for name in VIEW_NAMES:
            assert views.relation(reader, name) == f"report.{name}"
            reader.execute(f"select * from report.{name} limit 1").fetchall()
        assert (
            reader.execute("select count(*) from report.scopes").fetchone()
            == reader.execute("select count(*) from mart.coverage").fetchone()
        )
        # the snapshot's own rows: the writer's schemas are not in it, and the view still reads
        assert not reader.execute("select count(*) from duckdb_schemas() where schema_name = 'build'").fetchone()[0]
    finally:
        reader.close()


def test_a_database_without_the_views_shows_the_same(demo_copy):
    """Where a database has no `report` views (an earlier release's snapshot), their SQL is read in place."""
    from flows import database, report_data

    con = database.connect(demo_copy)
    try:
        with_views = report_data.collect(con)
        con.execute("drop schema report cascade")
        assert views.relation(con, "scopes").startswith("(")
        without = report_data.collect(con)
    finally:
        con.close()
    with_views.pop("generated_at"), without.pop("generated_at")
    assert with_views["regions"] and with_views["worklist"] and with_views["compliance"]
    assert without == with_views


def test_a_database_published_before_the_views_gets_them_on_first_open(demo_copy):
    from flows import database, snapshot

    old = duckdb.connect(str(demo_copy.db_path))
    try:
        old.execute("drop schema report cascade")
        old.execute("checkpoint")
    finally:
        old.close()
    shutil.copy(demo_copy.db_path, snapshot.snapshot_path(demo_copy.db_path))  # its snapshot has none either
    con = database.connect(demo_copy)
    try:
        assert _stored_views(con) == set(VIEW_NAMES)
    finally:
        con.close()
    reader = snapshot.connect(demo_copy)
    try:
        assert _stored_views(reader) == set(VIEW_NAMES)
    finally:
        reader.close()


def test_a_view_of_an_earlier_file_is_not_read_and_is_made_again(demo_copy):
    """A view whose label is not this release's file's (the file changed since the last publish) is read
    from the file instead, and the next writer makes it again, in the snapshot too."""
    from flows import database, snapshot

    old = duckdb.connect(str(demo_copy.db_path))
    try:
        old.execute("create or replace view report.scopes as select 1 as stale")
        old.execute("comment on view report.scopes is 'jkn view sha256:an-earlier-file'")
        assert views.relation(old, "scopes").startswith("(")
        assert views.relation(old, "worklist") == "report.worklist"
        old.execute("checkpoint")
    finally:
        old.close()
    database.connect(demo_copy).close()
    reader = snapshot.connect(demo_copy)
    try:
        assert views.relation(reader, "scopes") == "report.scopes"
        assert "level_rank" in {column[0] for column in reader.execute("describe report.scopes").fetchall()}
    finally:
        reader.close()


def test_the_worklist_view_ranks_sanction_steps_in_the_labels_order():
    sql = (views.VIEWS_DIR / "worklist_groups.sql").read_text(encoding="utf-8")
    listed = re.search(r"list_position\(\s*\[([^\]]*)\]", sql).group(1)
    assert tuple(re.findall(r"'([A-Z_0-9]+)'", listed)) == labels.SANCTION_STEPS


def test_this_months_actions_read_the_same_without_the_views(demo_copy):
    """The digests' and the report's actions (report.region_actions, employer_actions, check_counts) and the
    regions not reported: the same rows from the views as from their SQL read in place."""
    from flows import actions, database, missing_regions

    con = database.connect(demo_copy)
    try:
        scopes = ["ID", "33", "36", "3325", "PEKALONGAN", "SERANG"]

        def read():
            return (
                [(a.kind, a.anchor, a.row) for scope in scopes for a in actions.candidates(con, scope)],
                [(a.kind, a.anchor) for scope in scopes for a in actions.for_scope(con, scope)],
                missing_regions.not_reported(con, con.execute("select max(month) from mart.coverage").fetchone()[0]),
                missing_regions.partial_scopes(con, con.execute("select max(month) from mart.coverage").fetchone()[0]),
            )

        with_views = read()
        con.execute("drop schema report cascade")
        assert views.relation(con, "employer_actions").startswith("(")
        without = read()
    finally:
        con.close()
    kinds = {kind for kind, _, _ in with_views[0]}
    assert {"region", "employer"} <= kinds
    assert without == with_views


def test_employer_actions_take_a_regions_first_employers_by_the_marts_priority(demo_copy):
    """report.employer_actions has no ranking of its own: `priority` numbers a month's employers of a region
    from 1 (sql/marts/enforcement_worklist.sql), so `priority <= n` is each region's first n."""
    from flows import actions, database

    con = database.connect(demo_copy)
    try:
        gaps = con.execute(
            "select count(*) from (select priority, row_number() over (partition by month, region_code "
            "order by priority) as numbered from mart.enforcement_worklist) where priority <> numbered"
        ).fetchone()[0]
        per_region = {}
        for action in actions.candidates(con, "ID", per_region=1):
            if action.kind == "employer":
                per_region[action.region_code] = per_region.get(action.region_code, 0) + 1
        regions = con.execute(
            "select count(distinct region_code) from mart.enforcement_worklist "
            "where month = (select max(month) from mart.enforcement_worklist)"
        ).fetchone()[0]
    finally:
        con.close()
    assert gaps == 0
    assert regions > 1 and len(per_region) == regions and set(per_region.values()) == {1}
