"""Ingest: every kind and format, dialects, pseudonymisation, idempotency, corrections, the key."""

from __future__ import annotations

import hashlib
import hmac
import re
import shutil
import subprocess
import sys
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from flows import generate, ingest, metrics
from flows.errors import ConfigError
from flows.ingest import pseudonym
from flows.ingest.kinds import raw_schema
from tests.conftest import FIXTURES, TEST_KEY

CORPUS = FIXTURES / "ingest"
PARTICIPANTS = (
    "card_no,nik,region_code,segment,status,employer_id,wage\n"
    "0001000000001,3326014507900001,3326,PBI_APBN,ACTIVE,,\n"
    "0001000000002,3326010101850002,33.26,PPU_BU,ACTIVE,00012345,3500000\n"
    "0001000000005,3327024408220005,3327,PBI_APBD,INACTIVE,,\n"
)


def load(con, *paths, threshold=1.0, key=TEST_KEY, **options):
    return ingest.ingest_files(con, list(paths), threshold, pseudonym_key=key, **options)


def write(folder, name, content: str):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(content, encoding="utf-8")
    return path


def test_person_key_is_the_hmac_sha256_of_the_nik_under_the_key(con, tmp_path):
    path = write(tmp_path, "participants_2022-09.csv", PARTICIPANTS)
    [result] = load(con, path)
    assert result.status == "staged" and result.rows_loaded == 3
    keys = dict(con.execute("select card_no, lower(hex(person_key)) from raw.participants").fetchall())
    for card_no, nik in (("0001000000001", "3326014507900001"), ("0001000000005", "3327024408220005")):
        assert keys[card_no] == hmac.new(TEST_KEY.encode(), nik.encode(), hashlib.sha256).hexdigest()


def test_the_fast_pseudonymisation_is_built():
    """`make test` installs OpenSSL's headers so pip builds flows/_pseudonym.c; without it (and
    without the DuckDB extension, tests/test_pseudonym.py) ingest still works (in SQL, tested
    below) but ~10x slower on a national extract (BENCHMARKS.md)."""
    from flows import _pseudonym

    assert callable(_pseudonym.hex_digests)


@pytest.mark.parametrize("way", pseudonym.PERSON_KEY_WAYS)  # DuckDB extension, C module (Arrow UDF), SQL
def test_every_way_of_computing_person_key_agrees_with_pythons_hmac(con, tmp_path, monkeypatch, way):
    monkeypatch.setattr(pseudonym, "PERSON_KEY_WAYS", (way,))
    key = "a key with ünïcode, and longer than sixty-four bytes: " + "k" * 40
    niks = [
        f"332601{day:02d}{month:02d}{year:02d}{serial:04d}"
        for day, month, year, serial in (
            (1, 1, 85, 1),
            (45, 7, 90, 2),
            (71, 12, 0, 3),
            (31, 2, 24, 4),
            (12, 6, 66, 9999),
        )
    ] * 500
    lines = [f"{index:013d},{nik},3326,PBI_APBN,ACTIVE,," for index, nik in enumerate(niks, start=1)]
    lines += ["0000000009998,,3326,PBI_APBN,ACTIVE,,", "0000000009999,33260145079,3326,PBI_APBN,ACTIVE,,"]
    content = "card_no,nik,region_code,segment,status,employer_id,wage\n" + "\n".join(lines) + "\n"
    # two files in one batch: they share one in-memory DuckDB (instances.shared_reader), each way registered twice
    results = load(
        con,
        write(tmp_path, "participants_2022-09.csv", content),
        write(tmp_path, "participants_2022-10.csv", content.replace("ACTIVE", "AKTIF")),
        threshold=5.0,
        key=key,
    )
    assert [(result.rows_loaded, result.rows_rejected) for result in results] == [(len(niks), 2)] * 2
    for month in ("2022-09-01", "2022-10-01"):
        stored = dict(
            con.execute(
                "select card_no, lower(hex(person_key)) from raw.participants where month = ?", [month]
            ).fetchall()
        )
        for index, nik in enumerate(niks, start=1):
            assert stored[f"{index:013d}"] == hmac.new(key.encode(), nik.encode(), hashlib.sha256).hexdigest()
    assert (
        con.execute(
            "select count(*) from duckdb_functions() where function_name = ?", [ingest.PERSON_KEY_FUNCTION]
        ).fetchone()[0]
        == 0
    )  # the key does not stay behind


def test_a_key_longer_than_a_block_is_hashed_first_as_hmac_says(con, tmp_path):
    long_key = "k" * 100
    path = write(tmp_path, "participants_2022-09.csv", PARTICIPANTS)
    load(con, path, key=long_key)
    key = con.execute("select lower(hex(person_key)) from raw.participants where card_no = '0001000000001'").fetchone()[
        0
    ]
    assert key == hmac.new(long_key.encode(), b"3326014507900001", hashlib.sha256).hexdigest()


def test_sex_and_birth_year_come_from_the_nik_and_the_century_never_puts_birth_after_the_period(con, tmp_path):
    # 3327024408220005: day 44 (a woman born on the 4th), August, year 22
    september = write(tmp_path / "a", "participants_2022-09.csv", PARTICIPANTS)
    july = write(tmp_path / "b", "participants_2022-07.csv", PARTICIPANTS.replace("INACTIVE", "ACTIVE"))
    load(con, september, july)
    rows = con.execute("select period, card_no, sex, birth_year from raw.participants order by all").fetchall()
    assert ("2022-09", "0001000000005", "F", 2022) in rows  # born Aug 2022, listed in Sep 2022
    assert ("2022-07", "0001000000005", "F", 1922) in rows  # Aug 2022 would be after July 2022
    assert ("2022-09", "0001000000001", "F", 1990) in rows  # day 45
    assert ("2022-09", "0001000000002", "M", 1985) in rows  # day 01


def test_identifiers_stay_text(con):
    load(
        con,
        CORPUS / "indonesian_headers" / "participants_2022-09.csv",
        CORPUS / "parquet_good" / "workforce_2022-09.parquet",
    )
    participants = con.execute(
        "select card_no, region_code, segment, status, employer_id, wage from raw.participants order by card_no"
    ).fetchall()
    assert participants == [
        ("0001000000001", "3326", "PBI_APBN", "ACTIVE", None, None),
        ("0001000000002", "3326", "PPU_BU", "ACTIVE", "00012345", Decimal("3500000.50")),
        ("0001000000003", "3325", "PBPU", "INACTIVE", None, None),
    ]
    workforce = con.execute("select business_id, name, region_code, workers from raw.workforce order by 1").fetchall()
    assert workforce == [
        ("0120000000022", "CV Maju Jaya", "3326", 15),
        ("9120000000011", "PT Sinar Batang", "3325", 120),
    ]


def test_semicolon_file_with_decimal_comma_and_thousands_dot_loads_value_for_value(con):
    [result] = load(con, CORPUS / "semicolon_decimal_comma" / "employers_2022-09.csv")
    assert result.status == "staged", result.message
    rows = con.execute(
        "select employer_id, business_id, name, region_code, registered_workers, reported_wage_total, "
        "contribution_due, contribution_paid, months_in_arrears from raw.employers order by 1"
    ).fetchall()
    assert rows == [
        (
            "00012345",
            "9120000000011",
            "PT Sinar Batang",
            "3325",
            1234,
            Decimal("3500000000.50"),
            Decimal("175000000.25"),
            Decimal("175000000.25"),
            0,
        ),
        ("00067890", None, "CV Lama", "3326", 12, Decimal("42000000.00"), Decimal("2100000.00"), Decimal("0.00"), 3),
    ]


def test_byte_order_mark_and_indonesian_population_headers(con):
    [result] = load(con, CORPUS / "byte_order_mark" / "population_2022-S2.csv")
    assert result.status == "staged", result.message
    rows = con.execute("select period, as_of, region_code, population from raw.population order by 3").fetchall()
    assert [(p, str(d), c, n) for p, d, c, n in rows] == [
        ("2022-S2", "2022-12-31", "3325", 822253),
        ("2022-S2", "2022-12-31", "3326", 992125),
    ]


def test_a_period_column_that_agrees_with_the_name_loads(con, tmp_path):
    path = write(
        tmp_path,
        "region_counts_2022-09.csv",
        "bulan;kode_wilayah;segmen;status_peserta;jumlah_peserta\n"
        "09/2022;33.25;PBPU;AKTIF;1.200\n2022-09-30;33.26;PBPU;NONAKTIF;15\n",
    )
    [result] = load(con, path)
    assert result.status == "staged", result.message
    assert con.execute("select sum(participants) from raw.region_counts").fetchone()[0] == 1215


@pytest.mark.parametrize("file_format", ["csv", "csv.gz", "parquet"])
def test_all_five_kinds_load_in_every_format(con, tmp_path, file_format):
    files = generate.generate(
        tmp_path / file_format,
        participants=400,
        employers=20,
        workforce=25,
        regions=3,
        month="2023-12",
        seed=5,
        format=file_format,
    )
    assert sorted(path.name.split("_20")[0] for path in files) == sorted(ingest.KINDS)
    results = load(con, *files, threshold=0.0)
    assert all(result.status == "staged" and result.rows_rejected == 0 for result in results), results
    counts = {result.kind: result.rows_loaded for result in results}
    for path in files:
        kind = path.name.split("_20")[0]
        in_file = con.execute(f"select count(*) from '{path}'").fetchone()[0]
        assert counts[kind] == in_file > 0
    # the same content whatever the format
    card_numbers = con.execute("select min(card_no), count(distinct card_no) from raw.participants").fetchone()
    assert card_numbers[0].startswith("000") and card_numbers[1] == 400


def test_same_content_in_csv_gz_and_parquet_gives_the_same_rows(settings, tmp_path):
    from flows import database

    tables = {}
    for file_format in ("csv", "parquet"):
        files = generate.generate(
            tmp_path / file_format,
            participants=300,
            employers=10,
            workforce=12,
            regions=2,
            month="2024-03",
            seed=9,
            format=file_format,
        )
        con = database.connect(settings.model_copy(update={"db": tmp_path / f"{file_format}.duckdb"}))
        database.load_seeds(con, settings.seeds)
        load(con, *files)
        tables[file_format] = {
            table: con.execute(f"select * exclude (load_id, file_name) from {table} order by all").fetchall()
            for table in ("raw.participants", "raw.employers", "raw.workforce", "raw.region_counts", "raw.population")
        }
        con.close()
    assert tables["csv"] == tables["parquet"]


def test_the_same_file_twice_loads_once_even_under_another_name(con, tmp_path):
    first = write(tmp_path / "a", "participants_2022-09.csv", PARTICIPANTS)
    again = write(tmp_path / "b", "participants_2022-09.csv", PARTICIPANTS)
    [loaded] = load(con, first)
    [skipped, copy] = load(con, again, first)
    assert loaded.status == "staged"
    assert skipped.status == copy.status == "skipped"
    assert f"load {loaded.load_id}" in skipped.message
    assert con.execute("select count(*) from raw.participants").fetchone()[0] == 3
    assert con.execute("select count(*) from ops.load_log").fetchone()[0] == 1


def test_the_same_bytes_twice_in_one_batch_load_once(con, tmp_path):
    first = write(
        tmp_path / "a", "region_counts_2022-09.csv", "region_code,segment,status,participants\n3325,BP,ACTIVE,4\n"
    )
    second = write(tmp_path / "b", "region_counts_2022-09.csv", first.read_text())
    results = load(con, first, second)
    assert [result.status for result in results] == ["staged", "skipped"]
    assert con.execute("select sum(participants) from raw.region_counts").fetchone()[0] == 4


def test_a_corrected_file_replaces_its_period_and_nothing_else(con, tmp_path):
    header = "region_code,segment,status,participants\n"
    august = write(tmp_path, "region_counts_2022-08.csv", header + "3325,BP,ACTIVE,10\n3326,BP,ACTIVE,20\n")
    september = write(tmp_path, "region_counts_2022-09.csv", header + "3325,BP,ACTIVE,11\n")
    load(con, august, september)
    corrected = write(
        tmp_path / "fixed", "region_counts_2022-08.csv", header + "3325,BP,ACTIVE,15\n3326,BP,ACTIVE,25\n"
    )
    [result] = load(con, corrected)
    assert result.status == "staged"
    metrics.build(con, layers=("staging",))
    staged = con.execute(
        "select strftime(month, '%Y-%m'), region_code, participants from staging.region_counts order by all"
    ).fetchall()
    assert staged == [("2022-08", "3325", 15), ("2022-08", "3326", 25), ("2022-09", "3325", 11)]
    # publishing marks the first August file superseded and drops its rows
    con.execute("update ops.load_log set status = 'published'")
    con.execute("update ops.load_log set status = 'staged' where load_id = ?", [result.load_id])
    metrics.build(con)
    metrics.publish(con)
    statuses = dict(con.execute("select load_id, status from ops.load_log").fetchall())
    assert sorted(statuses.values()) == ["published", "published", "superseded"]
    assert con.execute("select sum(participants) from raw.region_counts").fetchone()[0] == 15 + 25 + 11


def test_duplicate_rows_across_two_files_of_one_period_count_once(con):
    folder = CORPUS / "duplicate_across_files"
    results = load(con, folder / "region_counts_2022-09.csv", folder / "region_counts_2022-09.csv.gz")
    assert [result.status for result in results] == ["staged", "staged"]
    metrics.build(con, layers=("staging",))
    staged = con.execute(
        "select count(*), sum(participants), count(distinct file_name) from staging.region_counts"
    ).fetchone()
    # six rows, once: the .csv.gz (newer) corrected 3327 PBI_APBN ACTIVE from 1,100,000 to 1,100,500
    assert staged == (6, 600000 + 102109 + 700000 + 127100 + 1100500 + 213212, 1)


def test_participants_without_a_key_is_a_configuration_error_and_nothing_is_loaded(con, tmp_path):
    counts = write(tmp_path, "region_counts_2022-09.csv", "region_code,segment,status,participants\n3325,BP,ACTIVE,4\n")
    people = write(tmp_path, "participants_2022-09.csv", PARTICIPANTS)
    with pytest.raises(ConfigError, match="JKN_PSEUDONYM_KEY is not set.*participants_2022-09.csv"):
        load(con, counts, people, key=None)
    assert con.execute("select count(*) from ops.load_log").fetchone()[0] == 0
    assert con.execute("select count(*) from raw.region_counts").fetchone()[0] == 0


def test_jkn_ingest_without_a_key_exits_2(jkn_env, monkeypatch, tmp_path):
    monkeypatch.delenv("JKN_PSEUDONYM_KEY")
    path = write(tmp_path, "participants_2022-09.csv", PARTICIPANTS)
    done = subprocess.run([sys.executable, "-m", "flows.cli", "ingest", str(path)], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "JKN_PSEUDONYM_KEY is not set" in done.stderr
    assert "3326014507900001" not in done.stdout + done.stderr


def test_the_reject_threshold_decides_when_bad_rows_refuse_the_file(con):
    path = CORPUS / "too_many_bad_rows" / "region_counts_2022-09.csv"  # 1 bad row in 7
    [refused] = load(con, path, threshold=10.0)
    assert refused.status == "rejected" and "more than the 10% allowed" in refused.message
    assert con.execute("select count(*) from raw.region_counts").fetchone()[0] == 0
    [loaded] = load(con, path, threshold=20.0, retry_rejected=True)
    assert loaded.status == "staged" and (loaded.rows_loaded, loaded.rows_rejected) == (6, 1)


def test_a_refused_file_is_not_retried_by_discovery_only_when_named(con, tmp_path):
    path = write(tmp_path, "region_counts_2022-09.csv", "region_code,segment\n3325,BP\n")
    [first] = load(con, path)
    [again] = load(con, path)
    assert first.status == "rejected"
    assert again.status == "skipped" and again.message.startswith(f"refused before (load {first.load_id})")
    [named] = load(con, path, retry_rejected=True)
    assert named.status == "rejected" and named.load_id != first.load_id


def test_jkn_ingest_picks_up_new_files_only(jkn_env):
    from flows.cli import app

    landing = jkn_env / "landing"
    shutil.copytree(FIXTURES / "landing_small", landing)
    runner = CliRunner()

    def statuses(output: str) -> list[str]:
        return re.findall(r"│ (staged|skipped|rejected) +│", output)

    first = runner.invoke(app, ["ingest"])
    assert first.exit_code == 0, first.output
    assert statuses(first.output) == ["staged"] * 3
    second = runner.invoke(app, ["ingest"])
    assert statuses(second.output) == ["skipped"] * 3
    write(landing, "population_2022-S2.csv", "region_code,population\n3325,820000\n")
    third = runner.invoke(app, ["ingest"])
    assert sorted(statuses(third.output)) == ["skipped"] * 3 + ["staged"]
    assert re.search(r"population_2022-S2\.csv +│ staged", third.output)


def test_discovery_skips_hidden_and_partial_files(tmp_path):
    write(tmp_path, "region_counts_2022-09.csv", "x")
    write(tmp_path, ".region_counts_2022-10.csv.abc.part", "x")
    write(tmp_path, "population_2022-S1.csv", "x")
    assert [path.name for path in ingest.discover(tmp_path)] == ["region_counts_2022-09.csv", "population_2022-S1.csv"]


def test_every_row_carries_its_file_and_period(con, tmp_path):
    path = write(tmp_path, "participants_2022-09.csv", PARTICIPANTS)
    load(con, path)
    assert con.execute("select distinct file_name, period, month::varchar from raw.participants").fetchall() == [
        ("participants_2022-09.csv", "2022-09", "2022-09-01")
    ]


def test_header_aliases_are_unambiguous_within_each_kind():
    for kind in ingest.KINDS.values():
        names = [name for column in kind.columns for name in column.names]
        assert len(names) == len(set(names)), kind.name
        assert set(kind.key) <= {column.name for column in kind.columns}
        assert ingest.KINDS[kind.name].table.removeprefix("raw.") == kind.name


def test_the_raw_views_have_the_columns_the_kinds_declare(con, tmp_path):
    load(con, write(tmp_path, "participants_2022-09.csv", PARTICIPANTS))  # one view over a part, four empty
    for kind in ingest.KINDS.values():
        described = con.execute(f"describe {kind.table}").fetchall()
        expected = [(name, sql_type.upper().replace(", ", ",")) for name, sql_type in raw_schema(kind)]
        assert [(row[0], row[1]) for row in described] == expected, kind.name
        assert set(ingest.stored_columns(kind)) < {name for name, _ in expected}


def test_repeated_hashes_finds_every_repeated_hash_and_only_those():
    """Ingest finds repeated keys by sorting their 64-bit hashes (flows.ingest.repeats)."""
    import duckdb

    from flows.ingest.repeats import repeated_hashes

    con = duckdb.connect()
    con.execute(
        "create table keys as select (i % 7)::ubigint as key_hash from range(20) as t(i) where i < 10 or i = 13"
    )
    found = repeated_hashes(con, "keys", "key_hash", 100)
    assert sorted(found.column("key_hash").to_pylist()) == [0, 1, 2, 6]
    assert repeated_hashes(con, "keys where key_hash > 2 and key_hash < 6", "key_hash", 100) is None


def test_repeated_hashes_of_several_keys_in_one_scan_equal_each_alone():
    """The card number and the person of a participants part are read in one scan, sorted side by side."""
    import duckdb

    from flows.ingest.repeats import BATCH_ROWS, repeated_hashes, repeated_hashes_of

    con = duckdb.connect()
    rows = BATCH_ROWS + 5_000  # more than one batch from DuckDB
    con.execute(
        f"create table keys as select (i % {rows - 3})::ubigint as a, (i // 2)::ubigint as b, i::ubigint as c "
        f"from range({rows}) as t(i)"
    )
    together = repeated_hashes_of(con, "keys", ["a", "b", "c"], rows)
    alone = [repeated_hashes(con, "keys", column, rows) for column in ("a", "b", "c")]
    assert sorted(together[0].column("key_hash").to_pylist()) == [0, 1, 2]
    assert together[1].num_rows == rows // 2
    assert together[2] is None and alone[2] is None
    for mine, theirs in zip(together[:2], alone[:2], strict=True):
        assert mine.equals(theirs)
