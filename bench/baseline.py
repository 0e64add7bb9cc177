"""The baseline (bench/workloads.py): what a team would otherwise write, pandas reading the extract and
computing coverage by region, and Great Expectations validating the participants suite on the pandas
DataFrame, with the row rules our ingest enforces written as pandas-side expectations. Only the standard
library is imported at the top.
"""

from __future__ import annotations

import time

BASELINE_DTYPES = {"card_no": str, "nik": str, "region_code": str, "segment": str, "status": str, "employer_id": str}

# GX expectations that only exist for SQL data sources; the pandas baseline cannot run them.
SQL_ONLY_EXPECTATIONS = {"unexpected_rows_expectation"}


def pandas_equivalents(region_codes: list[str]) -> list[dict]:
    """What a pandas team would write for the row rules (ours enforces them at ingest, and the
    staging suite keeps only batch-level rules over a profile) and the uniqueness checks, on the
    file's columns, so the baseline checks as much as our pipeline does where it can."""
    filled = [
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": column},
            "meta": {"description": f"{column} is always filled in"},
        }
        for column in ("month", "card_no", "region_code", "segment", "status")
    ]
    return [
        *filled,
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "segment", "value_set": ["PBI_APBN", "PBI_APBD", "PPU_PN", "PPU_BU", "PBPU", "BP"]},
            "meta": {"description": "segment is one of the six JKN segments"},
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "status", "value_set": ["ACTIVE", "INACTIVE"]},
            "meta": {"description": "status is ACTIVE or INACTIVE"},
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "wage", "min_value": 0.0},
            "meta": {"description": "wages are never negative"},
        },
        {
            "type": "expect_column_values_to_match_regex",
            "kwargs": {"column": "card_no", "regex": r"^[0-9]{13}$"},
            "meta": {"description": "card numbers are 13 digits"},
        },
        {
            "type": "expect_column_values_to_match_regex",
            "kwargs": {"column": "nik", "regex": r"^[0-9]{16}$"},
            "meta": {"description": "NIKs are 16 digits (ours checks this at ingest and person_key in the suite)"},
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "region_code", "value_set": region_codes},
            "meta": {"description": "region_code is a kab/kota code listed in seeds/regions.csv"},
        },
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "employer_id", "row_condition": 'segment=="PPU_BU"', "condition_parser": "pandas"},
            "meta": {"description": "wage earners in private companies (PPU_BU) carry their employer_id"},
        },
        {
            "type": "expect_compound_columns_to_be_unique",
            "kwargs": {"column_list": ["month", "card_no"]},
            "meta": {"description": "a card number appears once per month"},
        },
        {
            "type": "expect_compound_columns_to_be_unique",
            "kwargs": {"column_list": ["month", "nik"]},
            "meta": {"description": "a person holds one card per month (ours checks person_key)"},
        },
    ]


def baseline(participants_csv: str, population_csv: str, regions_csv: str, suite: dict, month: str) -> dict:
    """What a team would otherwise write: pandas reads the extract, computes coverage by
    region, and GX validates the participants suite on the pandas DataFrame."""
    import great_expectations as gx
    import pandas as pd

    steps = {}
    started = time.perf_counter()
    participants = pd.read_csv(participants_csv, dtype=BASELINE_DTYPES)
    participants["month"] = pd.Timestamp(f"{month}-01")
    steps["read"] = time.perf_counter() - started

    started = time.perf_counter()
    population = pd.read_csv(population_csv, dtype={"region_code": str})
    regions = pd.read_csv(regions_csv, dtype=str)
    counts = (
        participants.assign(is_active=participants["status"].eq("ACTIVE"))
        .groupby("region_code", as_index=False)
        .agg(participants=("is_active", "size"), active_participants=("is_active", "sum"))
    )
    coverage = (
        regions[["region_code", "region_name"]]
        .merge(population, on="region_code")
        .merge(counts, on="region_code", how="left")
    )
    coverage = coverage.fillna({"participants": 0, "active_participants": 0})
    coverage["coverage_pct"] = coverage["participants"] / coverage["population"] * 100
    coverage["active_rate_pct"] = coverage["active_participants"] / coverage["participants"] * 100
    steps["coverage"] = time.perf_counter() - started

    started = time.perf_counter()
    runnable, skipped = pandas_expectations(suite, set(participants.columns))
    runnable += pandas_equivalents(sorted(regions["region_code"]))
    logging_quiet()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    asset = context.data_sources.add_pandas(name="baseline").add_dataframe_asset(name="participants")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": participants})
    suite_object = context.suites.add(gx.ExpectationSuite(name=suite["name"], expectations=runnable))
    validation = batch.validate(suite_object, result_format="SUMMARY")
    steps["validate"] = time.perf_counter() - started

    failed = [result.expectation_config.type for result in validation.results if not result.success]
    return {
        "steps": steps,
        "rows": len(participants),
        "regions": len(coverage),
        "national_coverage_pct": float(coverage["participants"].sum() / coverage["population"].sum() * 100),
        "expectations_run": [_label(item) for item in runnable],
        "expectations_skipped": skipped,
        "expectations_failed": failed,
    }


def pandas_expectations(suite: dict, columns: set[str]) -> tuple[list[dict], list[dict]]:
    """The suite's expectations the pandas DataFrame can run, and those it cannot, with why.

    The suite checks the staging view (pseudonymised, with `person_key`, `file_name`, ...);
    the DataFrame holds the file's own columns, so expectations on columns it does not have,
    the exact column-set check, and SQL-only expectations are left out and listed."""
    runnable, skipped = [], []
    for expectation in suite["expectations"]:
        expectation = {key: value for key, value in expectation.items() if key != "id"}
        kwargs = expectation.get("kwargs", {})
        needed = [kwargs["column"]] if "column" in kwargs else list(kwargs.get("column_list", []))
        needed += [kwargs[key] for key in ("column_A", "column_B") if key in kwargs]
        if expectation["type"] in SQL_ONLY_EXPECTATIONS:
            skipped.append({"expectation": _label(expectation), "why": "SQL data sources only"})
        elif expectation["type"] in ("expect_table_columns_to_match_set", "expect_table_columns_to_match_ordered_list"):
            skipped.append({"expectation": _label(expectation), "why": "checks the staging view's columns"})
        elif missing := [name for name in needed if name not in columns]:
            skipped.append({"expectation": _label(expectation), "why": f"no column {', '.join(missing)} in the file"})
        else:
            runnable.append(expectation)
    return runnable, skipped


def _label(expectation: dict) -> str:
    kwargs = expectation.get("kwargs", {})
    target = kwargs.get("column") or ", ".join(kwargs.get("column_list", []))
    if target:
        return f"{expectation['type']}({target})"
    description = expectation.get("description") or (expectation.get("meta") or {}).get("description")
    return f"{expectation['type']}: {description}" if description else expectation["type"]


def logging_quiet() -> None:
    import logging

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
