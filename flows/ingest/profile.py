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
  `person_key` (two cards for one person: a warning, not a reject) is counted here: the 64-bit
  hashes of the keys that repeat are found by sorting them (`flows.ingest.repeats`; ingest reads
  them in the scan that finds repeated card numbers), and only the rows with such a hash are
  compared by the key itself, so a collision costs a second look, never a false repeat.

A function of the part alone, as ingest is: it runs in `read_file`'s own DuckDB, on a worker too.
"""

from __future__ import annotations

from flows.ingest.kinds import ExtractKind


def has_profile(kind: ExtractKind) -> bool:
    return kind.name == "participants"


# The hash a person's repeats are found by (`flows.ingest.repeats`): one person per month.
PERSON_HASH = "hash(month, person_key)"


def profile_part(con, part: str, candidates) -> tuple[list[tuple], list[tuple]]:
    """(profile rows: month, region_code, segment, status, participants; repeats rows: month,
    key_column, repeated_keys) of the rows of `part`, a `read_parquet(...)` of the written part.
    `candidates`: the `PERSON_HASH`es that repeat (`flows.ingest.repeats`; None when none does),
    found by the caller over these rows or more: a candidate is only a row to look at again."""
    profile = con.execute(
        f"select month, region_code, segment, status, count(*) from {part} group by all order by all"
    ).fetchall()
    people = []
    if candidates is not None:
        con.register("person_candidates", candidates)
        try:
            people = con.execute(
                "select month, count(*) from ("
                f"select month, person_key from {part} "
                f"where {PERSON_HASH} in (select key_hash from person_candidates) "
                "group by all having count(*) > 1) group by month"
            ).fetchall()
        finally:
            con.unregister("person_candidates")
    repeated = dict(people)
    months = sorted({row[0] for row in profile})
    repeats = [(month, "card_no", 0) for month in months] + [
        (month, "person_key", int(repeated.get(month, 0))) for month in months
    ]
    return profile, repeats


def insert_arrow(con, table, sql: str, parameters: list) -> None:
    """Run `sql` (an insert reading `{table}`) over the Arrow `table`, registered by a name of its own for
    the statement: a replacement scan of a Python local would not see it through a wrapped connection."""
    name = f"_jkn_arrow_{id(table):x}"
    con.register(name, table)
    try:
        con.execute(sql.format(table=name), parameters)
    finally:
        con.unregister(name)


def store_profile(con, load_id: int, profile: list[tuple], repeats: list[tuple]) -> None:
    """The participants suite's profile of a part, in the transaction that registers its load: a load is
    never registered without it, so the check stage reads none of its rows. Thousands of rows (region x
    segment x status): inserted from Arrow, not row by row."""
    import pyarrow as pa

    month, region_code, segment, status, participants = (list(c) for c in zip(*profile, strict=True))
    insert_arrow(
        con,
        pa.table(
            {
                "month": pa.array(month, pa.date32()),
                "region_code": pa.array(region_code, pa.string()),
                "segment": pa.array(segment, pa.string()),
                "status": pa.array(status, pa.string()),
                "participants": pa.array(participants, pa.int64()),
            }
        ),
        "insert into ops.participant_profile (load_id, month, region_code, segment, status, participants) "
        "select ?, month, region_code, segment, status, participants from {table}",
        [load_id],
    )
    con.executemany(
        "insert into ops.participant_repeats (load_id, month, key_column, repeated_keys) values (?, ?, ?, ?)",
        [(load_id, *row) for row in repeats],
    )
