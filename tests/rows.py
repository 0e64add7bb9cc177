"""Register rows straight as parts, as a staged file would, for "given rows, expect rows" tests."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flows import metrics, parts
from flows.ingest.kinds import KINDS, part_columns, raw_schema
from flows.ingest.part import part_name


def stage(con, kind: str, period: str, rows: list[tuple], status: str = "staged") -> int:
    """Register `rows` (the raw view's columns after load_id, file_name, period) as one file's part."""
    load_id = con.execute("select coalesce(max(load_id), 0) + 1 from ops.load_log").fetchone()[0]
    file_name = f"{kind}_{period}.csv"
    part = part_name(kind, period, f"sha-{load_id}")
    schema = raw_schema(KINDS[kind])
    con.execute(f"create or replace temp table staged_rows ({', '.join(f'{n} {t}' for n, t in schema)})")
    con.executemany(
        f"insert into staged_rows values ({', '.join('?' * len(schema))})",
        [(load_id, file_name, period, *row) for row in rows],
    )
    _write_part(con, kind, "staged_rows", load_id, part)
    con.execute("drop table staged_rows")
    con.execute(
        "insert into ops.load_log values (?, ?, ?, ?, ?, ?, 0, ?, '', ?, null, ?, null)",
        [load_id, file_name, f"sha-{load_id}", kind, period, len(rows), status, datetime.now(UTC), part],
    )
    parts.refresh_views(con)
    return load_id


def spoil(con, statements) -> None:
    """Change registered rows as if the files had held them: `statements` (SQL on `raw.<kind>`, or on
    anything else) run on a copy of each raw view named, and each load's part is rewritten from the
    copy. Tests only: parts are immutable for everything else."""
    kinds = sorted({kind for statement in statements for kind in re.findall(r"\braw\.(\w+)", statement)})
    for kind in kinds:
        con.execute(f"create or replace temp table spoiled_{kind} as select * from raw.{kind}")
    for statement in statements:
        con.execute(re.sub(r"\braw\.(\w+)", r"spoiled_\1", statement))
    for kind in kinds:
        for load_id, part in con.execute(
            "select load_id, part from ops.load_log where kind = ? and part is not null", [kind]
        ).fetchall():
            _write_part(con, kind, f"spoiled_{kind}", load_id, part)
            # a rewritten part is other rows: its load's profile (if a build or check made one) is profiled again
            for table in ("ops.participant_profile", "ops.participant_repeats"):
                con.execute(f"delete from {table} where load_id = ?", [load_id])
        con.execute(f"drop table spoiled_{kind}")
    parts.refresh_views(con)


def _write_part(con, kind: str, table: str, load_id: int, part: str) -> None:
    path = parts.root_of(con) / part
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = ", ".join(part_columns(KINDS[kind]))
    con.execute(f"copy (select {columns} from {table} where load_id = {int(load_id)}) to '{path}' (format parquet)")


def region_counts(con, month: str, counts: dict[str, tuple[int, int]], segment: str = "PBPU") -> int:
    """counts: region_code -> (active, inactive) participants in one segment."""
    rows = []
    for code, (active, inactive) in counts.items():
        rows.append((f"{month}-01", code, segment, "ACTIVE", active))
        rows.append((f"{month}-01", code, segment, "INACTIVE", inactive))
    return stage(con, "region_counts", month, rows)


def population(con, period: str, figures: dict[str, int]) -> int:
    year, half = period.split("-")
    as_of = f"{year}-06-30" if half == "S1" else f"{year}-12-31"
    return stage(con, "population", period, [(as_of, code, value) for code, value in figures.items()])


def build(con, lag: int = 0, layers: tuple[str, ...] = ("staging", "intermediate", "marts")) -> None:
    metrics.build(con, lag, layers)


def query(con, sql: str, params=()) -> list[tuple]:
    return con.execute(sql, list(params)).fetchall()


def employers(con, month: str, registrations: list[tuple]) -> int:
    """registrations: (employer_id, business_id, name, region_code, registered_workers, reported_wage_total,
    contribution_due, contribution_paid, months_in_arrears)."""
    return stage(con, "employers", month, [(f"{month}-01", *row) for row in registrations])


def workforce(con, month: str, companies: list[tuple]) -> int:
    """companies: (business_id, name, region_code, workers)."""
    return stage(con, "workforce", month, [(f"{month}-01", *row) for row in companies])


def participants(con, month: str, people: list[tuple]) -> int:
    """people: (card_no, region_code, segment, status, employer_id, wage); person_key derived from card_no."""
    return stage(
        con,
        "participants",
        month,
        [
            (f"{month}-01", card_no, f"key-{card_no}".encode(), None, None, region, segment, status, employer, wage)
            for card_no, region, segment, status, employer, wage in people
        ],
    )


def minimum_wages(con, wages: dict[tuple[str, int], float]) -> None:
    """Replace the minimum-wage seed with round figures, so expected values can be computed by hand."""
    con.execute("delete from ref.minimum_wages")
    con.executemany("insert into ref.minimum_wages values (?, ?, ?)", [(r, y, w) for (r, y), w in wages.items()])


def publish_demo(con, settings) -> None:
    """The demo landing folder ingested, built and published into `con` (without the flow: fast)."""
    from flows import database, demo, ingest

    database.load_seeds(con, settings.seeds)
    ingest.ingest_files(con, sorted(demo.write_landing(settings.landing_dir)))
    metrics.build(con)
    metrics.publish(con)
