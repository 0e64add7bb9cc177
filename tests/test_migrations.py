"""A database written by the release before Parquet parts (07fb6da) is upgraded in place on first use.

tests/fixtures/legacy_07fb6da/database is `EXPORT DATABASE` of a file that release wrote: the
extracts in legacy_07fb6da/m1 (published) and m2 (staged, not yet published), ingested with
LEGACY_KEY, with `person_key` as 64 hex digits in `raw.participants`."""

from __future__ import annotations

import duckdb
import pytest

from flows import database, ingest, metrics
from flows.ingest.kinds import KINDS, part_columns
from tests.conftest import FIXTURES

LEGACY = FIXTURES / "legacy_07fb6da"
LEGACY_KEY = "legacy-fixture-key-0123456789abcdef"


def write_legacy_database(path) -> dict[str, list[tuple]]:
    """The old file, recreated from its export; returns each raw table's rows as the old release held them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute((LEGACY / "database" / "schema.sql").read_text())
        con.execute((LEGACY / "database" / "load.sql").read_text().replace("{dir}", str(LEGACY / "database")))
        return {
            kind.name: con.execute(
                f"select load_id, {', '.join(part_columns(kind))} from {kind.table} order by all"
            ).fetchall()
            for kind in KINDS.values()
        }
    finally:
        con.close()


def current_rows(con) -> dict[str, list[tuple]]:
    shown = {
        kind.name: [("lower(hex(person_key))" if name == "person_key" else name) for name in part_columns(kind)]
        for kind in KINDS.values()
    }
    return {
        kind.name: con.execute(
            f"select load_id, {', '.join(shown[kind.name])} from {kind.table} order by all"
        ).fetchall()
        for kind in KINDS.values()
    }


def marts(con) -> dict[str, list[tuple]]:
    return {name: con.execute(f"select * from mart.{name} order by all").fetchall() for name in metrics.mart_names()}


def test_raw_tables_become_registered_parts_with_the_same_rows(settings):
    before = write_legacy_database(settings.db_path)
    con = database.connect(settings)
    try:
        assert current_rows(con) == before
        tables = con.execute(
            "select table_name, table_type from information_schema.tables where table_schema = 'raw' order by 1"
        ).fetchall()
        assert tables == [(name, "VIEW") for name in sorted(KINDS)]
        registered = con.execute("select count(*), count(part) from ops.load_log").fetchone()
        assert registered == (10, 10)
        assert con.execute("select min(octet_length(person_key)) from raw.participants").fetchone()[0] == 32
        assert sorted(p.name for p in (settings.db_path.parent / "jkn.duckdb.parts").rglob("*.parquet")) == sorted(
            f"{sha}.parquet" for (sha,) in con.execute("select sha256 from ops.load_log").fetchall()
        )
    finally:
        con.close()
    con = database.connect(settings)  # a second open changes nothing
    try:
        assert current_rows(con) == before
    finally:
        con.close()


def test_the_upgraded_database_publishes_what_a_fresh_one_does(settings, tmp_path, monkeypatch):
    write_legacy_database(settings.db_path)
    con = database.connect(settings)
    try:
        database.load_seeds(con, settings.seeds)
        metrics.build(con)
        metrics.publish(con)  # publishes m2, staged by the old release
        upgraded = marts(con)
        statuses = con.execute("select status, count(*) from ops.load_log group by 1").fetchall()
    finally:
        con.close()
    assert statuses == [("published", 10)]

    fresh_home = tmp_path / "fresh"
    monkeypatch.setenv("JKN_HOME", str(fresh_home))
    from flows.settings import load_settings

    fresh = load_settings()
    con = database.connect(fresh)
    try:
        database.load_seeds(con, fresh.seeds)
        for month in ("m1", "m2"):
            ingest.ingest_files(con, sorted((LEGACY / month).iterdir()), pseudonym_key=LEGACY_KEY)
            metrics.build(con)
            metrics.publish(con)
        assert marts(con) == upgraded
        assert current_rows(con) == current_rows_of(settings)
    finally:
        con.close()


def current_rows_of(settings) -> dict[str, list[tuple]]:
    con = database.connect(settings)
    try:
        return current_rows(con)
    finally:
        con.close()


@pytest.fixture(autouse=True)
def _no_key_needed(monkeypatch):
    monkeypatch.setenv("JKN_PSEUDONYM_KEY", LEGACY_KEY)


def test_the_upgraded_database_gets_the_participant_profile_and_fills_it_once(settings):
    """The checks read a per-load profile (flows/participant_profile.py): an old file gets the empty
    tables on first open, and the first profiling covers the loads the old release published."""
    from flows import participant_profile

    write_legacy_database(settings.db_path)
    con = database.connect(settings)
    try:
        assert con.execute("select count(*) from ops.participant_profile").fetchone()[0] == 0
        live = con.execute(
            "select count(*) from ops.load_log where kind = 'participants' and status in ('staged', 'published')"
        ).fetchone()[0]
        assert live and participant_profile.profile_loads(con) == live
        assert participant_profile.profile_loads(con) == 0
        assert (
            con.execute(
                "select load_id, month, region_code, segment, status, participants "
                "from ops.participant_profile order by all"
            ).fetchall()
            == con.execute(
                "select load_id, month, region_code, segment, status, count(*) from raw.participants "
                "group by all order by all"
            ).fetchall()
        )
    finally:
        con.close()


def test_columns_renamed_for_their_unit_are_renamed_in_place_and_in_the_snapshot(settings):
    """The old release's marts name `unpaid_contributions` and `wage_below_minimum`; after the first
    open they are `unpaid_contributions_idr` and `is_wage_below_minimum`, values kept, and the
    published snapshot readers open says the same (a reader never meets the old names)."""
    from flows import snapshot
    from flows.migrations import RENAMED_COLUMNS

    write_legacy_database(settings.db_path)
    old = duckdb.connect(str(settings.db_path))
    try:
        before = old.execute(
            "select code, month, unpaid_contributions from mart.compliance_by_region order by all"
        ).fetchall()
        flagged = old.execute(
            "select company_key, wage_below_minimum from mart.employer_compliance order by all"
        ).fetchall()
    finally:
        old.close()
    assert before and any(value is not None for _, value in flagged)
    con = database.connect(settings)
    try:
        for schema in ("build", "mart"):
            for table, old_name, new_name in RENAMED_COLUMNS:
                columns = {
                    row[0]
                    for row in con.execute(
                        "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
                        [schema, table],
                    ).fetchall()
                }
                assert new_name in columns and old_name not in columns, (schema, table)
        assert (
            con.execute(
                "select code, month, unpaid_contributions_idr from mart.compliance_by_region order by all"
            ).fetchall()
            == before
        )
    finally:
        con.close()
    reader = snapshot.connect(settings)
    try:
        assert (
            reader.execute(
                "select company_key, is_wage_below_minimum from mart.employer_compliance order by all"
            ).fetchall()
            == flagged
        )
    finally:
        reader.close()


def test_the_old_releases_published_marts_get_the_views_readers_read(settings):
    """The old release published marts but no `report` views; after the first open the database and the
    snapshot have every view its marts can hold, and the report reads them."""
    from flows import report_data, snapshot

    write_legacy_database(settings.db_path)
    database.connect(settings).close()
    # not_reported, partial_scopes and forecasts read what the old release's marts lack (mart.region_reporting,
    # coverage's partial flags, the trajectory's forecast range): they wait for the next publish (migration step
    # 6), and the report skips those parts meanwhile
    waiting = {"not_reported", "partial_scopes", "forecasts"}
    expected = {model.name for model in metrics.models(("views",))} - waiting
    reader = snapshot.connect(settings)
    try:
        stored = {
            row[0]
            for row in reader.execute("select view_name from duckdb_views() where schema_name = 'report'").fetchall()
        }
        assert stored == expected
        data = report_data.collect(reader)
        assert data["regions"] and data["compliance"] and data["worklist"]
        assert data["not_reported"] == [] and data["forecasts"] == {}
    finally:
        reader.close()


def test_an_upgraded_database_records_its_release_and_a_stale_record_upgrades_it_again(settings):
    """Once the upgrade is complete `ops.schema_version` holds this release's digest, so later opens skip it;
    a file whose record is another release's (here: the old column names put back and the record changed,
    as an older release would leave it) is upgraded again on its next open."""
    write_legacy_database(settings.db_path)
    con = database.connect(settings)
    try:
        # the old release's marts lack what three report views read: they wait for the next publish, and until
        # then the upgrade is not complete, so nothing is recorded and the next open tries again
        assert con.execute("select version from ops.schema_version").fetchall() == []
        database.load_seeds(con, settings.seeds)
        metrics.build(con)
        metrics.publish(con)
    finally:
        con.close()
    database.connect(settings).close()
    con = database.connect(settings)
    try:
        assert con.execute("select version from ops.schema_version").fetchall() == [(database.schema_version(),)]
        con.execute(
            "alter table mart.compliance_by_region rename column unpaid_contributions_idr to unpaid_contributions"
        )
        con.execute("update ops.schema_version set version = 'an earlier release'")
    finally:
        con.close()
    con = database.connect(settings)
    try:
        columns = {row[0] for row in con.execute("describe mart.compliance_by_region").fetchall()}
        assert "unpaid_contributions_idr" in columns and "unpaid_contributions" not in columns
        assert con.execute("select version from ops.schema_version").fetchall() == [(database.schema_version(),)]
    finally:
        con.close()


def test_a_current_database_still_sees_a_changed_registration_in_its_raw_views(settings):
    """The raw views are made again on an open only when their SQL would change: a load taken out of the
    live statuses between two opens (by hand here) leaves `raw.<kind>` on the next open all the same."""
    write_legacy_database(settings.db_path)
    database.connect(settings).close()
    con = database.connect(settings)
    try:
        load_id, rows = con.execute(
            "select load_id, count(*) from raw.participants group by load_id order by load_id desc limit 1"
        ).fetchone()
        total = con.execute("select count(*) from raw.participants").fetchone()[0]
        con.execute("update ops.load_log set status = 'quarantined' where load_id = ?", [load_id])
    finally:
        con.close()
    con = database.connect(settings)
    try:
        assert con.execute("select count(*) from raw.participants").fetchone()[0] == total - rows
        assert not con.execute("select count(*) from raw.participants where load_id = ?", [load_id]).fetchone()[0]
    finally:
        con.close()
