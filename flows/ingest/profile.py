"""The participants suite's profile of one part, computed by ingest while it still has the part open.

The staging suite checks counts and repeated keys, not rows (`flows/participant_profile.py`). When
ingest writes a participants part it computes them here, from the part just written (its good rows
only), and `flows.ingest.register` stores them with the load, in the transaction that registers it:
a registered participants load then already has its profile, and the check stage reads no rows of
it. (Loads registered otherwise, by an older release or by tests that write parts directly, are
profiled by the check stage, as before.)

- participants per month x region x segment x status;
- repeated keys per month: `card_no` is 0 by construction (`part._reject_repeats` rejects every
  later row with an earlier good row's card number, and the part holds good rows only);
  `person_key` (two cards for one person: a warning, not a reject) is counted here: people are
  grouped by the 64-bit hash of their key in the same aggregation as the counts, and only the
  keys whose hash repeats are compared by the key itself, so a collision costs a second look,
  never a false repeat.

A function of the part alone, as ingest is: it runs in `read_file`'s own DuckDB, on a worker too.
"""

from __future__ import annotations

from flows.ingest.kinds import ExtractKind

# Repeated-key counts a participants load carries (the order of `ops.participant_repeats.key_column`).
KEY_COLUMNS = ("card_no", "person_key")


def has_profile(kind: ExtractKind) -> bool:
    return kind.name == "participants"


def profile_part(con, part: str) -> tuple[list[tuple], list[tuple]]:
    """(profile rows: month, region_code, segment, status, participants; repeats rows: month,
    key_column, repeated_keys) of the rows of `part`, a `read_parquet(...)` of the written part."""
    con.execute(
        "create or replace temp table part_pass as "
        "select grouping(region_code, segment, status, person_hash) as grouping_id, "
        "month, region_code, segment, status, person_hash, count(*) as row_count "
        f"from (select month, region_code, segment, status, hash(person_key) as person_hash from {part}) "
        "group by grouping sets ((month, region_code, segment, status), (month, person_hash)) "
        "having grouping(person_hash) = 1 or count(*) > 1"
    )
    try:
        profile = con.execute(
            "select month, region_code, segment, status, row_count from part_pass where grouping_id = 1 order by all"
        ).fetchall()
        # grouping bits 0b1110: region_code, segment and status left out, the person hash kept
        people = con.execute(
            "with candidates as (select month, person_hash from part_pass where grouping_id = 14) "
            "select month, count(*) from ("
            f"select part_rows.month, part_rows.person_key from {part} as part_rows "
            "semi join candidates on part_rows.month = candidates.month "
            "and hash(part_rows.person_key) = candidates.person_hash "
            "group by all having count(*) > 1) group by month"
        ).fetchall()
    finally:
        con.execute("drop table part_pass")
    repeated = dict(people)
    months = sorted({row[0] for row in profile})
    repeats = [(month, "card_no", 0) for month in months] + [
        (month, "person_key", int(repeated.get(month, 0))) for month in months
    ]
    return profile, repeats
