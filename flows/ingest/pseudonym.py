"""NIKs at the door: the keyed hash that replaces them, and the masking of anything that looks like one.

The raw NIK is read and used inside the one SELECT that reads a participants file (`rules`), and
only what is derived from it leaves that SELECT:
  - `person_key` = HMAC-SHA256(JKN_PSEUDONYM_KEY, NIK), stored as its 32 raw bytes (shown as 64
    hex digits wherever a person sees it), with the padded key's ipad/opad computed once in
    Python; computed by the first of these that this machine has (`PERSON_KEY_WAYS`):
      1. "extension": `jkn_hmac_sha256`, from the DuckDB extension built by setup.py from
         flows/native/jkn_pseudonym.c (OpenSSL's SHA-256 in DuckDB's own threads: no Python, no
         GIL, no Arrow), loaded into ingest's private connection; the pads reach it as constants
         (two connection variables, reset after the pass), read once when the query is bound;
      2. "arrow": a vectorised Python (Arrow) function over the C module `flows._pseudonym`
         (OpenSSL on whole Arrow arrays, GIL released), registered only while the file is read;
      3. "sql": sha256(opad || sha256(ipad || nik)) with the pads as parameters;
    all three equal Python's `hmac` (tests/test_pseudonym.py); the reading SELECT calls
    `jkn_person_key(nik)` for the first two, the SQL for the third;
  - `sex` `F` when the birth day is 41-71 (day + 40 for women), else `M`;
  - `birth_year` from the NIK's two-digit year: 20YY unless that birth month would lie after the
    file's period, then 19YY (a NIK does not say the century; nobody is born after the month the
    extract describes);
  - for a bad NIK, a masked value for `ops.rejects`.

One masking policy for every identifier-like value shown or stored outside the pseudonymised
columns (`mask_nik` in SQL, `redact` in Python): the first 4 characters (the region of issue,
shared by hundreds of thousands of people) stay, every other digit becomes `*`, other characters
are kept, so the shape of a mistake stays visible (`3326************`, `3.27***E+**`) but neither
birth date nor serial does. The raw NIK never reaches a part, a table, a log or a message.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from pathlib import Path

import duckdb
from pydantic import SecretStr

log = logging.getLogger(__name__)

# An identifier-like value: a run of digits, perhaps grouped by `.`, `-` or `/`, holding at least
# IDENTIFIER_DIGITS digits (a NIK has 16, a card number 13, an NIB 13, a phone number 10-13); a date
# (8 digits) is not one.
IDENTIFIER_DIGITS = 10
_IDENTIFIER = re.compile(rf"\d(?:[./-]?\d){{{IDENTIFIER_DIGITS - 1},}}")


def redact(text: str) -> str:
    """Mask every identifier-like value in a message, as `mask_identifier` does in SQL: its first 4
    characters stay, every later digit becomes `*`."""
    return _IDENTIFIER.sub(lambda match: match.group()[:4] + re.sub(r"\d", "*", match.group()[4:]), text)


def mask_identifier(expression: str) -> str:
    """SQL: `expression` masked (`mask_nik`) when it holds an identifier-like value, else as it is."""
    return (
        f"case when length(regexp_replace({expression}, '[^0-9]', '', 'g')) >= {IDENTIFIER_DIGITS} "
        f"then {mask_nik(expression)} else {expression} end"
    )


def key_text(key: SecretStr | str | None) -> str | None:
    """The key as text, from a setting (a SecretStr) or a str; None when there is none."""
    if isinstance(key, SecretStr):
        return key.get_secret_value() or None
    return key or None


def hmac_pads(key: str) -> tuple[bytes, bytes]:
    """The HMAC-SHA256 inner and outer pads of `key` (RFC 2104), for the set-wise HMAC in SQL."""
    raw = key.encode("utf-8")
    if len(raw) > 64:
        raw = hashlib.sha256(raw).digest()
    raw = raw.ljust(64, b"\0")
    return bytes(byte ^ 0x36 for byte in raw), bytes(byte ^ 0x5C for byte in raw)


def mask_nik(expression: str) -> str:
    """SQL: the first 4 characters, then every digit as `*` (see the module docstring)."""
    return f"(left({expression}, 4) || regexp_replace(substr({expression}, 5), '[0-9]', '*', 'g'))"


def nik_problem(nik: str, provinces: tuple[str, ...], native: bool = False) -> str:
    """SQL: why a NIK is bad, or null. `provinces`: the known two-digit province codes (digits only).
    `native`: a good NIK is told by the extension's `jkn_nik_valid` (flows/native/jkn_rules.c), and
    only a bad one takes the SQL that names its problem."""
    codes = [code for code in provinces if len(code) == 2 and code.isdigit()]
    known = ", ".join(f"'{code}'" for code in codes) or "null"
    day, month = f"try_cast(substr({nik}, 7, 2) as integer)", f"try_cast(substr({nik}, 9, 2) as integer)"
    # the usual case (16 digits) first: this runs once per participant
    # where the extension tells the good ones, only a bad NIK reaches this: list_contains, not `in (...)`,
    # which DuckDB plans as a join over every row
    unknown = (
        f"not list_contains([{known}], left({nik}, 2))" if native and codes else f"left({nik}, 2) not in ({known})"
    )
    problem = (
        f"case when regexp_full_match({nik}, '[0-9]{{16}}') then case "
        f"when {unknown} then "
        "'NIK province code (digits 1-2) is not a known province' "
        f"when not ({day} between 1 and 31 or {day} between 41 and 71) then "
        "'NIK birth day (digits 7-8) must be 01-31, or 41-71 for women' "
        f"when not {month} between 1 and 12 then 'NIK birth month (digits 9-10) must be 01-12' end "
        f"when {nik} is null then 'NIK is missing' "
        f"when regexp_full_match({nik}, '[0-9]+([.,][0-9]+)?[eE][+]?[0-9]+') then "
        "'NIK was turned into a number by a spreadsheet (like 3.27306E+15) and lost its last digits; "
        "export the column as text' "
        "else 'NIK must be 16 digits' end"
    )
    return (
        f"case when {RULES_NIK_FUNCTION}({nik}, '{','.join(codes)}') then null else {problem} end"
        if native
        else problem
    )


PERSON_KEY_FUNCTION = "jkn_person_key"
# The ways to compute person_key, the fastest first (see the module docstring); the first this machine
# has is used. Tests narrow it to compare the ways with each other and with Python's hmac.
PERSON_KEY_WAYS = ("extension", "arrow", "sql")
# The DuckDB extension setup.py builds (its name is the extension's: DuckDB calls jkn_pseudonym_init_c_api)
EXTENSION_PATH = Path(__file__).resolve().parent.parent / "jkn_pseudonym.duckdb_extension"
EXTENSION_FUNCTION = "jkn_hmac_sha256"
# Its row rules (flows/native/jkn_rules.c): nullif(trim(x), '') and "nik_problem(x) is null"
RULES_TEXT_FUNCTION, RULES_NIK_FUNCTION = "jkn_text", "jkn_nik_valid"
# The connection variables that hold the pads while the one reading pass runs
_PAD_VARIABLES = {"ipad": "jkn_pseudonym_ipad", "opad": "jkn_pseudonym_opad"}


def connect_config() -> dict:
    """What ingest's private connection must be opened with to load the extension: DuckDB only loads
    an unsigned extension (this one is built here, not signed by DuckDB) into a database opened with
    `allow_unsigned_extensions`, and only at connect. Nothing where the extension is not used."""
    return {"allow_unsigned_extensions": True} if "extension" in PERSON_KEY_WAYS and EXTENSION_PATH.exists() else {}


def person_key_way(con: duckdb.DuckDBPyConnection) -> str:
    """The first of `PERSON_KEY_WAYS` that works on `con`: "extension" (loaded into `con` now if it
    was not), "arrow" or "sql"."""
    for way in PERSON_KEY_WAYS:
        if way == "extension" and _load_extension(con) or way == "arrow" and _has_c_module() or way == "sql":
            return way
    return "sql"


def native_rules(person_key: str) -> bool:
    """Whether the reading SELECT checks rows with the extension's functions: where it computes
    `person_key` with the extension (`register_person_key` loaded it), that is in participants files,
    nearly all the rows ingest reads. Other files keep the SQL (and try no load that could warn)."""
    return person_key == PERSON_KEY_FUNCTION


def _has_c_module() -> bool:
    try:
        from flows import _pseudonym  # noqa: F401
    except ImportError:
        return False
    return True


def _load_extension(con: duckdb.DuckDBPyConnection) -> bool:
    if not EXTENSION_PATH.exists():
        return False
    try:  # loaded already (files of a batch share an instance)? A call costs far less than duckdb_functions()
        con.execute(f"select {RULES_TEXT_FUNCTION}(null::varchar)")
        return True
    except duckdb.CatalogException:
        pass
    try:
        con.execute(f"load '{str(EXTENSION_PATH).replace(chr(39), chr(39) * 2)}'")
    except duckdb.Error as error:  # e.g. a connection without allow_unsigned_extensions, another platform
        log.warning("the DuckDB extension for person_key did not load (%s); falling back", error)
        return False
    return True


def sql_person_key(nik: str) -> str:
    """SQL: HMAC-SHA256 of `nik` as 32 bytes, with the pads as the parameters $ipad and $opad."""
    return f"unhex(sha256($opad || unhex(sha256($ipad || encode({nik})))))"


def register_person_key(con: duckdb.DuckDBPyConnection, parameters: dict) -> str:
    """How the reading SELECT computes person_key: `PERSON_KEY_FUNCTION` (a macro over the
    extension's `jkn_hmac_sha256`, or a vectorised Python function over `flows._pseudonym`), or
    "sql" (`person_key_way`; BENCHMARKS.md, "Ingest again", for what each costs). Takes the pads out
    of `parameters` when the function holds them. What is registered stays on `con` until the
    caller calls `unregister_person_key`."""
    if "ipad" not in parameters:
        return "sql"
    way = person_key_way(con)
    log.debug("person_key computed by the %s way", way)
    if way == "sql":
        return "sql"
    if way == "extension":
        for name, variable in _PAD_VARIABLES.items():
            con.execute(f"set variable {variable} = $pad::blob", {"pad": parameters.pop(name)})
        pads = ", ".join(f"getvariable('{variable}')" for variable in _PAD_VARIABLES.values())
        con.execute(f"create or replace temp macro {PERSON_KEY_FUNCTION}(nik) as {EXTENSION_FUNCTION}(nik, {pads})")
        return PERSON_KEY_FUNCTION
    import pyarrow as pa
    import pyarrow.compute as pc

    from flows import _pseudonym

    ipad, opad = parameters.pop("ipad"), parameters.pop("opad")

    def person_keys(values):  # no annotations: DuckDB evaluates them in the module namespace
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            values = values.cast(pa.large_string())
        count = len(values)
        _, offsets, data = values.buffers()
        width = 8 if pa.types.is_large_string(values.type) else 4
        digests = _pseudonym.digests(ipad, opad, offsets, data or b"", width, values.offset, count)
        validity = pc.is_valid(values).buffers()[1] if values.null_count else None
        return pa.BinaryArray.from_buffers(
            pa.binary(),
            count,
            [validity, pa.py_buffer(_digest_offsets(count)), pa.py_buffer(digests)],
            values.null_count,
        )

    # A name of its own: files of a batch share one DuckDB instance (`instances.shared_reader`), where
    # `remove_function` on a file's connection leaves the name taken for the next file's.
    name = f"{PERSON_KEY_FUNCTION}_{secrets.token_hex(4)}"
    con.create_function(
        name,
        person_keys,
        [duckdb.sqltype("VARCHAR")],
        duckdb.sqltype("BLOB"),
        type="arrow",
        null_handling="special",
        side_effects=False,
    )
    return name


def unregister_person_key(con: duckdb.DuckDBPyConnection, person_key: str) -> None:
    """Removes what `register_person_key` left on `con`, the pads with it (the Arrow function's, as far
    as DuckDB lets go of it: its instance, closed at the end of the batch, holds it until then)."""
    if person_key == "sql":
        return
    if person_key == PERSON_KEY_FUNCTION:  # the macro over the extension, and its pads
        con.execute(f"drop macro if exists {PERSON_KEY_FUNCTION}")
        for variable in _PAD_VARIABLES.values():
            con.execute(f"reset variable {variable}")
        return
    try:
        con.remove_function(person_key)
    except duckdb.Error:
        pass


def _digest_offsets(count: int, _cache: dict[int, bytes] = {}) -> bytes:  # noqa: B006 - a deliberate cache
    """int32 offsets of `count` values of 32 bytes each."""
    if count not in _cache:
        import array

        if len(_cache) > 8:
            _cache.clear()
        _cache[count] = array.array("i", range(0, 32 * (count + 1), 32)).tobytes()
    return _cache[count]
