"""Given rows, expect rows for the staging views and intermediate tables (the marts have their own files)."""

from decimal import Decimal

import pytest

from tests import rows

# kind -> (one raw row for 2022-12 carrying `value`, after load_id/file_name/period; the staging column holding it)
RAW_ROWS = {
    "region_counts": (lambda value: ("2022-12-01", "3325", "PBPU", "ACTIVE", value), "participants"),
    "population": (lambda value: ("2022-12-31", "3325", value), "population"),
    "participants": (
        lambda value: ("2022-12-01", "0000000000001", "key-1", "F", 1990, "3325", "PPU_BU", "ACTIVE", "E001", value),
        "wage",
    ),
    "employers": (
        lambda value: ("2022-12-01", "E001", "9120000000001", "PT Satu", "3325", value, 1, 1, 1, 0),
        "registered_workers",
    ),
    "workforce": (lambda value: ("2022-12-01", "9120000000001", "PT Satu", "3325", value), "workers"),
}


@pytest.mark.parametrize("kind", sorted(RAW_ROWS))
def test_staging_reads_the_newest_live_file_of_each_period(con, kind):
    row, column = RAW_ROWS[kind]
    period = "2022-S2" if kind == "population" else "2022-12"
    rows.stage(con, kind, period, [row(1)], status="published")
    rows.stage(con, kind, period, [row(2)])  # a corrected file: replaces the period
    rows.stage(con, kind, period, [row(3)], status="quarantined")  # failed its checks
    rows.stage(con, kind, period, [row(4)], status="rejected")  # refused whole
    rows.stage(con, kind, "2022-11" if kind != "population" else "2022-S1", [row(5)], status="superseded")
    rows.build(con, layers=("staging",))
    got = rows.query(con, f"select {column}, file_name from staging.{kind}")
    assert got == [(2, f"{kind}_{period}.csv")]


def test_region_month_counts_prefers_participant_level_rows(con):
    rows.participants(
        con,
        "2022-08",
        [
            ("0000000000001", "3325", "PBPU", "ACTIVE", None, None),
            ("0000000000002", "3325", "PBPU", "ACTIVE", None, None),
            ("0000000000003", "3325", "PBPU", "INACTIVE", None, None),
        ],
    )
    rows.region_counts(con, "2022-08", {"3325": (50, 50), "3326": (7, 1)})
    rows.region_counts(con, "2022-09", {"3325": (60, 40)})
    rows.build(con, layers=("staging", "intermediate"))
    got = rows.query(
        con,
        "select strftime(month, '%Y-%m'), region_code, segment, status, participants "
        "from build.region_month_counts order by all",
    )
    assert got == [
        ("2022-08", "3325", "PBPU", "ACTIVE", 2),
        ("2022-08", "3325", "PBPU", "INACTIVE", 1),
        ("2022-08", "3326", "PBPU", "ACTIVE", 7),
        ("2022-08", "3326", "PBPU", "INACTIVE", 1),
        ("2022-09", "3325", "PBPU", "ACTIVE", 60),
        ("2022-09", "3325", "PBPU", "INACTIVE", 40),
    ]


def test_region_population_latest_semester_and_lag(con):
    rows.population(con, "2022-S1", {"3325": 1000, "3326": 2000})
    rows.population(con, "2022-S2", {"3325": 1010})  # 3326 is missing from the December figures
    for month in ("2022-06", "2022-12", "2023-01"):
        rows.region_counts(con, month, {"3325": (1, 0)})
    rows.build(con, layers=("staging", "intermediate"))
    got = rows.query(
        con,
        "select strftime(month, '%Y-%m'), region_code, population, population_period "
        "from build.region_population order by all",
    )
    assert got == [
        ("2022-06", "3325", 1000, "2022-S1"),
        ("2022-06", "3326", 2000, "2022-S1"),
        ("2022-12", "3325", 1010, "2022-S2"),
        ("2022-12", "3326", 2000, "2022-S1"),
        ("2023-01", "3325", 1010, "2022-S2"),
        ("2023-01", "3326", 2000, "2022-S1"),
    ]
    rows.build(con, lag=1, layers=("staging", "intermediate"))
    got = rows.query(
        con,
        "select strftime(month, '%Y-%m'), population_period from build.region_population "
        "where region_code = '3325' order by all",
    )
    # June 30 + 1 month is after June's end; December 31 + 1 month is after December's end
    assert got == [("2022-12", "2022-S1"), ("2023-01", "2022-S2")]


def test_region_minimum_wages_year_or_latest_earlier(con):
    rows.minimum_wages(con, {("3325", 2022): 2_000_000, ("3325", 2023): 2_100_000, ("3326", 2021): 1_900_000})
    for month in ("2022-12", "2023-01"):
        rows.employers(con, month, [("E001", None, "PT Satu", "3325", 1, 1, 0, 0, 0)])
    rows.build(con, layers=("staging", "intermediate"))
    got = rows.query(
        con,
        "select strftime(month, '%Y-%m'), region_code, monthly_minimum_wage, minimum_wage_year "
        "from build.region_minimum_wages order by all",
    )
    d = Decimal
    assert got == [
        ("2022-12", "3325", d("2000000.00"), 2022),
        ("2022-12", "3326", d("1900000.00"), 2021),
        ("2023-01", "3325", d("2100000.00"), 2023),
        ("2023-01", "3326", d("1900000.00"), 2021),
    ]


def test_employer_companies_merge_registrations_of_one_business_id(con):
    rows.minimum_wages(con, {("3325", 2022): 2_000_000})
    rows.employers(
        con,
        "2022-12",
        [
            ("E002", "9120000000001", "PT Satu Cabang", "3326", 5, 10_000_000, 500_000, 400_000, 1),
            ("E001", "9120000000001", "PT Satu", "3325", 10, 30_000_000, 1_500_000, 1_500_000, 0),
            ("E003", None, "Toko Tanpa NIB", "3325", 2, 4_000_000, 200_000, 0, 3),
        ],
    )
    rows.build(con, layers=("staging", "intermediate"))
    got = rows.query(
        con,
        "select company_key, employer_id, employer_registrations, business_id, name, region_code, "
        "registered_workers, reported_wage_total, contribution_due, contribution_paid, "
        "months_in_arrears, minimum_wage from temp.employer_companies order by company_key",
    )
    d = Decimal
    assert got == [
        # the lowest registration number names the company; region 3325's minimum wage applies
        (
            "9120000000001",
            "E001",
            2,
            "9120000000001",
            "PT Satu",
            "3325",
            15,
            d("40000000.00"),
            d("1500000.00") + d("500000.00"),
            d("1900000.00"),
            1,
            d("2000000.00"),
        ),
        (
            "NPP:E003",
            "E003",
            1,
            None,
            "Toko Tanpa NIB",
            "3325",
            2,
            d("4000000.00"),
            d("200000.00"),
            d("0.00"),
            3,
            d("2000000.00"),
        ),
    ]


def test_build_writes_without_fsst_and_gives_the_setting_back(con):
    from flows import metrics

    def disabled():
        return con.execute("select lower(current_setting('disabled_compression_methods'))").fetchone()[0]

    con.execute("set disabled_compression_methods = 'chimp'")  # someone's own setting
    with metrics.build_writes(con):
        assert set(disabled().split(",")) == {"chimp", "fsst"}
    assert disabled() == "chimp"
    con.execute("reset disabled_compression_methods")
    rows.build(con)
    assert disabled() == ""
    # employer_companies is a temp table of the build's connection, not stored in the file
    found = con.execute("select temporary from duckdb_tables() where table_name = 'employer_companies'").fetchall()
    assert found == [(True,)]


def test_employer_worker_wages_given_rows_expect_rows(con):
    rows.minimum_wages(con, {("3325", 2022): 2_000_000})
    rows.employers(
        con,
        "2022-12",
        [
            ("E001", "9120000000001", "PT Satu", "3325", 2, 0, 0, 0, 0),
            ("E002", "9120000000001", "PT Satu Cabang", "3325", 1, 0, 0, 0, 0),
        ],
    )
    rows.participants(
        con,
        "2022-12",
        [
            ("0000000000001", "3325", "PPU_BU", "ACTIVE", "E001", 20_000_000),  # capped: 12 M
            ("0000000000002", "3325", "PPU_BU", "ACTIVE", "E001", 1_000_000),  # floored: 2 M
            ("0000000000003", "3326", "PPU_BU", "ACTIVE", "E002", 5_000_000),  # the same company: 5 M
            ("0000000000004", "3325", "PPU_BU", "ACTIVE", "E999", 5_000_000),  # no such employer: not counted
        ],
    )
    rows.build(con, layers=("staging", "intermediate"))
    got = rows.query(
        con,
        "select company_key, workers_in_participant_extract, workers_with_wage, "
        "workers_below_minimum, contribution_base_idr from build.employer_worker_wages",
    )
    assert got == [("9120000000001", 3, 3, 1, Decimal("19000000.00"))]
