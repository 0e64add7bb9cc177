"""Which 64-bit key hashes occur more than once in a part: sorted in numpy, not grouped in DuckDB.

A national extract holds tens of millions of distinct keys. Grouping them in DuckDB (a hash
aggregate of 30 M groups) held about 1.1 GB at 30 M rows, the largest thing ingest keeps in memory
(BENCHMARKS.md, issue 13: ingest's peak RSS). Here each row's key hash goes into one preallocated
array of 8 bytes a row (240 MB at 30 M rows), sorted in place; the hashes equal to their neighbour
are the candidates. The caller then compares the keys themselves on the candidate rows only (few
or none), so a hash collision costs a second look, never a false repeat.
"""

from __future__ import annotations

# Rows fetched from DuckDB at a time into the array.
BATCH_ROWS = 1 << 20


def repeated_hashes(con, relation: str, expression: str, rows: int):
    """The distinct values of `expression` (a UBIGINT hash) over `relation` that occur more than once,
    as a pyarrow table with one column `key_hash`, or None when none repeats. `rows`: at most how
    many rows `relation` has (the array is allocated once)."""
    import numpy as np
    import pyarrow as pa

    hashes = np.empty(rows, dtype=np.uint64)
    filled = 0
    reader = con.execute(f"select {expression} as key_hash from {relation}").to_arrow_reader(BATCH_ROWS)
    for batch in reader:
        column = batch.column(0).to_numpy(zero_copy_only=False)
        if filled + len(column) > rows:
            raise RuntimeError(f"more rows than the {rows} expected in {relation}")
        hashes[filled : filled + len(column)] = column
        filled += len(column)
    hashes = hashes[:filled]
    hashes.sort()
    repeated = hashes[1:][hashes[1:] == hashes[:-1]]
    if not len(repeated):
        return None
    return pa.table({"key_hash": pa.array(np.unique(repeated), pa.uint64())})
