"""person_key three ways (flows/ingest/pseudonym.py): the DuckDB extension (flows/native/jkn_pseudonym.c),
the Arrow UDF over flows/_pseudonym.c, and SQL; each equal to Python's hmac, each part the same."""

from __future__ import annotations

import hashlib
import hmac
import logging

import duckdb
import pytest

from flows import generate
from flows.ingest import pseudonym
from flows.ingest.part import Reference, read_file
from tests.conftest import TEST_KEY

WAYS = ("extension", "arrow", "sql")
# the standard NIK, then the edges of SHA-256's blocks: 55 bytes fit the inner hash's last block with
# its padding, 56 do not; 64 is a whole block; multi-byte UTF-8; long values
VALUES = [
    "3326014507900001",
    "",
    "a",
    "x" * 55,
    "y" * 56,
    "z" * 63,
    "w" * 64,
    "v" * 65,
    "u" * 119,
    "ünïcødé NIK 日本 🙂",
    "3326 0145 0790 0001\t",
    "n" * 5000,
    None,
]
KEYS = (TEST_KEY, "k", "p" * 64, "a key longer than a block, ünïcode too: " + "k" * 70)


def _private_connection() -> duckdb.DuckDBPyConnection:
    """As `read_file` opens its own (flows/ingest/part.py)."""
    return duckdb.connect(config={"threads": 2, **pseudonym.connect_config()})


def _person_keys(way: str, key: str, values: list) -> list:
    """person_key of each value, computed the `way` the reading SELECT would (register_person_key)."""
    con = _private_connection()
    try:
        ipad, opad = pseudonym.hmac_pads(key)
        parameters = {"ipad": ipad, "opad": opad}
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(pseudonym, "PERSON_KEY_WAYS", (way,))
            assert pseudonym.person_key_way(con) == way, f"the {way} way is not available on this machine"
            function = pseudonym.register_person_key(con, parameters)
        expression = f"{function}(value)" if function != "sql" else pseudonym.sql_person_key("value")
        try:
            return [
                row[0]
                for row in con.execute(
                    f"select {expression} from unnest($values::varchar[]) with ordinality as t(value, n) order by n",
                    {**parameters, "values": values},
                ).fetchall()
            ]
        finally:
            pseudonym.unregister_person_key(con, function)
            # nothing of the key stays on the connection (which read_file closes after each file anyway)
            assert con.execute("select count(*) from duckdb_variables()").fetchone()[0] == 0
            if way == "extension":
                assert (
                    con.execute(
                        "select count(*) from duckdb_functions() where function_name = ?",
                        [pseudonym.PERSON_KEY_FUNCTION],
                    ).fetchone()[0]
                    == 0
                )
    finally:
        con.close()


def _hmac(key: str, value: str | None) -> bytes | None:
    return None if value is None else hmac.new(key.encode(), value.encode(), hashlib.sha256).digest()


def test_the_duckdb_extension_is_built_and_loads_where_ingest_connects():
    """`make setup` (pip install -e .) builds it with gcc and OpenSSL's libcrypto (setup.py); without it
    ingest still works (the Arrow UDF, then SQL, tested below) but spends ~1 CPU s more per 1 M rows."""
    assert pseudonym.EXTENSION_PATH.exists(), f"{pseudonym.EXTENSION_PATH} was not built: see setup.py's warning"
    assert pseudonym.connect_config() == {"allow_unsigned_extensions": True}
    con = _private_connection()
    try:
        assert pseudonym.person_key_way(con) == "extension"
        functions = con.execute(
            "select parameter_types, return_type from duckdb_functions() where function_name = ?",
            [pseudonym.EXTENSION_FUNCTION],
        ).fetchall()
        assert functions == [(["VARCHAR", "BLOB", "BLOB"], "BLOB")]
    finally:
        con.close()


def test_without_unsigned_extensions_allowed_the_next_way_is_used(caplog):
    con = duckdb.connect()  # as any other connection: DuckDB refuses an unsigned extension
    try:
        with caplog.at_level(logging.WARNING, logger=pseudonym.__name__):
            assert pseudonym.person_key_way(con) == "arrow"
        assert "did not load" in caplog.text
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(pseudonym, "PERSON_KEY_WAYS", ("extension", "sql"))
            assert pseudonym.person_key_way(con) == "sql"
    finally:
        con.close()


def test_where_the_extension_was_not_built_the_connection_is_as_any_other_and_the_udf_is_used(tmp_path, monkeypatch):
    monkeypatch.setattr(pseudonym, "EXTENSION_PATH", tmp_path / "jkn_pseudonym.duckdb_extension")
    assert pseudonym.connect_config() == {}
    con = _private_connection()
    try:
        assert pseudonym.person_key_way(con) == "arrow"
        assert con.execute("select current_setting('allow_unsigned_extensions')").fetchone()[0] is False
    finally:
        con.close()


@pytest.mark.parametrize("way", WAYS)
def test_each_way_is_pythons_hmac_on_the_edge_cases(way):
    for key in KEYS:
        assert _person_keys(way, key, VALUES) == [_hmac(key, value) for value in VALUES], key


def test_the_extension_over_many_vectors_with_nulls_between():
    """More rows than one DuckDB vector (2048), nulls scattered: each row's own digest, null for null."""
    values = [None if index % 7 == 3 else f"3326{index:012d}" for index in range(5000)]
    assert _person_keys("extension", TEST_KEY, values) == [_hmac(TEST_KEY, value) for value in values]


def test_the_extension_refuses_pads_that_are_not_constants_and_never_shows_them():
    con = _private_connection()
    try:
        ipad, opad = pseudonym.hmac_pads(TEST_KEY)
        assert pseudonym.person_key_way(con) == "extension"
        for arguments, parameters in (
            ("'nik', $ipad, $opad", {"ipad": ipad, "opad": opad[:10]}),  # not 64 bytes
            ("'nik', $ipad, null", {"ipad": ipad}),  # not null either: every person_key would be null
            ("'nik', $ipad, getvariable('unset')", {"ipad": ipad}),
            ("value, value::blob, $opad", {"opad": opad}),  # not a constant
        ):
            with pytest.raises(duckdb.BinderException) as error:
                con.execute(
                    f"select jkn_hmac_sha256({arguments}) from (values ('3326014507900001')) as t(value)", parameters
                ).fetchall()
            assert "must be constant BLOBs of 64 bytes" in str(error.value)
            assert ipad.hex() not in str(error.value).lower() and TEST_KEY not in str(error.value)
    finally:
        con.close()


def _read(tmp_path, landing, way: str, caplog):
    parts = tmp_path / f"parts-{way}"
    [path] = landing.glob("participants_*")
    with pytest.MonkeyPatch.context() as patch, caplog.at_level(logging.DEBUG, logger=pseudonym.__name__):
        patch.setattr(pseudonym, "PERSON_KEY_WAYS", (way,))
        caplog.clear()
        outcome = read_file(
            path,
            "0" * 64,
            parts,
            Reference(("3326", "3327", "3374"), ("33",)),
            pseudonym_key=TEST_KEY,
            threshold_pct=5.0,
            config={"threads": 2},
        )
        ran = [record.getMessage() for record in caplog.records if "person_key computed by" in record.getMessage()]
    assert ran == [f"person_key computed by the {way} way"]
    assert outcome.status == "staged", outcome.message
    return outcome, parts / outcome.part


def test_the_whole_part_is_the_same_each_way(tmp_path, caplog):
    """read_file, the one pass ingest makes, through each way: the same part, row for row."""
    landing = tmp_path / "landing"
    generate.generate(landing, participants=6000, employers=20, workforce=20, regions="3326,3327,3374", seed=3)
    for other in landing.iterdir():
        if not other.name.startswith("participants_"):
            other.unlink()
    outcomes = {way: _read(tmp_path, landing, way, caplog) for way in WAYS}
    con = duckdb.connect()
    try:
        _, sql_part = outcomes["sql"]
        rows = "(select file_row_number, * exclude (file_row_number) from read_parquet('{}', file_row_number = true))"
        for way in ("extension", "arrow"):
            outcome, part = outcomes[way]
            assert (outcome.rows_loaded, outcome.rows_rejected) == (
                outcomes["sql"][0].rows_loaded,
                outcomes["sql"][0].rows_rejected,
            )
            for first, second in ((part, sql_part), (sql_part, part)):
                assert (
                    con.execute(
                        f"select count(*) from (from {rows.format(first)} except all from {rows.format(second)})"
                    ).fetchone()[0]
                    == 0
                ), way
        assert con.execute(
            f"select count(*), count(distinct person_key), min(octet_length(person_key)) from {rows.format(sql_part)}"
        ).fetchone() == (outcomes["sql"][0].rows_loaded, outcomes["sql"][0].rows_loaded, 32)
    finally:
        con.close()
