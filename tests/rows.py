"""Put rows straight into the raw tables, as a staged file would, for "given rows, expect rows" tests."""

from __future__ import annotations

from datetime import UTC, datetime

from flows import metrics


def stage(con, kind: str, period: str, rows: list[tuple], status: str = "staged") -> int:
    """Insert `rows` (the raw table's columns after load_id, file_name, period) as one file."""
    load_id = con.execute("select nextval('ops.load_id_seq')").fetchone()[0]
    file_name = f"{kind}_{period}.csv"
    con.execute(
        "insert into ops.load_log values (?, ?, ?, ?, ?, ?, 0, ?, '', ?, null)",
        [load_id, file_name, f"sha-{load_id}", kind, period, len(rows), status, datetime.now(UTC)],
    )
    width = len(rows[0]) + 3
    placeholders = ", ".join("?" * width)
    con.executemany(
        f"insert into raw.{kind} values ({placeholders})",
        [(load_id, file_name, period, *row) for row in rows],
    )
    return load_id


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
            (f"{month}-01", card_no, f"key-{card_no}", None, None, region, segment, status, employer, wage)
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
