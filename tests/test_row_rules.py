"""The extension's row rules (flows/native/jkn_rules.c) against the SQL they stand for.

`jkn_text(x)` must be `nullif(trim(x), '')` and `jkn_nik_valid(x, provinces)` true only where
`pseudonym.nik_problem(x)` is null: compared here on every Unicode code point and on every NIK shape
the checks look at, then through a whole file read both ways (same part, same rejects).
"""

from __future__ import annotations

import duckdb
import pytest

from flows.ingest import kinds, pseudonym, reading, rules
from flows.ingest.part import Reference, read_file
from tests.conftest import TEST_KEY


def test_jkn_text_is_nullif_trim_on_every_code_point_before_after_and_around_text(extension_con):
    # every code point but the surrogates (not UTF-8), alone, doubled, before and after text, around it,
    # and beside each of the space separators DuckDB's trim removes (U+0020, U+00A0, U+3000, ...)
    extension_con.execute(
        "create temp table code_points as select chr(i::integer) as c from range(1, 1114112) t(i) "
        "where i not between 55296 and 57343"
    )
    shapes = [
        "c",
        "c || c",
        "c || 'x'",
        "'x' || c",
        "c || 'x y' || c",
        "' ' || c || ' '",
        "chr(160) || c",
        "c || chr(12288)",
        "chr(8239) || 'a' || c || chr(8202)",
        "'\t' || c",
    ]
    values = " union all ".join(f"select {shape} as v from code_points" for shape in shapes)
    extension_con.execute(
        f"create temp table trimmed as select v, jkn_text(v) as native, nullif(trim(v), '') as sql from ({values})"
    )
    counted = extension_con.execute(
        "select count(*), count(*) filter (where native is distinct from sql), "
        "count(*) filter (where native is null), count(*) filter (where native <> v) from trimmed"
    ).fetchone()
    assert counted[0] == 10 * 1_112_063
    assert counted[1] == 0, extension_con.execute(
        "select v, native, sql from trimmed where native is distinct from sql limit 5"
    ).fetchall()
    assert counted[2] > 0 and counted[3] > 0  # some values were trimmed to nothing, some trimmed
    assert extension_con.execute("select jkn_text(null), jkn_text(''), jkn_text('  '), jkn_text(' a ')").fetchone() == (
        None,
        None,
        None,
        "a",
    )


def test_jkn_nik_valid_is_true_exactly_where_nik_problem_is_null(extension_con):
    provinces = ("11", "33", "94")
    problem = pseudonym.nik_problem("nik", provinces)
    native = pseudonym.nik_problem("nik", provinces, native=True)
    # every province x birth day x birth month two-digit pair, then shapes the checks treat apart
    extension_con.execute(
        "create temp table niks as "
        "select lpad(p::varchar, 2, '0') || '0101' || lpad(d::varchar, 2, '0') || lpad(m::varchar, 2, '0') "
        "|| '900001' as nik from range(100) a(p), range(100) b(d), range(100) c(m) "
        "union all select * from (values (null), (''), ('3326014507900001 '), (' 3326014507900001'), "
        "('332601450790001'), ('33260145079000011'), ('3326014507900O01'), ('33260145079000١1'), "
        "('3.32601E+15'), ('3326,0145'), ('abcdefghijklmnop'), ('33260145079000-1'), ('+326014507900001'))"
    )
    counted = extension_con.execute(
        "select count(*), count(*) filter (where valid is distinct from (sql is null)), "
        "count(*) filter (where native is distinct from sql), count(*) filter (where valid) from ("
        f"select jkn_nik_valid(nik, '{','.join(provinces)}') as valid, {problem} as sql, {native} as native "
        "from niks)"
    ).fetchone()
    assert counted == (1_000_013, 0, 0, 3 * 62 * 12)  # the valid: days 01-31 and 41-71, months 01-12


def test_jkn_nik_valid_refuses_provinces_that_are_not_a_constant_list(extension_con):
    for provinces in ("'3x'", "'33,1'", "null", "nik"):
        with pytest.raises(duckdb.Error, match="provinces must be a constant"):
            extension_con.execute(f"select jkn_nik_valid(nik, {provinces}) from (values ('3326014507900001')) t(nik)")


def test_jkn_digits_is_the_regex_on_every_code_point_and_length(extension_con):
    extension_con.execute(
        "create or replace temp table texts as select chr(i::integer) as c from range(1, 1114112) t(i) "
        "where i not between 55296 and 57343"
    )
    shapes = ["c", "'333' || c", "c || '326'", "'33' || c || '6'", "'1234567890123'", "'123456789012' || c", "''"]
    values = " union all ".join(f"select {shape} as v from texts" for shape in shapes) + " union all select null"
    for digits in (0, 1, 4, 13):
        counted = extension_con.execute(
            "select count(*), count(*) filter (where native is distinct from sql), count(*) filter (where native) "
            f"from (select {rules.digits_match('v', digits, native=True)} as native, "
            f"{rules.digits_match('v', digits)} as sql from ({values}))"
        ).fetchone()
        assert counted[0] == 7 * 1_112_063 + 1 and counted[1] == 0, (digits, counted)
        assert counted[2] > 0, digits  # each length matched somewhere (`''` for 0, a digit for 1, ...)


def test_sex_and_birth_year_of_the_extension_are_the_sqls_for_every_good_nik(extension_con):
    provinces = ("33",)
    outputs = {}
    for native in (False, True):
        nik, _, _, sex, year = rules._column_outputs(kinds.KINDS["participants"].column("nik"), ",", False, "x", native)
        outputs[native] = (sex.removesuffix(" as sex"), year.removesuffix(" as birth_year"))
    # every birth day (01-31, 41-71) x month x two-digit year, at month-ends around the century turn
    extension_con.execute(
        "create or replace temp table niks as select '330101' || lpad(d::varchar, 2, '0') || lpad(m::varchar, 2, '0') "
        "|| lpad(y::varchar, 2, '0') || '0001' as nik_text from range(1, 72) a(d), range(1, 13) b(m), range(100) c(y) "
        "where d <= 31 or d >= 41"
    )
    problem = pseudonym.nik_problem("nik_text", provinces, native=True)
    for period in (199912, 200001, 202406, 202412, 209912):
        counted = extension_con.execute(
            f"select count(*), count(*) filter (where ns is distinct from ss or ny is distinct from sy), "
            "count(distinct ns), count(distinct ny), any_value(typeof(ny)) = any_value(typeof(sy)) from ("
            f"select {outputs[True][0]} as ns, {outputs[False][0]} as ss, {outputs[True][1]} as ny, "
            f"{outputs[False][1]} as sy from (select *, {problem} as nik_problem from niks))",
            {"period_month": period},
        ).fetchone()
        # 100 years (101 where the period's year is one a NIK's two digits name with either century)
        assert counted[:3] == (62 * 12 * 100, 0, 2) and counted[3] >= 100 and counted[4], (period, counted)
    # a NIK that failed its checks gets neither, either way
    assert extension_con.execute(
        f"select {outputs[True][0]}, {outputs[True][1]} from (select '33010199900001' as nik_text, "
        "'NIK must be 16 digits' as nik_problem)",
        {"period_month": 202406},
    ).fetchone() == (None, None)


def test_the_native_pass_hashes_no_row_into_a_join_but_the_region_lookup(extension_con, tmp_path):
    """The reading SELECT of a participants file checks each row with functions, not joins (DuckDB plans an IN
    list of six values or more as a join that hashes every row's value); the one join left looks each row's
    region code up in the seeds' (measured cheaper than a function given the 514 codes as a constant)."""
    path = tmp_path / "participants_2024-06.csv"
    path.write_text(MESSY)
    source = reading.open_source(extension_con, path)
    positions, _ = reading.map_columns(path.name, source, kinds.KINDS["participants"])
    kind, provinces = kinds.KINDS["participants"], ("33",)
    native = rules.reading_select(
        source, kind, positions, rules.checks(kind, True), pseudonym.PERSON_KEY_FUNCTION, provinces
    ).replace(f"{pseudonym.PERSON_KEY_FUNCTION}(nik_text)", "sha256(nik_text)")  # no key registered here
    extension_con.execute(f"create or replace temp table {rules.REGIONS_TABLE} (region_code varchar)")
    plan = extension_con.execute(f"explain {native}", {"period_month": 202406}).fetchall()[0][1]
    assert plan.count("HASH_JOIN") == 1 and "region_code = #0" in plan
    assert "regexp_full_match(card_no" not in native and "jkn_digits(card_no, 13)" in native


MESSY = """card_no,nik,region_code,segment,status,employer_id,wage
0002442695041,3326014507900001,3326,PBPU,ACTIVE,,
 0002442695042 ,\u00a03326014507900002\u3000,33.26, pbpu ,aktif,,
0002442695043,3326014507900003,3326,PPU_BU,ACTIVE,\t123 ,"3.500.000"
0002442695044,3326014507900004 ,3327,PPU_BU,NONAKTIF,77,3500000.50
0002442695045,3326017207900005,3326,PBPU,ACTIVE,,
0002442695046,3326014513900006,3326,PBPU,ACTIVE,,
0002442695047,1126014507900007,3326,PBPU,ACTIVE,,
0002442695048,3.32601E+15,3326,PBPU,ACTIVE,,
0002442695049,\u2003,3326,PBPU,ACTIVE,,
00024426950\u00a0,3326014507900010,3326,PBPU,ACTIVE,,
0002442695051,3326014507900011,\u00a0,PBPU,ACTIVE,,
0002442695052,3326014507900012,3326,\u1680PBPU\u205f,ACTIVE,,
"""


def test_the_rules_are_the_extensions_where_it_computes_person_key():
    assert pseudonym.native_rules(pseudonym.PERSON_KEY_FUNCTION)
    assert not pseudonym.native_rules("sql")
    assert not pseudonym.native_rules(f"{pseudonym.PERSON_KEY_FUNCTION}_0a1b2c3d")  # the Arrow function


def test_a_messy_file_gives_the_same_part_and_rejects_with_the_extensions_rules_and_without(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    path = landing / "participants_2024-06.csv"
    # a repeated card number (line 2's) and a person with two cards (line 3's NIK, as written there): the
    # repeats are found by the extension's aggregate one way and by numpy the other (flows/ingest/repeats.py)
    repeats = "0002442695041,3326014507900099,3326,PBPU,ACTIVE,,\n0002442695099,3326014507900002,3326,PBPU,ACTIVE,,\n"
    path.write_text(
        MESSY + repeats + "".join(f"{9000000000000 + n},3326014507{n:06d},3326,PBPU,ACTIVE,,\n" for n in range(300))
    )
    outcomes = {}
    for way in ("extension", "sql"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(pseudonym, "PERSON_KEY_WAYS", (way,))
            outcomes[way] = read_file(
                path,
                "0" * 64,
                tmp_path / f"parts-{way}",
                Reference(("3326", "3327"), ("33",)),
                pseudonym_key=TEST_KEY,
                threshold_pct=50.0,
                config={"threads": 2},
            )
    native, sql = outcomes["extension"], outcomes["sql"]
    assert native.status == sql.status == "staged", (native.message, sql.message)
    assert native.rows_rejected == sql.rows_rejected > 0
    assert native.rejects == sql.rejects
    assert (14, "card_no", "0002442695041", "repeats line 2: one row per card_no in a file") in native.rejects
    assert native.repeats == sql.repeats and any(row[1] == "person_key" and row[2] == 1 for row in native.repeats)
    check = duckdb.connect()
    try:
        rows = "(select file_row_number, * exclude (file_row_number) from read_parquet('{}', file_row_number = true))"
        first, second = (tmp_path / f"parts-{way}" / outcomes[way].part for way in ("extension", "sql"))
        for a, b in ((first, second), (second, first)):
            assert check.execute(f"select count(*) from ({rows.format(a)} except all {rows.format(b)})").fetchone() == (
                0,
            )
        assert check.execute(f"select count(*) from {rows.format(first)}").fetchone()[0] == native.rows_loaded
    finally:
        check.close()
