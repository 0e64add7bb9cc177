"""The extension's aggregate `jkn_repeated_hashes` (flows/native/jkn_repeats.c) against numpy's way.

Ingest finds the card numbers and persons that repeat in a part from their 64-bit hashes
(flows/ingest/repeats.py): by the aggregate where the extension is loaded, else by sorting them in
numpy. Both must name exactly the hashes that occur more than once, on shapes that reach the C code's
edges: its first bucket and its last (top byte 0x00 and 0xFF), one bucket holding everything, more rows
than one block or one DuckDB vector, nulls, several groups, nothing at all.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from flows.ingest.repeats import repeated_hashes_of


def _shapes() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20241)
    spread = rng.integers(0, 2**64 - 1, 1_500_000, dtype=np.uint64)  # more than a block (2^20 values)
    top, bottom = np.uint64(0xFF << 56), np.uint64((1 << 56) - 1)
    return {
        "spread, a tenth repeated": np.concatenate([spread, spread[:150_000]]),
        "spread, none repeated": spread,
        "edges of the first and last bucket": np.array(
            [0, 0, 1, 2**64 - 1, 2**64 - 1, 2**64 - 2, int(top), int(top), int(bottom), int(bottom), 5], dtype=np.uint64
        ),
        "one bucket, every value three times": np.tile(rng.integers(0, 2**40, 50_000, dtype=np.uint64), 3),
        "one value only": np.full(70_000, 42, dtype=np.uint64),
        # one large bucket (top byte 0x00) and 255 of three values: the set is sized for the large one, and
        # emptied slot by slot after each small one
        "one large bucket, many small ones": np.concatenate(
            [
                np.tile(rng.integers(1, 2**56, 100_000, dtype=np.uint64), 2),
                np.array([(top << 56) | low for top in range(1, 256) for low in (5, 5, 6)], dtype=np.uint64),
            ]
        ),
        "one row": np.array([7], dtype=np.uint64),
    }


@pytest.mark.parametrize("shape", list(_shapes()))
def test_the_aggregate_finds_the_same_repeated_hashes_as_numpy(extension_con, shape):
    values = _shapes()[shape]
    rng = np.random.default_rng(len(values))
    extension_con.register("hashes", pa.table({"h": pa.array(rng.permutation(values), pa.uint64())}))
    try:
        native = repeated_hashes_of(extension_con, "hashes", ["h"], len(values), native=True)[0]
        numpy = repeated_hashes_of(extension_con, "hashes", ["h"], len(values))[0]
    finally:
        extension_con.unregister("hashes")
    distinct, counts = np.unique(values, return_counts=True)
    expected = sorted(int(value) for value in distinct[counts > 1])
    if not expected:
        assert native is None and numpy is None
        return
    found = native.column("key_hash").to_pylist()
    assert sorted(found) == expected and len(found) == len(expected)  # each once
    assert sorted(numpy.column("key_hash").to_pylist()) == expected
    assert native.schema.field("key_hash").type == numpy.schema.field("key_hash").type == pa.uint64()


def test_the_aggregate_skips_nulls_and_gives_an_empty_list_for_no_rows(extension_con):
    assert extension_con.execute(
        "select jkn_repeated_hashes(h) from (values (1::ubigint), (null), (null), (2), (1)) as t(h)"
    ).fetchone() == ([1],)  # a null is no value, twice or not
    nothing = "select jkn_repeated_hashes(h) from (select 1::ubigint as h where false)"
    assert extension_con.execute(nothing).fetchone() == ([],)


def test_the_aggregate_keeps_groups_apart_across_threads(extension_con):
    found = extension_con.execute(
        "select g, jkn_repeated_hashes(h) from (select i % 5 as g, (i // 10)::ubigint as h from range(3000000) t(i)) "
        "group by g order by g"
    ).fetchall()
    # in group g, h = i // 10 takes each value twice (i and i + 5 share g and i // 10)
    assert [group for group, _ in found] == [0, 1, 2, 3, 4]
    for _, hashes in found:
        assert sorted(hashes) == list(range(300_000))


def test_several_keys_in_one_scan_equal_each_alone(extension_con):
    extension_con.execute(
        "create temp table keys as select (i % 999_997)::ubigint as a, (i // 2)::ubigint as b, i::ubigint as c "
        "from range(1_000_000) as t(i)"
    )
    together = repeated_hashes_of(extension_con, "keys", ["a", "b", "c"], 1_000_000, native=True)
    alone = [
        repeated_hashes_of(extension_con, "keys", [column], 1_000_000, native=True)[0] for column in ("a", "b", "c")
    ]
    assert sorted(together[0].column("key_hash").to_pylist()) == [0, 1, 2]
    assert together[1].num_rows == 500_000
    assert together[2] is None and alone[2] is None
    for mine, theirs in zip(together[:2], alone[:2], strict=True):
        assert sorted(mine.column("key_hash").to_pylist()) == sorted(theirs.column("key_hash").to_pylist())
