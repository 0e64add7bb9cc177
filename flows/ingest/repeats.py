"""Which 64-bit key hashes occur more than once in a part: sorted in numpy, not grouped in DuckDB.

A national extract holds tens of millions of distinct keys. Grouping them in DuckDB (a hash
aggregate of 30 M groups) held about 1.1 GB at 30 M rows, the largest thing ingest keeps in memory
(BENCHMARKS.md, issue 13: ingest's peak RSS). Here each row's key hash goes into one preallocated
array of 8 bytes a row (240 MB at 30 M rows), sorted in place; the hashes equal to their neighbour
are the candidates. The caller then compares the keys themselves on the candidate rows only (few
or none), so a hash collision costs a second look, never a false repeat.

Several keys of one part (a participants part's card number and its person per month) are read
in one scan, and their arrays sorted side by side in threads (numpy releases the GIL while it
sorts), so a second key costs neither a second read of the part nor a second core's idle time.

Where the extension is loaded (`native`: a participants part, whose person_key the extension computes),
its aggregate `jkn_repeated_hashes` (flows/native/jkn_repeats.c) does the same inside DuckDB's scan: the
hashes are gathered by DuckDB's threads and looked up in hash sets in C, none fetched into Python. At 10 M
rows that took the step from 1.7 s to 0.7 s (BENCHMARKS.md, "Ingest, repeated keys"); its memory is the
same 8 bytes a row and key. tests/test_repeats.py checks both ways against each other.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

# Rows fetched from DuckDB at a time into the arrays.
BATCH_ROWS = 1 << 20
# The extension's aggregate: the distinct UBIGINTs that occur more than once, as a sorted list
NATIVE_AGGREGATE = "jkn_repeated_hashes"


def repeated_hashes(con, relation: str, expression: str, rows: int):
    """The distinct values of `expression` (a UBIGINT hash) over `relation` that occur more than once,
    as a pyarrow table with one column `key_hash`, or None when none repeats. `rows`: at most how
    many rows `relation` has (the array is allocated once)."""
    return repeated_hashes_of(con, relation, [expression], rows)[0]


def repeated_hashes_of(con, relation: str, expressions: list[str], rows: int, native: bool = False) -> list:
    """`repeated_hashes` for each of `expressions`, from one scan of `relation` (`native`: by the
    extension's aggregate, which `con` must have loaded)."""
    if native:
        return _native_repeated(con, relation, expressions)
    import numpy as np

    arrays = [np.empty(rows, dtype=np.uint64) for _ in expressions]
    filled = 0
    selected = ", ".join(f"{expression} as key_hash_{index}" for index, expression in enumerate(expressions))
    reader = con.execute(f"select {selected} from {relation}").to_arrow_reader(BATCH_ROWS)
    for batch in reader:
        if filled + batch.num_rows > rows:
            raise RuntimeError(f"more rows than the {rows} expected in {relation}")
        for array, column in zip(arrays, batch.columns, strict=True):
            array[filled : filled + batch.num_rows] = column.to_numpy(zero_copy_only=False)
        filled += batch.num_rows
    if len(arrays) == 1:
        return [_repeated(arrays[0][:filled])]
    with ThreadPoolExecutor(len(arrays)) as pool:
        return list(pool.map(lambda array: _repeated(array[:filled]), arrays))


def _native_repeated(con, relation: str, expressions: list[str]) -> list:
    selected = ", ".join(f"{NATIVE_AGGREGATE}({sql}) as key_hash_{index}" for index, sql in enumerate(expressions))
    con.execute(f"create or replace temp table jkn_repeated as select {selected} from {relation}")
    try:
        found = []
        for index in range(len(expressions)):
            table = con.execute(f"select unnest(key_hash_{index}) as key_hash from jkn_repeated").to_arrow_table()
            found.append(table if table.num_rows else None)
        return found
    finally:
        con.execute("drop table if exists jkn_repeated")


def _repeated(hashes):
    import numpy as np
    import pyarrow as pa

    hashes.sort()
    repeated = hashes[1:][hashes[1:] == hashes[:-1]]
    if not len(repeated):
        return None
    return pa.table({"key_hash": pa.array(np.unique(repeated), pa.uint64())})
