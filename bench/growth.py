"""How cost grows with rows: `python -m bench.growth [--markdown] RESULTS.json...` (runs of different sizes).

For each measured step: wall time and peak RSS at each size, and between consecutive
sizes the growth exponent log(cost ratio) / log(rows ratio): 1.0 is linear, 0 is flat.
Memory growth from the second-largest to the largest run is checked against the target
"much less than linear" (taken as an exponent below 0.5)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

SUBLINEAR_MEMORY_EXPONENT = 0.5


def steps(results: dict) -> dict[str, tuple[float, float]]:
    """step -> (wall seconds, peak RSS MB)."""
    pipeline = results["pipeline"]
    out = {"floor": (results["floor"]["seconds"], results["floor"]["peak_rss_mb"])}
    for name, stage in pipeline["stages"].items():
        out[f"ours: {name}"] = (stage["seconds"], stage["peak_rss_mb"])
    out["ours: whole flow"] = (pipeline["flow_seconds"], pipeline["peak_rss_mb"])
    out["Prefect overhead"] = (pipeline["prefect_overhead_seconds"], float("nan"))
    out["baseline: pandas + GX"] = (results["baseline"]["seconds"], results["baseline"]["peak_rss_mb"])
    if "peer" in results:  # runs before the polars peer existed have none
        out["peer: polars"] = (results["peer"]["seconds"], results["peer"]["peak_rss_mb"])
    return out


def exponent(small: float, large: float, rows_ratio: float) -> float:
    if small <= 0 or large <= 0 or math.isnan(small) or math.isnan(large):
        return float("nan")
    return math.log(large / small) / math.log(rows_ratio)


def growth(runs: list[dict]) -> dict:
    runs = sorted(runs, key=lambda results: results["parameters"]["rows"])
    sizes = [results["parameters"]["rows"] for results in runs]
    table = {name: [steps(results)[name] for results in runs] for name in steps(runs[0])}
    exponents = {}
    for name, values in table.items():
        exponents[name] = [
            (
                exponent(values[i][0], values[i + 1][0], sizes[i + 1] / sizes[i]),
                exponent(values[i][1], values[i + 1][1], sizes[i + 1] / sizes[i]),
            )
            for i in range(len(sizes) - 1)
        ]
    memory = None
    if len(runs) > 1:
        small, large = runs[-2]["pipeline"]["peak_rss_mb"], runs[-1]["pipeline"]["peak_rss_mb"]
        memory_exponent = exponent(small, large, sizes[-1] / sizes[-2])
        memory = {
            "from_rows": sizes[-2],
            "to_rows": sizes[-1],
            "from_mb": small,
            "to_mb": large,
            "exponent": round(memory_exponent, 3),
            "met": memory_exponent < SUBLINEAR_MEMORY_EXPONENT,
        }
    return {"rows": sizes, "steps": table, "exponents": exponents, "pipeline_memory_growth": memory}


def markdown(result: dict) -> str:
    """The same table in Markdown, for BENCHMARKS.md."""
    sizes = result["rows"]
    header = [
        "step",
        *(f"{rows / 1e6:g} M rows" for rows in sizes),
        *(f"growth {sizes[i] / 1e6:g} M -> {sizes[i + 1] / 1e6:g} M" for i in range(len(sizes) - 1)),
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, values in result["steps"].items():
        cells = [f"{seconds:,.1f} s, " + ("-" if math.isnan(mb) else f"{mb:,.0f} MB") for seconds, mb in values]
        cells += [
            f"time {time_exp:.2f}, memory " + ("-" if math.isnan(mem_exp) else f"{mem_exp:.2f}")
            for time_exp, mem_exp in result["exponents"][name]
        ]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    arguments = list(argv if argv is not None else sys.argv[1:])
    as_markdown = "--markdown" in arguments
    paths = [Path(arg) for arg in arguments if arg != "--markdown"]
    if not paths:
        print("usage: python -m bench.growth [--markdown] RESULTS.json [RESULTS.json ...]")
        return 2
    result = growth([json.loads(path.read_text(encoding="utf-8")) for path in paths])
    if as_markdown:
        print(markdown(result))
        return 0
    console = Console(width=150)
    table = Table(title="cost by rows (wall s / peak RSS MB; growth exponent between sizes: 1 = linear)")
    table.add_column("step")
    for rows in result["rows"]:
        table.add_column(f"{rows:,} rows", justify="right")
    for i in range(len(result["rows"]) - 1):
        table.add_column(f"exp. {i + 1}->{i + 2}", justify="right")
    for name, values in result["steps"].items():
        cells = [f"{seconds:,.1f} s / " + ("-" if math.isnan(mb) else f"{mb:,.0f} MB") for seconds, mb in values]
        cells += [f"{time_exp:.2f} / {mem_exp:.2f}" for time_exp, mem_exp in result["exponents"][name]]
        table.add_row(name, *cells)
    console.print(table)
    memory = result["pipeline_memory_growth"]
    if memory:
        verdict = "met" if memory["met"] else "not met"
        console.print(
            f"pipeline peak memory {memory['from_rows']:,} -> {memory['to_rows']:,} rows: {memory['from_mb']:,.0f} -> "
            f"{memory['to_mb']:,.0f} MB, exponent {memory['exponent']} (much less than linear = below "
            f"{SUBLINEAR_MEMORY_EXPONENT}): {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
