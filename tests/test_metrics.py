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
    on_disk = sorted(str(path.relative_to(SQL).with_suffix("")) for path in SQL.rglob("*.sql"))
    assert sorted(metrics.MODELS) == on_disk
    assert len(set(metrics.MODELS)) == len(metrics.MODELS)
    layers = [entry.split("/")[0] for entry in metrics.MODELS]
    assert layers == sorted(layers, key=["staging", "intermediate", "marts"].index)


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
    got = rows.query(con, "select strftime(month, '%Y-%m'), population, population_period from build.coverage "
                          "where level = 'region' order by month")
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
    got = rows.query(con, "select strftime(month, '%Y-%m'), is_uhc, uhc_rule from build.coverage "
                          "where level = 'region' order by month")
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
