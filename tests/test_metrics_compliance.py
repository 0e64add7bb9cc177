"""Employer compliance, its regional roll-up and the enforcement worklist: given rows, expect rows."""

from decimal import Decimal

import pytest

from tests import rows

COMPANIES = ("satu", "dua", "tiga", "empat", "lima", "enam")
NIB = {name: f"91200000000{number:02d}" for number, name in enumerate(COMPANIES, 1)}  # 13-digit business ids

# Round minimum wages so every expected figure below can be checked by hand.
UMK = {("3325", 2022): 2_000_000, ("3326", 2022): 2_100_000}

E1 = ("E001", NIB["satu"], "PT Satu", "3325", 80, 240_000_000, 12_000_000, 12_000_000, 0)  # 100 reported: 20 missing
E2_DEC = ("E002", NIB["dua"], "PT Dua", "3325", 50, 75_000_000, 5_000_000, 3_000_000, 2)  # avg 1.5 M < UMK, arrears
E3 = ("E003", NIB["tiga"], "PT Tiga", "3325", 1, 15_000_000, 600_000, 600_000, 0)  # not in the workforce report
E4 = ("E004", NIB["empat"], "PT Empat", "3326", 10, 25_000_000, 1_250_000, 1_250_000, 0)
E5 = ("E005", NIB["empat"], "PT Empat Cabang", "3326", 5, 12_500_000, 625_000, 625_000, 0)  # same NIB as E004

WORKFORCE_OCT = [(NIB["satu"], "PT SATU", "3325", 100)]
WORKFORCE_NOV = [
    (NIB["satu"], "PT SATU", "3325", 100),
    (NIB["dua"], "PT DUA", "3325", 50),
    (NIB["empat"], "PT EMPAT", "3326", 15),
    (NIB["lima"], "CV Lima", "3325", 12),
    (NIB["enam"], "CV Enam", "3325", 0),
]


@pytest.fixture
def three_months(con):
    """Oct-Dec 2022: E001 short of 20 workers throughout; PT Dua and PT Empat register in December;
    CV Lima never does; the December workforce report has not arrived (November's is used)."""
    rows.minimum_wages(con, UMK)
    rows.employers(con, "2022-10", [E1])
    rows.employers(con, "2022-11", [E1])
    rows.employers(con, "2022-12", [E1, E2_DEC, E3, E4, E5])
    rows.workforce(con, "2022-10", WORKFORCE_OCT)
    rows.workforce(con, "2022-11", WORKFORCE_NOV)
    rows.build(con)
    return con


def test_employer_compliance_given_rows_expect_rows(three_months):
    got = rows.query(
        three_months,
        "select employer_id, employer_registrations, business_id, name, region_code, "
        "strftime(workforce_month, '%Y-%m'), is_in_workforce_report, is_unregistered_employer, "
        "workers_reported, workers_registered, unregistered_workers, round(registration_pct, 4), "
        "avg_reported_wage, minimum_wage, is_wage_below_minimum, contribution_base_idr, contribution_idr, "
        "employer_contribution_idr, worker_contribution_idr, unpaid_contributions_idr, round(payment_ratio_pct, 4), "
        "is_in_arrears, estimated_contributions_lost_idr, is_non_compliant "
        "from build.employer_compliance where month = '2022-12-01' order by business_id",
    )
    d = Decimal
    assert got == [
        # 100 reported, 80 registered at 3 M: base 240 M, 5% = 12 M; 20 missing x 3 M x 5% = 3 M lost a month
        (
            "E001",
            1,
            NIB["satu"],
            "PT Satu",
            "3325",
            "2022-11",
            True,
            False,
            100,
            80,
            20,
            80.0,
            d("3000000.00"),
            d("2000000.00"),
            False,
            d("240000000.00"),
            d("12000000.00"),
            d("9600000.00"),
            d("2400000.00"),
            d("0.00"),
            100.0,
            False,
            d("3000000.00"),
            True,
        ),
        # average 1.5 M is under the 2 M minimum: the base is floored at 50 x 2 M; 3 of 5 M paid
        (
            "E002",
            1,
            NIB["dua"],
            "PT Dua",
            "3325",
            "2022-11",
            True,
            False,
            50,
            50,
            0,
            100.0,
            d("1500000.00"),
            d("2000000.00"),
            True,
            d("100000000.00"),
            d("5000000.00"),
            d("4000000.00"),
            d("1000000.00"),
            d("2000000.00"),
            60.0,
            True,
            d("0.00"),
            True,
        ),
        # a 15 M wage is capped at 12 M: 600,000 = 480,000 employer + 120,000 worker
        (
            "E003",
            1,
            NIB["tiga"],
            "PT Tiga",
            "3325",
            "2022-11",
            False,
            False,
            None,
            1,
            None,
            None,
            d("15000000.00"),
            d("2000000.00"),
            False,
            d("12000000.00"),
            d("600000.00"),
            d("480000.00"),
            d("120000.00"),
            d("0.00"),
            100.0,
            False,
            None,
            False,
        ),
        # two registrations with one NIB are one company: 10 + 5 registered against 15 reported
        (
            "E004",
            2,
            NIB["empat"],
            "PT Empat",
            "3326",
            "2022-11",
            True,
            False,
            15,
            15,
            0,
            100.0,
            d("2500000.00"),
            d("2100000.00"),
            False,
            d("37500000.00"),
            d("1875000.00"),
            d("1500000.00"),
            d("375000.00"),
            d("0.00"),
            100.0,
            False,
            d("0.00"),
            False,
        ),
        # in the workforce report with 12 workers, no registration: 12 x 2 M (the minimum wage) x 5% lost
        (
            None,
            0,
            NIB["lima"],
            "CV Lima",
            "3325",
            "2022-11",
            True,
            True,
            12,
            0,
            12,
            0.0,
            None,
            d("2000000.00"),
            None,
            d("0.00"),
            d("0.00"),
            d("0.00"),
            d("0.00"),
            d("0.00"),
            None,
            False,
            d("1200000.00"),
            True,
        ),
        # CV Enam reports no workers and has no registration: not a row
    ]


def test_workforce_report_used_is_the_latest_not_after_the_month(three_months):
    got = rows.query(
        three_months,
        "select strftime(month, '%Y-%m'), strftime(workforce_month, '%Y-%m'), count(*) "
        "from build.employer_compliance group by all order by 1",
    )
    # October: only PT Satu reported; November: PT Satu registered, PT Dua, PT Empat and CV Lima not yet
    assert got == [("2022-10", "2022-10", 1), ("2022-11", "2022-11", 4), ("2022-12", "2022-11", 5)]


def test_compliance_by_region_given_rows_expect_rows(three_months):
    got = rows.query(
        three_months,
        "select level, code, name, employers_reported, employers_registered, employers_matched, "
        "employers_not_registered, workers_reported, workers_registered, unregistered_workers, "
        "round(worker_registration_pct, 4), underreporting_employers, arrears_employers, non_compliant_employers, "
        "contribution_due, contribution_paid, unpaid_contributions_idr, round(payment_ratio_pct, 4), "
        "contribution_idr, estimated_contributions_lost_idr "
        "from build.compliance_by_region where month = '2022-12-01' order by level, code",
    )
    d = Decimal
    # Kab. Batang plus Kab. Pekalongan: (177 reported - 32 not registered) / 177; 17.475 M of 19.475 M paid
    jateng = (
        4,
        4,
        3,
        1,
        177,
        146,
        32,
        round(145 / 177 * 100, 4),
        1,
        1,
        3,
        d("19475000.00"),
        d("17475000.00"),
        d("2000000.00"),
        round(17_475_000 / 19_475_000 * 100, 4),
        d("19475000.00"),
        d("4200000.00"),
    )
    assert got == [
        ("branch", "PEKALONGAN", "KC Pekalongan", *jateng),
        ("national", "ID", "Indonesia", *jateng),
        ("province", "33", "Jawa Tengah", *jateng),
        # (162 reported - 32 not registered) / 162
        (
            "region",
            "3325",
            "Kab. Batang",
            3,
            3,
            2,
            1,
            162,
            131,
            32,
            80.2469,
            1,
            1,
            3,
            d("17600000.00"),
            d("15600000.00"),
            d("2000000.00"),
            88.6364,
            d("17600000.00"),
            d("4200000.00"),
        ),
        (
            "region",
            "3326",
            "Kab. Pekalongan",
            1,
            1,
            1,
            0,
            15,
            15,
            0,
            100.0,
            0,
            0,
            0,
            d("1875000.00"),
            d("1875000.00"),
            d("0.00"),
            100.0,
            d("1875000.00"),
            d("0.00"),
        ),
    ]


def test_enforcement_worklist_given_rows_expect_rows(three_months):
    got = rows.query(
        three_months,
        "select strftime(month, '%Y-%m'), region_code, priority, business_id, is_unregistered_employer, "
        "unregistered_workers, unpaid_contributions_idr, reasons, months_non_compliant, non_compliant_since, "
        "next_sanction_step, contributions_owed_idr, fine_per_month_idr "
        "from build.enforcement_worklist order by month, region_code, priority",
    )
    d = Decimal
    assert got == [
        (
            "2022-10",
            "3325",
            1,
            NIB["satu"],
            False,
            20,
            d("0.00"),
            "workers not registered",
            1,
            "2022-10",
            "WRITTEN_WARNING_1",
            d("3000000.00"),
            None,
        ),
        # November: PT Dua (50 workers, 50 x 2 M x 5% = 5 M a month) heads the list
        (
            "2022-11",
            "3325",
            1,
            NIB["dua"],
            True,
            50,
            d("0.00"),
            "employer not registered",
            1,
            "2022-11",
            "WRITTEN_WARNING_1",
            d("5000000.00"),
            None,
        ),
        (
            "2022-11",
            "3325",
            2,
            NIB["satu"],
            False,
            20,
            d("0.00"),
            "workers not registered",
            2,
            "2022-10",
            "WRITTEN_WARNING_2",
            d("6000000.00"),
            None,
        ),
        (
            "2022-11",
            "3325",
            3,
            NIB["lima"],
            True,
            12,
            d("0.00"),
            "employer not registered",
            1,
            "2022-11",
            "WRITTEN_WARNING_1",
            d("1200000.00"),
            None,
        ),
        (
            "2022-11",
            "3326",
            1,
            NIB["empat"],
            True,
            15,
            d("0.00"),
            "employer not registered",
            1,
            "2022-11",
            "WRITTEN_WARNING_1",
            d("1575000.00"),
            None,
        ),
        # December: third month for PT Satu -> fine of 0.1% a month of the 9 M owed over the three months
        (
            "2022-12",
            "3325",
            1,
            NIB["satu"],
            False,
            20,
            d("0.00"),
            "workers not registered",
            3,
            "2022-10",
            "FINE",
            d("9000000.00"),
            d("9000.00"),
        ),
        (
            "2022-12",
            "3325",
            2,
            NIB["lima"],
            True,
            12,
            d("0.00"),
            "employer not registered",
            2,
            "2022-11",
            "WRITTEN_WARNING_2",
            d("2400000.00"),
            None,
        ),
        # PT Dua registered in December but under-reports wages and is in arrears: still its second month
        (
            "2022-12",
            "3325",
            3,
            NIB["dua"],
            False,
            0,
            d("2000000.00"),
            "wage below minimum, arrears",
            2,
            "2022-11",
            "WRITTEN_WARNING_2",
            d("7000000.00"),
            None,
        ),
        # PT Empat registered all 15 workers in December and pays: off the list
    ]


def test_fourth_month_withholds_public_services(con):
    rows.minimum_wages(con, UMK)
    for month in ("2022-09", "2022-10", "2022-11", "2022-12"):
        rows.employers(con, month, [E1])
        rows.workforce(con, month, WORKFORCE_OCT)
    rows.employers(con, "2023-02", [E1])  # January's extract is missing: the streak starts again
    rows.build(con)
    got = rows.query(
        con,
        "select strftime(month, '%Y-%m'), months_non_compliant, next_sanction_step "
        "from build.enforcement_worklist order by month",
    )
    assert got == [
        ("2022-09", 1, "WRITTEN_WARNING_1"),
        ("2022-10", 2, "WRITTEN_WARNING_2"),
        ("2022-11", 3, "FINE"),
        ("2022-12", 4, "NO_PUBLIC_SERVICES"),
        ("2023-02", 1, "WRITTEN_WARNING_1"),
    ]


def test_contribution_of_a_15_million_wage(con):
    """DOMAIN.md: a 15,000,000 wage pays 600,000 (480,000 employer, 120,000 worker), whether the base comes
    from the employer's reported total or from the worker's own wage in the participant extract."""
    rows.minimum_wages(con, UMK)
    rows.employers(
        con,
        "2022-12",
        [
            ("E010", "9120000000010", "PT Total", "3325", 1, 15_000_000, 600_000, 600_000, 0),
            ("E011", "9120000000011", "PT Pekerja", "3325", 1, 15_000_000, 600_000, 600_000, 0),
        ],
    )
    rows.participants(con, "2022-12", [("0000000000011", "3325", "PPU_BU", "ACTIVE", "E011", 15_000_000)])
    rows.build(con)
    got = rows.query(
        con,
        "select employer_id, is_base_from_worker_wages, contribution_base_idr, contribution_idr, "
        "employer_contribution_idr, worker_contribution_idr "
        "from build.employer_compliance order by employer_id",
    )
    expected = (Decimal("12000000.00"), Decimal("600000.00"), Decimal("480000.00"), Decimal("120000.00"))
    assert got == [("E010", False, *expected), ("E011", True, *expected)]


def test_worker_wages_from_participants_floor_each_worker(con):
    """With participant-level wages the floor and cap apply to each worker, not to the average."""
    rows.minimum_wages(con, UMK)
    # reported total 17.5 M over 3 workers: average 5.83 M, above the minimum
    rows.employers(con, "2022-12", [("E020", "9120000000020", "PT Upah", "3325", 3, 17_500_000, 0, 0, 0)])
    rows.participants(
        con,
        "2022-12",
        [
            ("0000000000021", "3325", "PPU_BU", "ACTIVE", "E020", 15_000_000),  # capped at 12 M
            ("0000000000022", "3325", "PPU_BU", "ACTIVE", "E020", 1_500_000),  # floored at 2 M
            ("0000000000023", "3326", "PPU_BU", "INACTIVE", "E020", None),  # no wage: the minimum, 2 M
            ("0000000000024", "3325", "PBPU", "ACTIVE", None, None),  # not a wage earner
        ],
    )
    rows.build(con)
    got = rows.query(
        con,
        "select workers_in_participant_extract, workers_below_minimum, is_wage_below_minimum, "
        "contribution_base_idr, contribution_idr from build.employer_compliance",
    )
    assert got == [(3, 1, False, Decimal("16000000.00"), Decimal("800000.00"))]


def test_demo_employer_files_give_batang_its_published_registration_share(con, tmp_path):
    """The demo's December 2022 registry and workforce report (read straight into raw, as ingest would)
    put Kab. Batang at DOMAIN.md's 74.2% of wage workers registered, with unregistered employers,
    wages under the minimum and arrears in every region; and the demo writes the same bytes every time."""
    import csv

    from flows import demo

    first, second = demo.write_employer_files(tmp_path / "a"), demo.write_employer_files(tmp_path / "b")
    assert [path.name for path in first] == ["employers_2022-12.csv", "workforce_2022-12.csv"]
    assert [path.read_bytes() for path in first] == [path.read_bytes() for path in second]

    def read(path):
        with path.open(encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    employers, workforce = read(first[0]), read(first[1])
    rows.employers(
        con,
        "2022-12",
        [
            (
                r["employer_id"],
                r["business_id"],
                r["name"],
                r["region_code"],
                int(r["registered_workers"]),
                int(r["reported_wage_total"]),
                int(r["contribution_due"]),
                int(r["contribution_paid"]),
                int(r["months_in_arrears"]),
            )
            for r in employers
        ],
    )
    rows.workforce(
        con, "2022-12", [(r["business_id"], r["name"], r["region_code"], int(r["workers"])) for r in workforce]
    )
    rows.build(con)
    got = {
        row[0]: row[1:]
        for row in rows.query(
            con,
            "select code, round(worker_registration_pct, 6), employers_reported, employers_not_registered, "
            "underreporting_employers, arrears_employers from build.compliance_by_region where level = 'region'",
        )
    }
    assert len(got) == 12
    assert got["3325"][0] == 74.2
    for code, (_, reported, not_registered, underreporting, arrears) in got.items():
        assert 20 <= reported <= 40, code  # a few dozen companies
        assert not_registered >= 1 and underreporting >= 1 and arrears >= 1, code
