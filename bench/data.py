"""The data a benchmark run measures: the landing folder (given, cached from an earlier run with the same
parameters and generator, or generated now), the files in it the floor and the baseline read, and the
participants suite the baseline validates."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from bench.measure import PROJECT_ROOT, BenchError, Runner

SUITE_PATH = PROJECT_ROOT / "expectations" / "staging.participants.json"
# The generator's modules (`jkn generate`): a change to any of them makes the cached data stale.
GENERATOR_MODULES = ("generate.py", "generate_regions.py", "generate_people.py", "generate_companies.py")

# Used only while expectations/staging.participants.json does not exist yet: the same
# expectation types as the project's staging suites, on the participants columns.
STAND_IN_SUITE = {
    "name": "staging.participants",
    "expectations": [
        {
            "type": "expect_table_columns_to_match_set",
            "kwargs": {
                "column_set": [
                    "month",
                    "card_no",
                    "person_key",
                    "sex",
                    "birth_year",
                    "region_code",
                    "segment",
                    "status",
                    "employer_id",
                    "wage",
                    "file_name",
                ],
                "exact_match": True,
            },
            "severity": "critical",
        },
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "month"}, "severity": "critical"},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "card_no"}, "severity": "critical"},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "region_code"}, "severity": "critical"},
        {
            "type": "expect_column_values_to_match_regex",
            "kwargs": {"column": "card_no", "regex": r"^\d{13}$"},
            "severity": "critical",
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "segment", "value_set": ["PBI_APBN", "PBI_APBD", "PPU_PN", "PPU_BU", "PBPU", "BP"]},
            "severity": "critical",
        },
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "status", "value_set": ["ACTIVE", "INACTIVE"]},
            "severity": "critical",
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "wage", "min_value": 0},
            "severity": "critical",
        },
        {
            "type": "expect_compound_columns_to_be_unique",
            "kwargs": {"column_list": ["month", "card_no"]},
            "severity": "critical",
        },
        {
            "type": "unexpected_rows_expectation",
            "kwargs": {
                "unexpected_rows_query": "select * from {batch} where region_code not in "
                "(select region_code from ref.regions)"
            },
            "severity": "critical",
        },
    ],
}


def landing_folder(args, work: Path, runner: Runner) -> tuple[dict, Path]:
    """The landing folder to measure: given, cached from an earlier run with the same
    parameters and generator, or generated now (timed, not part of any comparison)."""
    if args.data is not None:
        return {"source": "given", "folder": str(args.data.resolve())}, args.data.resolve()
    generator = [PROJECT_ROOT / "flows" / name for name in GENERATOR_MODULES]
    if not all(path.exists() for path in generator):
        missing = ", ".join(str(path.relative_to(PROJECT_ROOT)) for path in generator if not path.exists())
        raise BenchError(f"{missing} (jkn generate) does not exist; pass --data with a landing folder")
    parameters = {
        "participants": args.rows,
        "employers": args.employers,
        "workforce": args.workforce,
        "regions": args.regions,
        "seed": args.seed,
        **({"month": args.month} if args.month else {}),
    }
    key = "-".join(f"{name}{value}" for name, value in parameters.items())
    landing = work / "landing" / key
    manifest_path = landing / ".bench-manifest.json"  # a dot file: ingest's discovery skips it
    manifest = {"parameters": parameters, "generator_sha256": _sha256(generator)}
    if not args.regenerate and manifest_path.exists():
        if json.loads(manifest_path.read_text(encoding="utf-8")) == manifest:
            return {"source": "cached", "folder": str(landing), "parameters": parameters}, landing
    shutil.rmtree(landing, ignore_errors=True)
    landing.mkdir(parents=True)
    measured = runner.fresh(
        "generate", "generate", {"out_dir": str(landing), "arguments": parameters}, {}, landing.parent
    )
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    return {"source": "generated", "folder": str(landing), "parameters": parameters, **measured.as_dict()}, landing


def extract_files(landing: Path) -> dict:
    """The participants file (the newest month), and the population file the baseline joins to."""
    participants = sorted(landing.glob("participants_*.csv*"))
    population = sorted(landing.glob("population_*.csv*"))
    if not participants or not population:
        raise BenchError(f"{landing}: needs a participants_YYYY-MM.csv and a population_YYYY-Sn.csv file")
    month = re.match(r"participants_(\d{4}-\d{2})", participants[-1].name).group(1)
    return {
        "participants": participants[-1],
        "population": population[-1],
        "month": month,
        "all": {path.name: path.stat().st_size for path in sorted(landing.iterdir()) if not path.name.startswith(".")},
    }


def participants_suite() -> tuple[dict, str]:
    if SUITE_PATH.exists():
        return json.loads(SUITE_PATH.read_text(encoding="utf-8")), str(SUITE_PATH.relative_to(PROJECT_ROOT))
    return STAND_IN_SUITE, "stand-in (expectations/staging.participants.json does not exist yet)"


def _sha256(paths: list[Path]) -> str:
    """One digest of the generator's modules, each named, in order."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes())
    return digest.hexdigest()
