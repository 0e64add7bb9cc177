"""What the participants suite checks, computed in one pass over each load's rows and kept.

The row-level rules (filled-in columns, 13-digit card numbers, known region, segment and status,
PPU_BU with an employer, wages never negative, a valid NIK) are enforced once, at ingest: a row
that breaks one is in `ops.rejects` and never in a part. What is left for the staging suite is
batch-level: a card number and a person once per month, every region that reported last month
reporting again, and no region's participants jumping by more than 10%. Those need counts and
repeated keys, not rows, so each participants load is read once, the first time a check or a build
(`sql/intermediate/region_month_counts.sql` counts from the profile too) sees it, into two small
tables the suite's GX expectations query instead of the rows:

- `ops.participant_profile`: participants per load x month x region x segment x status;
- `ops.participant_repeats`: per load x month and key column (`card_no`, `person_key`), how many
  keys appear more than once (0 for a clean load; one row per key column either way, so a load
  with a row here has been profiled).

Ingest computes a participants part's profile while it writes the part (`flows/ingest/profile.py`)
and registers it with the load, in the same transaction as its `ops.load_log` row, so a load
ingested by this release is never read here; `profile_loads` profiles only the loads that came
without one (registered by an earlier release, or parts written straight by tests).

Parts are immutable, so a load's profile never goes stale; published loads keep theirs, and the
next month's checks compare with them without reading last month's rows again. The suite reads a
load's profile rows only for the provinces it is current for (`sql/staging/current_loads.sql`).
A month from one load: uniqueness within the load is uniqueness within the month. A month
delivered per province (several current loads, `_p<province>` files) may repeat a card number
across files, which no per-load profile can see: for such a month the uniqueness rules read the
key column of its current rows (one column, that month only).

The pass is one aggregation with three grouping sets: the profile's groups, and the 64-bit hashes
of card numbers and of person keys per month that occur more than once. Only when a hash repeats
(a real repeat, or a collision) are that load's rows read again, for the keys with that hash, to
count the keys that really repeat.
"""

from __future__ import annotations

import logging

import duckdb

log = logging.getLogger(__name__)

KEY_COLUMNS = ("card_no", "person_key")

# Live participants loads no check has profiled yet.
UNPROFILED = """
    select load_id from ops.load_log
    where kind = 'participants' and status in ('staged', 'published') and part is not null
      and load_id not in (select load_id from ops.participant_repeats)
"""

ONE_PASS = """
    create or replace temp table participant_pass as
    select
        grouping(region_code, segment, status, card_hash, person_hash) as grouping_id,
        load_id, month, region_code, segment, status, card_hash, person_hash, count(*) as row_count
    from (
        select load_id, month, region_code, segment, status,
               hash(card_no) as card_hash, hash(person_key) as person_hash
        from raw.participants
        where load_id in (select load_id from unprofiled_loads)
    )
    group by grouping sets (
        (load_id, month, region_code, segment, status),
        (load_id, month, card_hash),
        (load_id, month, person_hash)
    )
    having grouping(card_hash, person_hash) = 3 or count(*) > 1
"""
# grouping() bits, left to right over (region_code, segment, status, card_hash, person_hash): 1 where
# the column is not in the row's grouping set.
PROFILE_GROUPS = 3  # the card and person hash columns left out
CARD_GROUPS = 0b11101  # only card_hash kept of the five
PERSON_GROUPS = 0b11110


def _repeats_sql(key: str, grouping_id: int) -> str:
    """Keys of `key` that really repeat within a load x month, among the rows whose hash repeated."""
    hash_column = "card_hash" if key == "card_no" else "person_hash"
    return f"""
        with candidates as (
            select load_id, month, {hash_column} as key_hash from participant_pass where grouping_id = {grouping_id}
        ),
        repeated as (
            select rows.load_id, rows.month, rows.{key}
            from raw.participants as rows
            semi join candidates
                on rows.load_id = candidates.load_id and rows.month = candidates.month
                and hash(rows.{key}) = candidates.key_hash
            where rows.load_id in (select load_id from candidates)
            group by all
            having count(*) > 1
        )
        select load_id, month, count(*) as repeated_keys from repeated group by all
    """


def profile_loads(con: duckdb.DuckDBPyConnection) -> int:
    """Profile every live participants load that has no profile yet; returns how many were profiled.
    Profiles of loads that are no longer live are dropped. The writer calls it, before the checks."""
    con.execute(
        "delete from ops.participant_profile where load_id not in "
        "(select load_id from ops.load_log where kind = 'participants' and status in ('staged', 'published'))"
    )
    con.execute(
        "delete from ops.participant_repeats where load_id not in "
        "(select load_id from ops.load_log where kind = 'participants' and status in ('staged', 'published'))"
    )
    con.execute(f"create or replace temp table unprofiled_loads as {UNPROFILED}")
    loads = con.execute("select count(*) from unprofiled_loads").fetchone()[0]
    if not loads:
        con.execute("drop table unprofiled_loads")
        return 0
    con.execute(ONE_PASS)
    con.begin()
    try:
        con.execute(
            "insert into ops.participant_profile "
            "select load_id, month, region_code, segment, status, row_count from participant_pass "
            f"where grouping_id = {PROFILE_GROUPS}"
        )
        for key, grouping_id in (("card_no", CARD_GROUPS), ("person_key", PERSON_GROUPS)):
            has_candidates = con.execute(
                f"select exists (select 1 from participant_pass where grouping_id = {grouping_id})"
            ).fetchone()[0]
            found = (
                _repeats_sql(key, grouping_id)
                if has_candidates
                else ("select null::integer as load_id, null::date as month, 0::bigint as repeated_keys where false")
            )
            con.execute(
                f"insert into ops.participant_repeats "
                f"with found as ({found}), "
                "months as (select distinct load_id, month from participant_pass "
                f"where grouping_id = {PROFILE_GROUPS}) "
                f"select months.load_id, months.month, '{key}', coalesce(found.repeated_keys, 0) "
                "from months left join found using (load_id, month)"
            )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.execute("drop table if exists participant_pass")
        con.execute("drop table if exists unprofiled_loads")
    log.info("profiled %d participants load(s) for the checks", loads)
    return loads
