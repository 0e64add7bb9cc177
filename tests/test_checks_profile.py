"""The participants suite reads one pass over each load, not the rows: the row-level rules it used
to re-check are enforced at ingest (each one shown here by the reject it gives), and the profile
the batch-level rules read holds what the rows say."""

from __future__ import annotations

import pytest

from flows import checks, database, ingest, participant_profile
from tests.conftest import TEST_KEY
from tests.fixtures.checks import batches
from tests.fixtures.checks.batches import prepare

HEADER = "card_no,nik,region_code,segment,status,employer_id,wage\n"
REPEATS_SQL = participant_profile._repeats_sql
GOOD = "0001000000001,3326014507900001,3326,PBI_APBN,ACTIVE,,\n"

# The staging suite's former row-level expectation -> a row that breaks it -> the reason ingest gives.
ROW_RULES = {
    "card_no is always filled in": (",3326014507900002,3326,PBI_APBN,ACTIVE,,", "card_no is missing"),
    "card numbers are 13 digits": ("000100000002,3326014507900002,3326,PBI_APBN,ACTIVE,,", "card_no must be 13 digits"),
    "person_key is always filled in": ("0001000000002,,3326,PBI_APBN,ACTIVE,,", "NIK is missing"),
    "person_key is a 32-byte keyed hash, never a raw NIK": (
        "0001000000002,33260145079,3326,PBI_APBN,ACTIVE,,",
        "NIK must be 16 digits",
    ),
    "sex derived from the NIK is M or F": (
        "0001000000002,3326017507900002,3326,PBI_APBN,ACTIVE,,",
        "NIK birth day (digits 7-8) must be 01-31",
    ),
    "birth year derived from the NIK is between 1900 and the month's year": (
        "0001000000002,3326011513900002,3326,PBI_APBN,ACTIVE,,",
        "NIK birth month (digits 9-10) must be 01-12",
    ),
    "region_code is always filled in": ("0001000000002,3326014507900002,,PBI_APBN,ACTIVE,,", "region_code is missing"),
    "region_code is a kab/kota code listed in seeds/regions.csv": (
        "0001000000002,3326014507900002,9999,PBI_APBN,ACTIVE,,",
        "unknown region code",
    ),
    "segment is always filled in": ("0001000000002,3326014507900002,3326,,ACTIVE,,", "segment is missing"),
    "segment is one of the six JKN segments": ("0001000000002,3326014507900002,3326,PBI,ACTIVE,,", "unknown segment"),
    "status is always filled in": ("0001000000002,3326014507900002,3326,PBI_APBN,,,", "status is missing"),
    "status is ACTIVE or INACTIVE": ("0001000000002,3326014507900002,3326,PBI_APBN,MATI,,", "unknown status"),
    "wage earners in private companies (PPU_BU) carry their employer_id": (
        "0001000000002,3326014507900002,3326,PPU_BU,ACTIVE, ,3500000",
        "employer_id (NPP) is required",
    ),
    "wages are never negative": ("0001000000002,3326014507900002,3326,PPU_BU,ACTIVE,E1,-1", "negative amount"),
}


@pytest.mark.parametrize("rule", list(ROW_RULES))
def test_row_rules_are_enforced_at_ingest(con, tmp_path, rule):
    line, reason = ROW_RULES[rule]
    path = tmp_path / "participants_2022-09.csv"
    path.write_text(HEADER + GOOD + line + "\n", encoding="utf-8")
    [outcome] = ingest.ingest_files(con, [path], 60.0, pseudonym_key=TEST_KEY)
    assert (outcome.status, outcome.rows_loaded, outcome.rows_rejected) == ("staged", 1, 1)
    reasons = [row[0] for row in con.execute("select reason from ops.rejects where line = 3").fetchall()]
    assert any(reason in text for text in reasons), reasons
    # and no such row reached the part the suite's batch is made of
    assert con.execute(
        "select count(*), min(octet_length(person_key)), bool_and(sex in ('M', 'F')), "
        "bool_and(birth_year between 1900 and year(month)) from raw.participants"
    ).fetchone() == (1, 32, True, True)


def test_row_rules_left_the_staging_suite():
    descriptions = {
        e["meta"]["description"]
        for e in checks.read_suite(checks.EXPECTATIONS_DIR / "staging.participants.json")["expectations"]
    }
    assert not descriptions & set(ROW_RULES)


def test_the_profile_holds_the_counts_and_repeats_of_the_rows(settings):
    prepare(
        settings,
        spoil=[
            f"update raw.participants set card_no = '{batches.card(6)}' where period = '2022-08' "
            f"and card_no = '{batches.card(5)}'",
            f"update raw.participants set person_key = unhex('{batches.person_key(8)}') where period = '2022-08' "
            f"and card_no = '{batches.card(7)}'",
        ],
    )
    con = database.connect(settings)
    try:
        assert participant_profile.profile_loads(con) == 2  # July (published) and August (staged)
        assert participant_profile.profile_loads(con) == 0  # once per load: parts never change
        profile = con.execute(
            "select load_id, month, region_code, segment, status, participants "
            "from ops.participant_profile order by all"
        ).fetchall()
        counted = con.execute(
            "select load_id, month, region_code, segment, status, count(*) "
            "from raw.participants group by all order by all"
        ).fetchall()
        assert profile == counted
        repeats = con.execute(
            "select strftime(month, '%Y-%m'), key_column, repeated_keys from ops.participant_repeats order by all"
        ).fetchall()
        assert repeats == [
            ("2022-07", "card_no", 0),
            ("2022-07", "person_key", 0),
            ("2022-08", "card_no", 1),
            ("2022-08", "person_key", 1),
        ]
        # a load that is no longer live loses its profile
        con.execute("update ops.load_log set status = 'quarantined' where kind = 'participants' and period = '2022-08'")
        participant_profile.profile_loads(con)
        assert con.execute("select distinct strftime(month, '%Y-%m') from ops.participant_profile").fetchall() == [
            ("2022-07",)
        ]
    finally:
        con.close()


def test_a_hash_shared_by_different_keys_is_not_a_repeat(settings, monkeypatch):
    """Keys are grouped by 64-bit hash first; a collision must cost a second look, never a failure.
    Forcing every card number to one hash makes every card a candidate."""
    prepare(settings)
    con = database.connect(settings)
    try:
        con.execute("create or replace temp macro same_hash(value) as 42")
        monkeypatch.setattr(
            participant_profile, "ONE_PASS", participant_profile.ONE_PASS.replace("hash(card_no)", "same_hash(card_no)")
        )
        monkeypatch.setattr(participant_profile, "_repeats_sql", lambda key, grouping_id: _colliding(key, grouping_id))
        participant_profile.profile_loads(con)
        assert con.execute("select sum(repeated_keys) from ops.participant_repeats").fetchone()[0] == 0
        assert con.execute("select count(*) from ops.participant_repeats").fetchone()[0] == 4
    finally:
        con.close()


def _colliding(key: str, grouping_id: int) -> str:
    real = REPEATS_SQL
    return (
        real(key, grouping_id).replace(f"hash(rows.{key})", f"same_hash(rows.{key})")
        if key == "card_no"
        else real(key, grouping_id)
    )


def test_once_profiled_the_suite_reads_no_participant_rows(settings, capsys):
    """The staging suites' results come from the profile: with every participants part emptied after
    the first check (same columns, no rows), a second check observes exactly the same."""
    from flows import parts

    prepare(
        settings,
        spoil=[
            f"update raw.participants set card_no = '{batches.card(6)}' where period = '2022-08' "
            f"and card_no = '{batches.card(5)}'",
            "delete from raw.region_counts where period = '2022-08' and region_code = '3326'",
        ],
    )
    suites = [checks.EXPECTATIONS_DIR / f"{name}.json" for name in ("staging.participants", "staging.region_counts")]
    first = checks.run_suites(settings, suites, "first", build_docs=False)
    con = database.connect(settings)
    try:
        for (part,) in con.execute("select part from ops.load_log where kind = 'participants'").fetchall():
            path = parts.root_of(con) / part
            emptied = path.with_name("emptied.parquet")
            con.execute(f"copy (select * from read_parquet('{path}') limit 0) to '{emptied}' (format parquet)")
            emptied.replace(path)
        assert con.execute("select count(*) from raw.participants").fetchone()[0] == 0
    finally:
        con.close()
    second = checks.run_suites(settings, suites, "second", build_docs=False)

    def observed(report):
        return [(r.suite, r.expectation, r.success, r.observed) for r in report.results]

    assert observed(second) == observed(first)
    assert "{batch}" not in capsys.readouterr().out  # GX's notice about queries without it stays out of the CLI
    assert {r.expectation for r in first.results if not r.success} == {
        "a card number appears once per month",
        "every region that reported last month (region counts or participant extract) reports in each month "
        "of the batch",
    }


def test_a_card_number_in_two_province_files_of_one_month_fails_the_check(settings, tmp_path):
    """A month delivered per province: each file is clean on its own (ingest sees no repeat), but the
    same card number, and the same person, sit in two provinces' files; the profile of each load
    cannot see it, so the uniqueness rules read that month's key column."""
    from flows import metrics

    west = tmp_path / "participants_2022-08_p32.csv"
    west.write_text(
        HEADER + "0001000000001,3201014507900001,3201,PBI_APBN,ACTIVE,,\n"
        "0001000000002,3201014507900002,3201,PBI_APBN,ACTIVE,,\n"
    )
    central = tmp_path / "participants_2022-08_p33.csv"
    central.write_text(HEADER + GOOD + "0001000000003,3201014507900002,3326,PBI_APBN,ACTIVE,,\n")
    con = database.connect(settings)
    try:
        database.load_seeds(con, settings.seeds)
        results = ingest.ingest_files(con, [west, central], pseudonym_key=TEST_KEY)
        assert [(r.status, r.rows_loaded, r.rows_rejected) for r in results] == [("staged", 2, 0), ("staged", 2, 0)]
        metrics.build(con, layers=("staging",))
    finally:
        con.close()
    suite = [checks.EXPECTATIONS_DIR / "staging.participants.json"]
    failed = {
        r.expectation: (r.severity, r.observed)
        for r in checks.run_suites(settings, suite, "provinces", build_docs=False).results
        if not r.success
    }
    assert set(failed) == {
        "a card number appears once per month",
        "a person holds one card per month (two cards: a duplicate enrolment)",
    }
    assert failed["a card number appears once per month"][0] == "critical"


def test_ingest_stores_the_profile_with_the_load_and_the_check_reads_no_rows(settings, tmp_path):
    """A participants file ingested carries its profile into the registering transaction: the check
    stage finds nothing left to profile, and the suite still fails on what the file holds (two cards
    for one person; a card number twice is a reject, so the part never repeats one)."""
    path = tmp_path / "participants_2022-08.csv"
    path.write_text(
        HEADER + GOOD + "0001000000002,3326014507900001,3326,PBPU,INACTIVE,,\n"  # the same person, a second card
        "0001000000003,3326014507900003,3326,PBPU,ACTIVE,,\n"
        "0001000000003,3326014507900004,3326,PBPU,ACTIVE,,\n",  # card 3 again: rejected
        encoding="utf-8",
    )
    con = database.connect(settings)
    try:
        database.load_seeds(con, settings.seeds)
        [result] = ingest.ingest_files(con, [path], 60.0, pseudonym_key=TEST_KEY)
        assert (result.status, result.rows_loaded, result.rows_rejected) == ("staged", 3, 1)
        profile = con.execute(
            "select load_id, month, region_code, segment, status, participants "
            "from ops.participant_profile order by all"
        ).fetchall()
        counted = con.execute(
            "select load_id, month, region_code, segment, status, count(*) "
            "from raw.participants group by all order by all"
        ).fetchall()
        assert profile == counted and sum(row[-1] for row in profile) == 3
        assert con.execute("select key_column, repeated_keys from ops.participant_repeats order by all").fetchall() == [
            ("card_no", 0),
            ("person_key", 1),
        ]
        assert participant_profile.profile_loads(con) == 0  # profiled at ingest: no row read again
        from flows import metrics

        metrics.build(con, layers=("staging",))
    finally:
        con.close()
    suite = [checks.EXPECTATIONS_DIR / "staging.participants.json"]
    failed = {
        r.expectation for r in checks.run_suites(settings, suite, "ingested", build_docs=False).results if not r.success
    }
    assert "a person holds one card per month (two cards: a duplicate enrolment)" in failed
    assert "a card number appears once per month" not in failed


def test_a_refused_file_leaves_no_profile(con, tmp_path):
    path = tmp_path / "participants_2022-08.csv"
    path.write_text(HEADER + GOOD + "0001000000002,33260145079,3326,PBI_APBN,ACTIVE,,\n", encoding="utf-8")
    [result] = ingest.ingest_files(con, [path], 1.0, pseudonym_key=TEST_KEY)
    assert result.status == "rejected"
    assert con.execute(
        "select (select count(*) from ops.participant_profile), (select count(*) from ops.participant_repeats)"
    ).fetchone() == (0, 0)
