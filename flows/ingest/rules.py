"""What a good row is: the SQL that types each column of a file and flags the rows that are bad.

`reading_select` is the one SELECT that reads a file: per row, each column's typed value, the NIK
already replaced by `person_key`, `sex` and `birth_year` (`pseudonym`), and `bad`: whether any row
check fails. The text a column was typed from is kept only on bad rows (for `ops.rejects`).
`rejects_select` turns the flagged rows into (line, column, value, reason); nothing else reads
the file again.
"""

from __future__ import annotations

from flows.ingest.kinds import SEGMENT_ALIASES, SEGMENTS, STATUS_ALIASES, Column, ExtractKind
from flows.ingest.pseudonym import mask_identifier, mask_nik, native_rules, nik_problem, sql_person_key
from flows.ingest.reading import Source, column_text

# The region codes rows are checked against, a temporary table of the connection reading a file (`part`).
REGIONS_TABLE = "temp.reference_regions"


def reading_select(
    source: Source,
    kind: ExtractKind,
    positions: dict[str, int],
    checks: list[tuple[str, str, str, str]],
    person_key: str = "sql",
    provinces: tuple[str, ...] = (),
) -> str:
    """One SELECT that reads the file and returns, per line, each column's typed value and
    `bad`: whether any of `checks` fails. The text a column was typed from is kept only on bad
    rows (for `ops.rejects`): on a good row it is null, so a national extract's landing table
    holds one copy of each value, not two. The NIK is used only inside it (see the module
    docstring). Where the extension computes `person_key`, it also trims and checks NIKs
    (`pseudonym.native_rules`), giving the same values."""
    native = native_rules(person_key)
    texts = ", ".join(
        f"{column_text(source, positions.get(column.name), native)} as {column.name}_text" for column in kind.columns
    )
    outputs = []
    for column in kind.columns:
        if column.type == "period" and column.name not in positions:
            continue  # nothing to compare with the file name
        outputs += _column_outputs(column, source.delimiter, kind.semester, person_key, native)
    typed = (
        f"with source as (select {texts} from {source.relation}), "
        f"checked as (select *, {nik_problem('nik_text', provinces, native)} as nik_problem from source) "
        if any(column.type == "nik" for column in kind.columns)
        else f"with checked as (select {texts} from {source.relation}) "
    ) + f"select {', '.join(outputs)} from checked"
    bad = " or ".join(f"coalesce({condition}, false)" for _, _, condition, _ in checks) or "false"
    texts = _texts_of_bad_rows(kind)
    if not texts:
        return f"select *, {bad} as bad from ({typed})"
    return (
        f"select * exclude ({', '.join(texts)}), case when bad then [{', '.join(texts)}] end as bad_row_texts "
        f"from (select *, {bad} as bad from ({typed}))"
    )


def _texts_of_bad_rows(kind: ExtractKind) -> list[str]:
    """The text columns `reading_select` keeps only on bad rows, in one list column (one null
    per good row instead of one per column). The period column is not among them: it is
    compared with the file name on every row (`_check_period_column`); nor the NIK's: its
    masked value and problem are null on good rows already."""
    return [
        f"{column.name}_value"
        for column in kind.columns
        if value_column(column) == f"{column.name}_value" and column.type not in ("period", "nik")
    ]


def bad_rows(kind: ExtractKind, landing: str) -> str:
    """The landing rows with a failed check, their texts unpacked from `bad_row_texts`."""
    texts = _texts_of_bad_rows(kind)
    unpacked = "".join(f", bad_row_texts[{index}] as {name}" for index, name in enumerate(texts, start=1))
    return f"(select *{unpacked} from {landing} where bad)"


# Period formats that name a day, and how strptime reads them once `/` and `.` are turned into `-`.
DAY_FORMATS = {
    r"(\d{4})[-/.](\d{2})[-/.]\d{2}": "%Y-%m-%d",
    r"\d{2}[-/.](\d{2})[-/.](\d{4})": "%d-%m-%Y",
}


def _column_outputs(
    column: Column, delimiter: str, semester: bool, person_key: str = "sql", native: bool = False
) -> list[str]:
    name, text = column.name, f"{column.name}_text"
    if column.type == "nik":
        nik_ok = "nik_problem is null"
        hmac = f"{person_key}(nik_text)" if person_key != "sql" else sql_person_key("nik_text")
        day = "try_cast(substr(nik_text, 7, 2) as integer)"
        month, year = "try_cast(substr(nik_text, 9, 2) as integer)", "try_cast(substr(nik_text, 11, 2) as integer)"
        # the extension's functions give the same for a NIK that passed its checks (flows/native/jkn_rules.c)
        sex = "jkn_nik_sex(nik_text)" if native else f"case when {day} > 40 then 'F' else 'M' end"
        birth_year = (
            "jkn_nik_birth_year(nik_text, $period_month)"
            if native
            else f"case when (2000 + {year}) * 100 + {month} <= $period_month then 2000 + {year} else 1900 + {year} end"
        )
        return [
            f"case when not {nik_ok} then {mask_nik('nik_text')} end as nik_value",
            "nik_problem",
            f"case when {nik_ok} then {hmac} end as person_key",
            f"case when {nik_ok} then {sex} end as sex",
            f"case when {nik_ok} then {birth_year} end as birth_year",
        ]
    if column.type == "region":
        # a 4-character value keeps its characters (one with a dot or space would be short after
        # the removal and is rejected either way), so only `33.26` and the like take the regex
        normalised = f"regexp_replace({text}, '[.\\s]', '', 'g')"
        return [f"{text} as {name}_value", f"case when length({text}) = 4 then {text} else {normalised} end as {name}"]
    if column.type == "segment":
        return [f"{text} as {name}_value", f"{_lookup(text, SEGMENT_ALIASES)} as {name}"]
    if column.type == "status":
        return [f"{text} as {name}_value", f"{_lookup(text, STATUS_ALIASES)} as {name}"]
    if column.type == "count":
        return [f"{text} as {name}_value", f"{_integer(text, delimiter)} as {name}"]
    if column.type == "money":
        return [f"{text} as {name}_value", f"{_decimal(text, delimiter)} as {name}"]
    if column.type == "period":
        return [f"{text} as {name}_value", f"{period_sql(text, semester)} as {name}"]
    return [f"{text} as {name}"]  # digits, code, text: the text is the value


def value_column(column: Column) -> str:
    return column.name if column.type in ("digits", "code", "text") else f"{column.name}_value"


def _lookup(text: str, aliases: dict[str, str]) -> str:
    """The canonical value of an alias; a value written canonically (nearly all of them) skips the
    normalising string functions."""
    canonical = ", ".join(f"'{value}'" for value in sorted(set(aliases.values())))
    cases = " ".join(f"when '{alias}' then '{value}'" for alias, value in aliases.items())
    # list_contains, not `in (...)`: DuckDB plans an IN list of six or more values as a join, which hashes
    # every row's value
    return (
        f"case when list_contains([{canonical}], {text}) then {text} "
        f"else case replace(replace(upper({text}), ' ', '_'), '-', '_') {cases} end end"
    )


def _integer(text: str, delimiter: str) -> str:
    """Text -> bigint in the file's dialect (`1.313.212` in `;` files, `1,313,212` in `,` files);
    null when it is not exactly a whole number, so `85,16` or `600.5` is rejected, not rounded."""
    separator = "." if delimiter == ";" else ","
    grouped = f"-?[0-9]{{1,3}}([{separator}][0-9]{{3}})+"
    return (
        f"case when regexp_full_match({text}, '-?[0-9]+') then try_cast({text} as bigint) "
        f"when regexp_full_match({text}, '{grouped}') then try_cast(replace({text}, '{separator}', '') as bigint) end"
    )


def _decimal(text: str, delimiter: str) -> str:
    """Text -> decimal(20, 2) in the file's dialect (`3.500.000,50` in `;` files, `3500000.50` or
    `3,500,000.50` in `,` files); null when it is not a number."""
    thousands, decimal = (".", ",") if delimiter == ";" else (",", ".")
    plain = f"-?[0-9]+([{decimal}][0-9]+)?"
    grouped = f"-?[0-9]{{1,3}}([{thousands}][0-9]{{3}})+([{decimal}][0-9]+)?"
    number = f"replace(replace({text}, '{thousands}', ''), '{decimal}', '.')"
    # Through decimal(18, 2) first: DuckDB 1.5 casts text to a decimal wider than 18 digits
    # (hugeint-backed) ~200x slower (~50 us a value: 12 s per million wages, bench/ issue 9);
    # only a value of 10^16 or more takes the slow path.
    typed = f"coalesce(try_cast({number} as decimal(18, 2))::decimal(20, 2), try_cast({number} as decimal(20, 2)))"
    return f"case when regexp_full_match({text}, '{plain}') or regexp_full_match({text}, '{grouped}') then {typed} end"


MONTH_FORMATS = (  # (pattern, replacement giving YYYY-MM)
    (r"(\d{4})[-/.]?(\d{2})", r"\1-\2"),
    (r"(\d{4})[-/.](\d{2})[-/.]\d{2}", r"\1-\2"),
    (r"(\d{2})[-/.](\d{4})", r"\2-\1"),
    (r"\d{2}[-/.](\d{2})[-/.](\d{4})", r"\2-\1"),
)
SEMESTER_FORMATS = (  # (pattern, replacement giving YYYY-S1/S2)
    (r"(\d{4})[-_ ]?[sS]([12])", r"\1-S\2"),
    (r"(\d{4})[-/.]06[-/.]30", r"\1-S1"),
    (r"(\d{4})[-/.]12[-/.]31", r"\1-S2"),
    (r"30[-/.]06[-/.](\d{4})", r"\1-S1"),
    (r"31[-/.]12[-/.](\d{4})", r"\1-S2"),
)


def period_sql(text: str, semester: bool) -> str:
    """SQL: the period a period column's text names (YYYY-MM or YYYY-S1/S2), null when it names none.
    A date must be a real date (`2022-02-30` is not): formats with a day are checked by strptime."""
    formats = SEMESTER_FORMATS if semester else MONTH_FORMATS
    cases = []
    for pattern, replacement in formats:
        matched = f"regexp_full_match({text}, '{pattern}')"
        if pattern in DAY_FORMATS:
            dashed = f"regexp_replace({text}, '[/.]', '-', 'g')"
            matched += f" and try_strptime({dashed}, '{DAY_FORMATS[pattern]}') is not null"
        cases.append(f"when {matched} then regexp_replace({text}, '^{pattern}$', '{replacement}')")
    return f"case {' '.join(cases)} end"


def digits_match(expression: str, digits: int, native: bool = False) -> str:
    """SQL: `expression` is exactly `digits` ASCII digits (the extension's `jkn_digits` where `native`)."""
    return f"jkn_digits({expression}, {digits})" if native else f"regexp_full_match({expression}, '[0-9]{{{digits}}}')"


def checks(kind: ExtractKind, native: bool = False) -> list[tuple[str, str, str, str]]:
    """(column, value column, condition that makes a row bad, reason as SQL) for every check of the kind;
    `native`: the conditions with the extension's functions (the reasons never: they read bad rows only)."""
    checks = []
    for column in kind.columns:
        name, value = column.name, value_column(column)
        if column.type in ("nik", "period"):
            if column.type == "nik":
                checks.append((name, "nik_value", "nik_problem is not null", "nik_problem"))
            continue
        if not column.nullable:
            checks.append((name, value, f"{value} is null", f"'{name} is missing'"))
        if column.type == "region":
            checks.append(
                (
                    name,
                    value,
                    f"{value} is not null and not {digits_match(name, 4, native)}",
                    "'region code must be 4 digits (3326 or 33.26)'",
                )
            )
            checks.append(
                (
                    name,
                    value,
                    f"{digits_match(name, 4, native)} and {name} not in (select region_code from {REGIONS_TABLE})",
                    "'unknown region code (not in seeds/regions.csv)'",
                )
            )
        elif column.type in ("segment", "status"):
            expected = ", ".join(SEGMENTS) if column.type == "segment" else "ACTIVE/AKTIF or INACTIVE/NONAKTIF"
            checks.append(
                (
                    name,
                    value,
                    f"{value} is not null and {name} is null",
                    f"'unknown {column.type}; expected {expected}'",
                )
            )
        elif column.type == "count":
            checks.append((name, value, f"{value} is not null and {name} is null", "'not a whole number'"))
            checks.append((name, value, f"{name} < 0", "'negative count'"))
        elif column.type == "money":
            checks.append((name, value, f"{value} is not null and {name} is null", "'not a number'"))
            checks.append((name, value, f"{name} < 0", "'negative amount'"))
        elif column.type == "digits":
            checks.append(
                (
                    name,
                    value,
                    f"{value} is not null and not {digits_match(name, column.digits, native)}",
                    f"case when regexp_full_match({name}, '[0-9]+([.,][0-9]+)?[eE][+]?[0-9]+') then "
                    f"'{name} was turned into a number by a spreadsheet and lost digits; export the column as text' "
                    f"else '{name} must be {column.digits} digits (text, leading zeros kept)' end",
                )
            )
    for name, condition, reason in kind.row_checks:
        checks.append((name, value_column(kind.column(name)), condition, f"'{reason}'"))
    return checks


def rejects_select(kind: ExtractKind, landing: str) -> str:
    parts = []
    for name, value, condition, reason in checks(kind):
        shown = value if name == "nik" else mask_identifier(value)
        parts.append(
            f"select line, '{name}' as column_name, {shown} as value, {reason} as reason "
            f"from {landing} where {condition}"
        )
    return " union all ".join(parts)
