"""What the checks found, in jkn's terms: one `CheckResult` per GX expectation result, with what GX
observed in words and a few example values (never of a personal column), and `ops.dq_results`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from flows.database import utc_now

# Custom SQL results quoted in a failure message; the rest stay in Data Docs and ops.dq_results.
EXAMPLES = 5


@dataclass
class CheckResult:
    suite: str
    expectation: str
    severity: str
    success: bool
    observed: str
    details: str = ""


@dataclass
class CheckReport:
    run_id: str
    results: list[CheckResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    data_docs: Path | None = None
    nothing_staged: bool = False  # staging suites with no staged file: nothing was checked, nothing passed
    staged: list[tuple] = field(default_factory=list)  # the staged files (name, period) when the suites ran

    @property
    def critical_failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "critical"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity != "critical"]

    @property
    def passed(self) -> bool:
        return not self.critical_failures


def label(config) -> str:
    description = (config.meta or {}).get("description")
    if description:
        return description
    kwargs = config.kwargs
    columns = kwargs.get("column") or ", ".join(kwargs.get("column_list", []))
    return f"{config.type}({columns})" if columns else config.type


def columns(config) -> set[str]:
    kwargs = config.kwargs
    return {kwargs["column"]} if "column" in kwargs else set(kwargs.get("column_list") or [])


def _example(row: dict, personal: set[str]) -> str:
    return " ".join(f"{key}={value}" for key, value in row.items() if key not in personal)


def observed(result, personal: set[str], rows: list[dict] | None = None) -> tuple[str, list]:
    """What GX observed, in words, and example values; "" when GX returned nothing
    (the symptom of the duckdb-engine bug). Values of personal columns are never quoted."""
    config = result.expectation_config
    data = result.result or {}
    for info in [result.exception_info or {}, *(result.exception_info or {}).values()]:
        if isinstance(info, dict) and info.get("raised_exception"):
            message = str(info.get("exception_message", "")).strip().splitlines()
            return "error: " + (message[0] if message else "unknown")[:300], []
    if config.type == "unexpected_rows_expectation" and "observed_value" in data:
        count = data["observed_value"]
        examples = [_example(row, personal) for row in (rows or [])[:EXAMPLES]]
        text = f"{count} row" + ("" if count == 1 else "s")
        examples = [example for example in examples if example]
        return (text + (": " + "; ".join(examples) if examples else ""))[:500], examples
    if "observed_value" in data:
        return json.dumps(data["observed_value"], default=str)[:500], []
    if "unexpected_count" in data:
        text = f"{data['unexpected_count']} of {data.get('element_count')} rows"
        examples = []
        if not (columns(config) & personal):
            examples = [str(value) for value in (data.get("partial_unexpected_list") or [])[:EXAMPLES]]
        return (text + (", e.g. " + ", ".join(examples) if examples else ""))[:500], examples
    if data:
        return json.dumps(data, default=str)[:500], []
    return "", []


def from_validation(suite: str, personal: set[str], results, examples: dict[int, list[dict]]) -> list[CheckResult]:
    """One CheckResult per expectation result of a suite's validation, in the suite's order."""
    out = []
    for position, result in enumerate(results):
        config = result.expectation_config
        text, sample = observed(result, personal, examples.get(position))
        details = {"type": config.type, "columns": sorted(columns(config))}
        if sample:
            details["examples"] = sample
        out.append(
            CheckResult(
                suite=suite,
                expectation=label(config),
                severity=getattr(config.severity, "value", str(config.severity or "critical")),
                success=bool(result.success),
                observed=text,
                details=json.dumps(details, default=str),
            )
        )
    return out


def record(con, report: CheckReport) -> None:
    """Store the results in ops.dq_results (one statement: DuckDB's executemany runs one insert a row)."""
    now = utc_now()
    rows = [
        (report.run_id, r.suite, r.expectation, r.severity, r.success, r.observed, r.details, now)
        for r in report.results
    ]
    if rows:
        placeholders = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(rows))
        con.execute(f"insert into ops.dq_results values {placeholders}", [value for row in rows for value in row])


def describe_failure(result: CheckResult) -> str:
    return f"{result.suite}: {result.expectation}: observed {result.observed}"
