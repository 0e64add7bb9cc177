"""Extracts delivered per province: `<kind>_<period>_p<province code>.<ext>`, one slice of a period.

A national month is too big for one file to be one unit of work (the biggest province would set
the wall time of a spread ingest), and offices correct one province at a time. So a period of any
kind may arrive as one file for the whole country (`participants_2023-01.csv`) or as several
files, one per province (`participants_2023-01_p32.csv`, `..._p33.csv`, the two-digit Kemendagri
province code). Each file is read into its own part, on whichever worker gets it, and registered
as its own load; `ops.load_log.province_code` says which province a load covers (null: all).

What is current is decided per kind, period and province, like a table partition overwritten by
a newer write: the rows of a province come from the newest live load that covers it. A province
file replaces only that province (of an earlier province file or of a whole-country file); a
whole-country file delivered later replaces every province. The rule is written once, as the model
`sql/staging/current_loads.sql`: every staging view reads its rows through it, and `CURRENT_LOADS`
below lists its loads for the writer's bookkeeping (which published loads a publish supersedes).

A province file holds rows of its own province only: a row of a region in another province
would be counted twice (or lost when that province is corrected), so the file is refused whole,
naming the line and column, like a period column that disagrees with the name.
"""

from __future__ import annotations

from flows.errors import FileRejected
from flows.ingest.landing import FILE_NAME

# The live loads still current for at least one province they cover. The rule itself is the
# model `sql/staging/current_loads.sql` (which every staging view reads); this is its list of loads
# for the writer's bookkeeping (which published loads a publish supersedes; what a build was made from).
CURRENT_LOADS = "select distinct load_id from staging.current_loads"


def province_of(file_name: str) -> str | None:
    """The province a file covers, from its name (`..._p33.csv`: '33'); None for a whole-country file."""
    match = FILE_NAME.match(file_name)
    return match.group("province") if match else None


def check_rows_in_province(
    con, file_name: str, rows: str, province: str, province_codes: tuple[str, ...], header_name: str, as_written
) -> None:
    """Refuse a province file whose name names no province, or that holds a region of another one.

    `rows` is the part being written (with `line` and `bad`); rows already flagged bad (an unknown
    region code) go to `ops.rejects` as usual. `as_written` turns a row's line into the file's."""
    if province not in province_codes:
        raise FileRejected(
            file_name, f"province {province!r} in the name (_p{province}) is not a province code in seeds/regions.csv"
        )
    outside = con.execute(
        f"select line, region_code from {rows} where not bad and left(region_code, 2) <> ? order by line limit 1",
        [province],
    ).fetchone()
    if outside:
        line, region = outside
        raise FileRejected(
            file_name,
            f"region {region!r} is in province {region[:2]!r}, not in province "
            f"{province!r} of the file name (_p{province}); a province file holds "
            "that province's regions only",
            line=as_written(line),
            column=header_name,
        )
