from pathlib import Path

import pytest

from flows import metrics
from tests import rows

SQL = Path(__file__).parent.parent / "sql"

PEKALONGAN_AUGUST_2022 = {
    # region: (participants, implied population, published coverage %)
    "3375": (273_029, 316_812, 86.18),
    "3325": (702_109, 818_977, 85.73),
    "3327": (1_313_212, 1_542_053, 85.16),
    "3326": (827_100, 988_172, 83.70),
}


def test_run_order_lists_every_sql_file_once():
    # sql/alerts/ holds the alert rules, listed in flows/alerts/rules.py (tests/test_alert_rules.py)
    on_disk = sorted(
        str(path.relative_to(SQL).with_suffix("")) for path in SQL.rglob("*.sql") if path.parent.name != "alerts"
    )
    assert sorted(metrics.MODELS) == on_disk
    assert len(set(metrics.MODELS)) == len(metrics.MODELS)
    layers = [entry.split("/")[0] for entry in metrics.MODELS]
    assert layers == sorted(layers, key=["staging", "intermediate", "marts", "views"].index)


def test_every_model_states_its_grain():
    for path in SQL.rglob("*.sql"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("-- one row per"), path


def test_coverage_given_rows_expect_rows(con):
    rows.population(con, "2022-S1", {"3325": 1000, "3326": 2000, "3601": 4000})
    rows.region_counts(con, "2022-08", {"3325": (800, 100), "3326": (1500, 300), "3601": (3800, 100)})
    rows.build(con)
    got = rows.query(
        con,
        "select level, code, name, population, population_period, participants, active_participants, "
        "round(coverage_pct, 4), round(active_rate_pct, 4), is_uhc from build.coverage order by level, code",
    )
    assert got == [
        ("branch", "PEKALONGAN", "KC Pekalongan", 3000, "2022-S1", 2700, 2300, 90.0, 85.1852, False),
        ("branch", "SERANG", "KC Serang", 4000, "2022-S1", 3900, 3800, 97.5, 97.4359, True),
        ("national", "ID", "Indonesia", 7000, "2022-S1", 6600, 6100, 94.2857, 92.4242, False),
        ("province", "33", "Jawa Tengah", 3000, "2022-S1", 2700, 2300, 90.0, 85.1852, False),
        ("province", "36", "Banten", 4000, "2022-S1", 3900, 3800, 97.5, 97.4359, True),
        ("region", "3325", "Kab. Batang", 1000, "2022-S1", 900, 800, 90.0, 88.8889, False),
        ("region", "3326", "Kab. Pekalongan", 2000, "2022-S1", 1800, 1500, 90.0, 83.3333, False),
        ("region", "3601", "Kab. Pandeglang", 4000, "2022-S1", 3900, 3800, 97.5, 97.4359, True),
    ]


def test_population_uses_latest_semester_not_after_the_month(con):
    rows.population(con, "2021-S2", {"3325": 1000})
    rows.population(con, "2022-S1", {"3325": 1100})
    for month in ("2022-05", "2022-06"):
        rows.region_counts(con, month, {"3325": (500, 0)})
    rows.build(con)
    got = rows.query(
        con,
        "select strftime(month, '%Y-%m'), population, population_period from build.coverage "
        "where level = 'region' order by month",
    )
    assert got == [("2022-05", 1000, "2021-S2"), ("2022-06", 1100, "2022-S1")]
    rows.build(con, lag=2)  # a two-month publication lag: June still uses 2021-S2
    got = rows.query(con, "select population_period from build.coverage where level = 'region' order by month")
    assert got == [("2021-S2",), ("2021-S2",)]


def test_uhc_rule_in_force_by_month(con):
    rows.population(con, "2022-S2", {"3325": 1000})
    rows.population(con, "2024-S2", {"3325": 1000})
    rows.region_counts(con, "2022-12", {"3325": (700, 260)})  # 96% covered, 72.9% active
    rows.region_counts(con, "2023-01", {"3325": (700, 260)})
    rows.region_counts(con, "2025-01", {"3325": (900, 75)})  # 97.5% covered, 92% active
    rows.build(con)
    got = rows.query(
        con,
        "select strftime(month, '%Y-%m'), is_uhc, uhc_rule from build.coverage where level = 'region' order by month",
    )
    assert got == [
        ("2022-12", True, "coverage >= 95.0 (from 2014-01-01)"),
        ("2023-01", False, "coverage >= 95.0 and active rate >= 75.0 (from 2023-01-01)"),
        ("2025-01", False, "coverage >= 98.0 and active rate >= 80.0 (from 2025-01-01)"),
    ]


def test_pekalongan_branch_published_coverage_august_2022(con):
    rows.population(con, "2022-S1", {code: pop for code, (_, pop, _) in PEKALONGAN_AUGUST_2022.items()})
    rows.region_counts(con, "2022-08", {code: (n, 0) for code, (n, _, _) in PEKALONGAN_AUGUST_2022.items()})
    rows.build(con)
    got = dict(rows.query(con, "select code, coverage_pct from build.coverage where level = 'region'"))
    for code, (_, _, published) in PEKALONGAN_AUGUST_2022.items():
        assert got[code] == pytest.approx(published, abs=0.01), code
    uhc = rows.query(con, "select count(*) from build.coverage where level = 'region' and is_uhc")
    assert uhc == [(0,)]


def test_trajectory_straight_path_from_first_month(con):
    # 2024-01 baseline 90%, target 98% at 2024-12 (11 months later): +8/11 pp a month.
    rows.population(con, "2023-S2", {"3325": 10_000})
    for month, participants in (("2024-01", 9000), ("2024-02", 9100), ("2024-03", 9150)):
        rows.region_counts(con, month, {"3325": (participants, 0)})
    rows.build(con)
    got = rows.query(
        con,
        "select strftime(month, '%Y-%m'), baseline_month, round(baseline_pct, 4), round(expected_pct, 4), "
        "round(actual_pct, 4), round(gap_pp, 4), people_needed, round(monthly_pace_needed, 2), "
        "round(recent_pace, 2), projected_target_month, status "
        "from build.trajectory where level = 'region' order by month",
    )
    assert got == [
        # one month of history: no pace, no projection
        ("2024-01", "2024-01", 90.0, 90.0, 90.0, 0.0, 0, 72.73, None, None, "ON_TRACK"),
        # expected 90 + 8/11 = 90.7273; actual 91; pace 100/month; 700 to go -> 7 months -> 2024-09
        ("2024-02", "2024-01", 90.0, 90.7273, 91.0, -0.2727, 0, 70.0, 100.0, "2024-09", "ON_TRACK"),
        # expected 91.4545; actual 91.5; slope of (9000, 9100, 9150) = 75; 650 / 75 -> 9 months -> 2024-12
        ("2024-03", "2024-01", 90.0, 91.4545, 91.5, -0.0455, 0, 72.22, 75.0, "2024-12", "ON_TRACK"),
    ]


BANTEN_JUNE_2022 = {
    # region: (population 2022-S1, participants); only Kota Tangerang and Kota Tangerang Selatan reach 95%
    "3601": (1_309_452, 1_157_556),  # 88.40%
    "3602": (1_419_911, 1_233_903),  # 86.90%
    "3603": (3_310_487, 2_819_832),  # 85.18%
    "3604": (1_655_042, 1_506_088),  # 91.00%
    "3671": (1_923_221, 1_869_371),  # 97.20%
    "3672": (443_562, 416_061),  # 93.80%
    "3673": (716_743, 653_670),  # 91.20%
    "3674": (1_396_142, 1_334_712),  # 95.60%
}


def test_banten_june_2022_two_uhc_cities(con):
    """DOMAIN.md: Banten at 90.28% in June 2022; of its 8 regions only Kota Tangerang and (since March 2022)
    Kota Tangerang Selatan are UHC."""
    rows.population(con, "2022-S1", {code: pop for code, (pop, _) in BANTEN_JUNE_2022.items()})
    rows.population(con, "2021-S2", {"3674": 1_390_000})
    rows.region_counts(con, "2022-06", {code: (n, 0) for code, (_, n) in BANTEN_JUNE_2022.items()})
    rows.region_counts(con, "2022-02", {"3674": (1_315_000, 0)})  # 94.60% of 2021-S2: not yet UHC
    rows.region_counts(con, "2022-03", {"3674": (1_322_000, 0)})  # 95.11%: UHC from March
    rows.build(con)
    province = rows.query(
        con,
        "select coverage_pct, population, participants from build.coverage "
        "where level = 'province' and code = '36' and month = '2022-06-01'",
    )
    assert province[0][0] == pytest.approx(90.28, abs=0.005)
    assert province[0][1:] == (12_174_560, 10_991_193)
    uhc = rows.query(
        con, "select code from build.coverage where level = 'region' and month = '2022-06-01' and is_uhc order by code"
    )
    assert uhc == [("3671",), ("3674",)]
    tangsel = rows.query(
        con, "select strftime(month, '%Y-%m'), is_uhc, uhc_rule from build.coverage where code = '3674' order by month"
    )
    assert tangsel == [
        ("2022-02", False, "coverage >= 95.0 (from 2014-01-01)"),
        ("2022-03", True, "coverage >= 95.0 (from 2014-01-01)"),
        ("2022-06", True, "coverage >= 95.0 (from 2014-01-01)"),
    ]


def test_national_coverage_end_of_2021_and_2023(con):
    """DOMAIN.md: 31 Dec 2021, 235.7 M participants, 86.17%; 31 Dec 2023, 267.31 M of 279.12 M (95.77%).

    National figures are the sum of the regions delivered; here two regions carry the whole country.
    2021's population is the one implied by the published coverage (235.7 M / 86.17%)."""
    rows.population(con, "2021-S2", {"3325": 136_764_500, "3601": 136_764_500})
    rows.population(con, "2023-S2", {"3325": 139_560_000, "3601": 139_560_000})
    rows.region_counts(con, "2021-12", {"3325": (100_000_000, 17_850_000), "3601": (100_000_000, 17_850_000)})
    rows.region_counts(con, "2023-12", {"3325": (110_000_000, 23_655_000), "3601": (110_000_000, 23_655_000)})
    rows.build(con)
    got = rows.query(
        con,
        "select strftime(month, '%Y-%m'), population_period, population, participants, "
        "coverage_pct, is_uhc, uhc_rule from build.coverage where level = 'national' order by month",
    )
    assert [row[:4] for row in got] == [
        ("2021-12", "2021-S2", 273_529_000, 235_700_000),
        ("2023-12", "2023-S2", 279_120_000, 267_310_000),
    ]
    assert round(got[0][4], 2) == 86.17
    assert round(got[1][4], 2) == 95.77
    # 2023 rule: coverage >= 95 and active rate >= 75 (220 M of 267.31 M active = 82.3%)
    assert got[1][5:] == (True, "coverage >= 95.0 and active rate >= 75.0 (from 2023-01-01)")


def test_coverage_from_participant_level_extract(con):
    """A region-month with a participant-level extract is counted from it, not from a pre-aggregated file."""
    rows.population(con, "2022-S1", {"3325": 10, "3326": 10})
    rows.participants(
        con,
        "2022-08",
        [
            ("0000000000001", "3325", "PBI_APBN", "ACTIVE", None, None),
            ("0000000000002", "3325", "PBPU", "INACTIVE", None, None),
            ("0000000000003", "3325", "PPU_BU", "ACTIVE", "E001", 3_000_000),
        ],
    )
    # 3325 is also in the pre-aggregated file (ignored for that month); 3326 only there
    rows.region_counts(con, "2022-08", {"3325": (9, 1), "3326": (7, 1)})
    rows.build(con)
    got = rows.query(
        con,
        "select code, participants, active_participants, round(coverage_pct, 4), "
        "round(active_rate_pct, 4) from build.coverage where level = 'region' order by code",
    )
    assert got == [("3325", 3, 2, 30.0, 66.6667), ("3326", 8, 7, 80.0, 87.5)]


def test_coverage_by_segment_given_rows_expect_rows(con):
    rows.population(con, "2022-S1", {"3325": 1000, "3601": 1000})
    rows.region_counts(con, "2022-08", {"3325": (300, 100), "3601": (500, 0)}, segment="PBPU")
    rows.region_counts(con, "2022-08", {"3325": (600, 0)}, segment="PBI_APBN")  # a second file for the month
    rows.build(con)
    got = rows.query(
        con,
        "select level, code, segment, participants, active_participants, round(share_pct, 4) "
        "from build.coverage_by_segment order by level, code, segment",
    )
    # the newest file of a month is the month's data: only the PBI_APBN file counts
    assert got == [
        ("branch", "PEKALONGAN", "PBI_APBN", 600, 600, 100.0),
        ("national", "ID", "PBI_APBN", 600, 600, 100.0),
        ("province", "33", "PBI_APBN", 600, 600, 100.0),
        ("region", "3325", "PBI_APBN", 600, 600, 100.0),
    ]


def test_coverage_by_segment_shares(con):
    rows.population(con, "2022-S1", {"3325": 1000, "3601": 1000})
    rows.stage(
        con,
        "region_counts",
        "2022-08",
        [
            ("2022-08-01", "3325", "PBPU", "ACTIVE", 300),
            ("2022-08-01", "3325", "PBPU", "INACTIVE", 100),
            ("2022-08-01", "3325", "PBI_APBN", "ACTIVE", 600),
            ("2022-08-01", "3601", "PBPU", "ACTIVE", 500),
        ],
    )
    rows.build(con)
    got = rows.query(
        con,
        "select level, code, segment, participants, active_participants, round(share_pct, 4) "
        "from build.coverage_by_segment order by level, code, segment",
    )
    assert got == [
        ("branch", "PEKALONGAN", "PBI_APBN", 600, 600, 60.0),
        ("branch", "PEKALONGAN", "PBPU", 400, 300, 40.0),
        ("branch", "SERANG", "PBPU", 500, 500, 100.0),
        ("national", "ID", "PBI_APBN", 600, 600, 40.0),
        ("national", "ID", "PBPU", 900, 800, 60.0),
        ("province", "33", "PBI_APBN", 600, 600, 60.0),
        ("province", "33", "PBPU", 400, 300, 40.0),
        ("province", "36", "PBPU", 500, 500, 100.0),
        ("region", "3325", "PBI_APBN", 600, 600, 60.0),
        ("region", "3325", "PBPU", 400, 300, 40.0),
        ("region", "3601", "PBPU", 500, 500, 100.0),
    ]


def test_scope_without_every_regions_population_has_no_coverage(con):
    rows.population(con, "2022-S1", {"3325": 1000, "3326": 1000})
    rows.population(con, "2021-S2", {"3327": 1000})
    rows.region_counts(con, "2022-08", {"3325": (900, 0), "3326": (900, 0), "3327": (900, 0), "3375": (900, 0)})
    rows.build(con)
    got = rows.query(
        con,
        "select level, code, population, population_period, participants, coverage_pct "
        "from build.coverage where level <> 'region' order by level, code",
    )
    # Kota Pekalongan (3375) has no population figure: summing the other three would show 3,600 / 3,000
    assert got == [
        ("branch", "PEKALONGAN", None, "2021-S2", 3600, None),
        ("national", "ID", None, "2021-S2", 3600, None),
        ("province", "33", None, "2021-S2", 3600, None),
    ]
    rows.population(con, "2022-S1", {"3325": 1000, "3326": 1000, "3327": 1000, "3375": 1000})  # a corrected file
    rows.build(con)
    got = rows.query(
        con, "select population, population_period, coverage_pct from build.coverage where level = 'province'"
    )
    assert got == [(4000, "2022-S1", 90.0)]
