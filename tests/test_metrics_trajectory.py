"""mart.trajectory: one region per status, every figure computed by hand.

A short horizon keeps the arithmetic checkable: every region has 10,000 people, the target is 95% by
June 2023 (tolerance 1 pp), the baseline is January 2023 (each region's first month), and the rows
checked are March 2023, two of the five months from baseline to target and three months before it.
"""

from tests import rows

POPULATION = 10_000

# region: participants in Jan, Feb, Mar 2023
PATHS = {
    "3325": (9000, 9100, 9200),  # on track
    "3326": (9000, 9080, 9160),  # at risk
    "3327": (8700, 8800, 8900),  # behind
    "3375": (8000, 8050, 8100),  # critical: far below the path
    "3601": (9000, 9010, 9020),  # critical: 45 months late at this pace
    "3602": (9400, 9450, 9500),  # achieved
    "3603": (9300, 9295, 9290),  # pace negative
}


def set_targets(con, targets):
    con.execute("delete from ref.targets")
    con.executemany("insert into ref.targets values (?, ?, ?, ?, ?)", targets)


def trajectory(con, month):
    return {
        row[0]: row[1:]
        for row in rows.query(
            con,
            "select code, baseline_month, round(baseline_pct, 4), round(expected_pct, 4), round(actual_pct, 4), "
            "round(gap_pp, 4), people_needed, round(monthly_pace_needed, 2), round(recent_pace, 2), "
            "projected_target_month, status from build.trajectory "
            "where level = 'region' and month = ? order by code",
            [month],
        )
    }


def test_one_region_per_status(con):
    set_targets(con, [("ID", 95.0, "2023-06-30", None, 1.0)])
    rows.population(con, "2022-S2", dict.fromkeys(PATHS, POPULATION))
    for index, month in enumerate(("2023-01", "2023-02", "2023-03")):
        rows.region_counts(con, month, {code: (path[index], 0) for code, path in PATHS.items()})
    rows.build(con)
    got = trajectory(con, "2023-03-01")
    # expected = baseline + (95 - baseline) x 2/5; people_needed = ceil(expected% x 10,000 - participants);
    # monthly_pace_needed = (9,500 - participants) / 3 months left; projection = ceil((9,500 - participants) / pace)
    assert got == {
        # 92 expected, 92 actual; 300 to go at 100 a month: June 2023, on the target date
        "3325": ("2023-01", 90.0, 92.0, 92.0, 0.0, 0, 100.0, 100.0, "2023-06", "ON_TRACK"),
        # 0.4 pp short (within tolerance) but 340 / 80 -> 5 months: August, after the target date
        "3326": ("2023-01", 90.0, 92.0, 91.6, 0.4, 40, 113.33, 80.0, "2023-08", "AT_RISK"),
        # 87 + 8 x 2/5 = 90.2 expected, 89 actual: 1.2 pp > 1 tolerance; 600 / 100 -> September, 3 months late
        "3327": ("2023-01", 87.0, 90.2, 89.0, 1.2, 120, 200.0, 100.0, "2023-09", "BEHIND"),
        # 80 + 15 x 2/5 = 86 expected, 81 actual: 5 pp > 3 x tolerance
        "3375": ("2023-01", 80.0, 86.0, 81.0, 5.0, 500, 466.67, 50.0, "2025-07", "CRITICAL"),
        # only 1.8 pp short, but 480 / 10 -> 48 months: March 2027, more than 12 months late
        "3601": ("2023-01", 90.0, 92.0, 90.2, 1.8, 180, 160.0, 10.0, "2027-03", "CRITICAL"),
        # 95% reached: projected this month; 94.4 expected
        "3602": ("2023-01", 94.0, 94.4, 95.0, -0.6, 0, 0.0, 50.0, "2023-03", "ACHIEVED"),
        # 0.9 pp short, within tolerance, but losing 5 people a month: never reaches the target
        "3603": ("2023-01", 93.0, 93.8, 92.9, 0.9, 90, 70.0, -5.0, None, "CRITICAL"),
    }


def test_first_month_has_no_pace_and_is_judged_on_the_gap_only(con):
    set_targets(con, [("ID", 95.0, "2023-06-30", None, 1.0)])
    rows.population(con, "2022-S2", {"3603": POPULATION})
    rows.region_counts(con, "2023-01", {"3603": (9300, 0)})
    rows.build(con)
    # 93% against a 93% baseline: on the path, no pace yet, so no projection; 200 / 5 months left
    assert trajectory(con, "2023-01-01") == {
        "3603": ("2023-01", 93.0, 93.0, 93.0, 0.0, 0, 40.0, None, None, "ON_TRACK"),
    }


def test_pace_is_the_least_squares_slope_of_the_last_six_months(con):
    set_targets(con, [("ID", 99.0, "2029-12-31", None, 1.0)])
    rows.population(con, "2022-S2", {"3325": 100_000})
    participants = [90_000, 95_000, 90_100, 90_200, 90_300, 90_400, 90_500, 90_600]  # 2023-01 .. 2023-08
    for index, count in enumerate(participants):
        rows.region_counts(con, f"2023-{index + 1:02d}", {"3325": (count, 0)})
    rows.build(con)
    paces = dict(
        rows.query(
            con,
            "select strftime(month, '%Y-%m'), round(recent_pace, 4) from build.trajectory "
            "where level = 'region' order by month",
        )
    )
    # March: slope of (90000, 95000, 90100) over x = 0, 1, 2 is (90100 - 90000) / 2 = 50
    assert paces["2023-03"] == 50.0
    # August: the window is March..August, a straight line of +100 a month; January and February have left it
    assert paces["2023-08"] == 100.0


def test_target_moves_to_the_next_once_its_date_passes(con):
    set_targets(con, [("ID", 95.0, "2023-02-28", None, 1.0), ("ID", 99.0, "2029-12-31", None, 1.0)])
    rows.population(con, "2022-S2", {"3325": POPULATION})
    for month, count in (("2023-01", 9000), ("2023-02", 9100), ("2023-03", 9200)):
        rows.region_counts(con, month, {"3325": (count, 0)})
    rows.build(con)
    got = rows.query(
        con,
        "select strftime(month, '%Y-%m'), target_pct, strftime(target_date, '%Y-%m-%d') "
        "from build.trajectory where level = 'region' order by month",
    )
    assert got == [("2023-01", 95.0, "2023-02-28"), ("2023-02", 95.0, "2023-02-28"), ("2023-03", 99.0, "2029-12-31")]


def test_configured_baseline_and_province_target(con):
    """A province target applies to its regions (a region's own target would win); months before the
    configured baseline have no path and no row."""
    set_targets(
        con,
        [
            ("ID", 98.0, "2024-12-31", None, 1.0),
            ("33", 97.0, "2023-06-30", "2023-02", 0.5),
            ("3326", 96.0, "2023-06-30", None, 1.0),
        ],
    )
    rows.population(con, "2022-S2", {"3325": POPULATION, "3326": POPULATION, "3601": POPULATION})
    for month, count in (("2023-01", 9000), ("2023-02", 9100), ("2023-03", 9250)):
        rows.region_counts(con, month, {"3325": (count, 0), "3326": (count, 0), "3601": (count, 0)})
    rows.build(con)
    got = rows.query(
        con,
        "select code, strftime(month, '%Y-%m'), target_pct, baseline_month, round(expected_pct, 4), tolerance_pp "
        "from build.trajectory where level = 'region' order by code, month",
    )
    assert got == [
        # province 33's target, from its configured February baseline (91%): 91 + 6 x 1/4 = 92.5 in March
        ("3325", "2023-02", 97.0, "2023-02", 91.0, 0.5),
        ("3325", "2023-03", 97.0, "2023-02", 92.5, 0.5),
        # its own target, from its first month: 90 + 6 x 1/5, 90 + 6 x 2/5
        ("3326", "2023-01", 96.0, "2023-01", 90.0, 1.0),
        ("3326", "2023-02", 96.0, "2023-01", 91.2, 1.0),
        ("3326", "2023-03", 96.0, "2023-01", 92.4, 1.0),
        # Banten has no target of its own: the national one, 90 + 8 x 2/23 in March
        ("3601", "2023-01", 98.0, "2023-01", 90.0, 1.0),
        ("3601", "2023-02", 98.0, "2023-01", round(90 + 8 / 23, 4), 1.0),
        ("3601", "2023-03", 98.0, "2023-01", round(90 + 16 / 23, 4), 1.0),
    ]


def test_forecast_is_a_range_and_not_past_the_horizon_or_at_a_negligible_pace(con):
    """June 2023 against the 98% target of December 2024 (the 99% target of December 2029 is the later one:
    the horizon is December 2039, 198 months after June 2023). 100,000 people; 98,000 is the target."""
    set_targets(con, [("ID", 98.0, "2024-12-31", None, 1.0), ("ID", 99.0, "2029-12-31", None, 1.0)])
    paths = {
        "3325": (90000, 90100, 90300, 90400, 90600, 90700),  # changes 100, 200, 100, 200, 100
        "3326": (90000, 90005, 90010, 90015, 90020, 90025),  # 5 a month: under 1 in 10,000 (10 people)
        "3327": (90000, 90020, 90040, 90060, 90080, 90100),  # 20 a month: 7,900 to go takes 395 months
        "3375": (90000, 90030, 90060, 90560, 90590, 90620),  # changes 30, 30, 500, 30, 30
    }
    rows.population(con, "2022-S2", dict.fromkeys(paths, 100_000))
    for index in range(6):
        rows.region_counts(con, f"2023-{index + 1:02d}", {code: (path[index], 0) for code, path in paths.items()})
    rows.build(con)
    got = {
        row[0]: row[1:]
        for row in rows.query(
            con,
            "select code, round(recent_pace, 4), slowest_pace, fastest_pace, projected_target_month, "
            "projected_earliest_month, projected_latest_month, is_target_reached_at_pace, forecast_horizon_month "
            "from build.trajectory where level = 'region' and month = '2023-06-01' order by code",
        )
    }
    assert got == {
        # slope over x = 0..5: 1,020 / 7 = 145.7143 a month; 7,300 to go: ceil(50.1) = 51 months -> September
        # 2027; at the fastest 200: ceil(36.5) = 37 -> July 2026; at the slowest 100: 73 -> July 2029
        "3325": (145.7143, 100.0, 200.0, "2027-09", "2026-07", "2029-07", True, "2039-12"),
        # 5 people a month is negligible: not at the current pace (the old forecast said 2154)
        "3326": (5.0, 5.0, 5.0, None, None, None, False, "2039-12"),
        # 395 months: May 2056, past the horizon
        "3327": (20.0, 20.0, 20.0, None, None, None, False, "2039-12"),
        # slope 1,056 / 7 = 150.8571; 7,380 to go: ceil(48.9) = 49 -> July 2027; fastest 500: ceil(14.76) = 15
        # -> September 2024; slowest 30: 246 months, past the horizon, so the late end stays open
        "3375": (150.8571, 30.0, 500.0, "2027-07", "2024-09", None, True, "2039-12"),
    }
    # the status still reads the raw projection: 395 months late is critical, as before
    assert rows.query(con, "select status from build.trajectory where code = '3327' and month = '2023-06-01'") == [
        ("CRITICAL",)
    ]
