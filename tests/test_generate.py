"""`jkn generate`: synthetic extracts that ingest cleanly and are consistent with each other."""

from __future__ import annotations

import hashlib

import duckdb
import pytest
from typer.testing import CliRunner

from flows import generate, ingest
from flows.errors import ConfigError
from tests.conftest import TEST_KEY


@pytest.fixture
def extracts(tmp_path):
    return generate.generate(
        tmp_path / "out", participants=6000, employers=120, workforce=150, regions=12, month="2024-06", seed=7
    )


@pytest.fixture
def ingested(con, extracts):
    results = ingest.ingest_files(con, extracts, 0.0, pseudonym_key=TEST_KEY)
    # threshold 0: one bad row would refuse its file
    assert [(result.status, result.rows_rejected) for result in results] == [("staged", 0)] * 5, results
    return con


def test_writes_one_file_per_kind_named_for_the_landing_folder(extracts):
    assert [path.name for path in extracts] == [
        "participants_2024-06.csv",
        "region_counts_2024-06.csv",
        "population_2024-S1.csv",
        "employers_2024-06.csv",
        "workforce_2024-06.csv",
    ]


def test_participants_have_valid_niks_and_unique_13_digit_card_numbers(ingested, extracts):
    con = ingested
    card = con.execute(
        "select count(*), count(distinct card_no), "
        "count(*) filter (where regexp_full_match(card_no, '0{3}[0-9]{10}')), "
        "count(distinct person_key), count(distinct region_code) from raw.participants"
    ).fetchone()
    assert card == (6000, 6000, 6000, 6000, 12)
    niks = duckdb.sql(f"select nik, region_code from read_csv('{extracts[0]}', all_varchar = true)").fetchall()
    assert all(nik.startswith(region) and len(nik) == 16 for nik, region in niks)
    sexes = dict(con.execute("select sex, count(*) from raw.participants group by 1").fetchall())
    assert set(sexes) == {"F", "M"} and min(sexes.values()) > 2500
    assert con.execute("select min(birth_year), max(birth_year) from raw.participants").fetchone() == (1939, 2023)


def test_region_counts_are_exactly_the_participants_counted(ingested):
    mismatches = ingested.execute(
        """
        select count(*) from (
            select region_code, segment, status, count(*) as participants from raw.participants group by all
        ) as counted
        full join raw.region_counts as given using (region_code, segment, status)
        where counted.participants is distinct from given.participants
        """
    ).fetchone()[0]
    assert mismatches == 0


def test_population_is_a_little_above_the_participants_of_each_region(ingested):
    coverage = ingested.execute(
        """
        select min(participants * 100.0 / population), max(participants * 100.0 / population), count(*)
        from (select region_code, sum(participants) as participants from raw.region_counts group by 1)
        inner join raw.population using (region_code)
        """
    ).fetchone()
    assert 70 < coverage[0] and coverage[1] < 100 and coverage[2] == 12


def test_segment_mix_and_active_rate_differ_by_region(ingested):
    shares = ingested.execute(
        """
        select region_code,
            avg((segment = 'PPU_BU')::int) as wage_workers,
            avg((status = 'ACTIVE')::int) filter (where segment = 'PBPU') as pbpu_active,
            avg((status = 'ACTIVE')::int) filter (where segment like 'PBI%') as pbi_active
        from raw.participants group by 1
        """
    ).fetchall()
    assert max(row[1] for row in shares) - min(row[1] for row in shares) > 0.05
    assert all(row[2] < row[3] for row in shares)  # informal workers are the ones in arrears
    segments = {row[0] for row in ingested.execute("select distinct segment from raw.participants").fetchall()}
    assert segments == set(ingest.SEGMENTS)


def test_employers_hold_exactly_their_registered_workers_and_wages(ingested):
    con = ingested
    assert (
        con.execute(
            """
        select count(*) from raw.employers as employers
        left join (
            select employer_id, count(*) as workers, sum(wage) as wages from raw.participants
            where segment = 'PPU_BU' group by 1
        ) as people using (employer_id)
        where employers.registered_workers <> coalesce(people.workers, 0)
            or employers.reported_wage_total <> coalesce(people.wages, 0)
        """
        ).fetchone()[0]
        == 0
    )
    # every PPU_BU participant works for a listed employer, in the same region
    assert (
        con.execute(
            "select count(*) from raw.participants as people left join raw.employers as employers using (employer_id) "
            "where people.segment = 'PPU_BU' "
            "and (employers.employer_id is null or employers.region_code <> people.region_code)"
        ).fetchone()[0]
        == 0
    )
    arrears = con.execute("select avg((months_in_arrears > 0)::int) from raw.employers").fetchone()[0]
    assert 0.03 < arrears < 0.35


def test_workforce_overlap_leaves_unregistered_companies_and_workers(ingested):
    overlap = ingested.execute(
        """
        select
            count(*) filter (where employers.business_id is not null) as registered,
            count(*) filter (where employers.business_id is null) as unregistered_companies,
            count(*) filter (where workforce.workers > employers.registered_workers) as with_unregistered_workers,
            count(*) filter (where workforce.workers < employers.registered_workers) as fewer_than_registered
        from raw.workforce as workforce
        left join raw.employers as employers using (business_id)
        """
    ).fetchone()
    assert overlap[0] == 105 and overlap[1] == 45  # 70% of 150 are registered employers
    assert overlap[2] > 30 and overlap[3] == 0
    assert (
        ingested.execute(
            "select count(*) from raw.employers where business_id not in (select business_id from raw.workforce)"
        ).fetchone()[0]
        == 15
    )


def test_the_same_arguments_give_the_same_bytes(tmp_path):
    def digests(folder, seed):
        files = generate.generate(folder, participants=2000, employers=30, workforce=40, regions=5, seed=seed)
        return [hashlib.sha256(path.read_bytes()).hexdigest() for path in files]

    assert digests(tmp_path / "a", 1) == digests(tmp_path / "b", 1)
    assert digests(tmp_path / "c", 2) != digests(tmp_path / "a", 1)


def test_regions_by_number_or_by_code(tmp_path):
    files = generate.generate(tmp_path, participants=500, employers=10, workforce=0, regions=["33.25", "3326"])
    codes = duckdb.sql(
        f"select distinct region_code from read_csv('{files[0]}', all_varchar = true) order by 1"
    ).fetchall()
    assert codes == [("3325",), ("3326",)]
    assert [path.name.split("_20")[0] for path in files] == [
        "participants",
        "region_counts",
        "population",
        "employers",
    ]  # workforce 0: no file
    with pytest.raises(ConfigError, match="unknown region code"):
        generate.generate(tmp_path, participants=10, regions=["9999"])
    with pytest.raises(ConfigError, match="YYYY-MM"):
        generate.generate(tmp_path, participants=10, month="2024-13")


def test_no_employers_means_no_wage_workers_in_companies(tmp_path, con):
    files = generate.generate(tmp_path, participants=800, employers=0, workforce=10, regions=3)
    results = ingest.ingest_files(con, files, 0.0, pseudonym_key=TEST_KEY)
    assert all(result.status == "staged" for result in results)
    assert con.execute("select count(*) from raw.participants where segment = 'PPU_BU'").fetchone()[0] == 0
    assert con.execute("select count(*) from raw.workforce").fetchone()[0] == 10


@pytest.mark.parametrize(
    ("month", "semester"),
    [("2024-01", "2023-S2"), ("2024-06", "2024-S1"), ("2024-11", "2024-S1"), ("2024-12", "2024-S2")],
)
def test_population_semester_is_the_one_the_month_is_measured_against(month, semester):
    assert generate.semester_for(month) == semester


def test_jkn_generate_writes_into_the_landing_folder(jkn_env):
    from flows.cli import app

    result = CliRunner().invoke(
        app,
        [
            "generate",
            "--participants",
            "300",
            "--employers",
            "5",
            "--workforce",
            "6",
            "--regions",
            "2",
            "--month",
            "2023-07",
            "--format",
            "parquet",
        ],
    )
    assert result.exit_code == 0, result.output
    written = sorted(path.name for path in (jkn_env / "landing").iterdir())
    assert written == [
        "employers_2023-07.parquet",
        "participants_2023-07.parquet",
        "population_2023-S1.parquet",
        "region_counts_2023-07.parquet",
        "workforce_2023-07.parquet",
    ]
    assert "5 file(s)" in result.output
