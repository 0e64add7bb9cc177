"""The benchmark's results as a table on the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def print_table(results: dict, console: Console | None = None) -> None:
    console = console or Console(width=150)
    parameters, machine = results["parameters"], results["machine"]
    floor, pipeline, baseline = results["floor"], results["pipeline"], results["baseline"]
    floor_seconds = floor["seconds"]
    console.print(
        f"jkn benchmark: {parameters['rows']:,} participant rows, {parameters['regions']} regions, "
        f"{parameters['employers']:,} employers, {parameters['workforce']:,} workforce companies, "
        f"month {parameters['month']}"
    )
    console.print(
        f"machine: {machine['cores']} cores ({machine['cpu_model']}), {machine['memory_total_gb']} GB RAM; "
        f"JKN_MEMORY_LIMIT={parameters['memory_limit']}, threads {parameters['threads']}; "
        f"load average before {machine['load_average_before'][0]}, after {machine['load_average_after'][0]}; "
        f"other work used {results['contention_share']:.0%} of the CPU meanwhile"
    )
    table = Table(show_lines=False)
    for column, justify in (
        ("step", "left"),
        ("wall s", "right"),
        ("in flow s", "right"),
        ("CPU s", "right"),
        ("peak RSS MB", "right"),
        ("spill MB", "right"),
        ("vs floor", "right"),
        ("other CPU s", "right"),
    ):
        table.add_column(column, justify=justify)

    def row(label, seconds, cpu=None, rss=None, spill=None, other=None, in_flow=None, style=None):
        table.add_row(
            label,
            f"{seconds:,.2f}",
            "-" if in_flow is None else f"{in_flow:,.2f}",
            "-" if cpu is None else f"{cpu:,.1f}",
            _mb(rss),
            "-" if not spill else _mb(spill),
            _ratio(seconds / floor_seconds),
            "-" if other is None else f"{other:,.1f}",
            style=style,
        )

    floor_runs = len(floor.get("runs_seconds", [floor_seconds]))
    row(
        f"floor: DuckDB loads the participants file (best of {floor_runs})",
        floor_seconds,
        floor["cpu_seconds"],
        floor["peak_rss_mb"],
        floor["peak_spill_mb"],
        floor["other_cpu_seconds"],
    )
    for name, stage in pipeline["stages"].items():
        tasks = ", ".join(stage["tasks"])
        other = sum(task["other_cpu_seconds"] for task in stage["tasks"].values())
        row(
            f"ours: {name} ({tasks})",
            stage["seconds"],
            stage["cpu_seconds"],
            stage["peak_rss_mb"],
            stage["peak_spill_mb"],
            other,
            stage["in_flow_seconds"],
        )
    row(
        "ours: sum of stages",
        pipeline["stages_seconds"],
        rss=pipeline["stages_peak_rss_mb"],
        in_flow=pipeline["in_flow_stages_seconds"],
        style="bold",
    )
    flow = pipeline["flow"]
    row(
        "ours: whole Prefect flow (jkn run)",
        pipeline["flow_seconds"],
        rss=flow["peak_rss_mb"],
        spill=flow["peak_spill_mb"],
        other=flow["other_cpu_seconds"],
        style="bold",
    )
    row("  Prefect overhead (flow - its stages, overlaps once)", pipeline["prefect_overhead_seconds"])
    row(f"  Prefect empty flow, {flow['noop_tasks']} no-op tasks", pipeline["prefect_noop_flow_seconds"])
    row("  Prefect start, once per process", pipeline["prefect_start_seconds"])
    for name, seconds in baseline["steps"].items():
        row(f"baseline: pandas + GX, {name}", seconds)
    row(
        "baseline: pandas + GX, total",
        baseline["seconds"],
        baseline["cpu_seconds"],
        baseline["peak_rss_mb"],
        other=baseline["other_cpu_seconds"],
        style="bold",
    )
    peer = results.get("peer")
    if peer:
        row(
            f"peer: {peer['engine']}",
            peer["seconds"],
            peer["cpu_seconds"],
            peer["peak_rss_mb"],
            other=peer["other_cpu_seconds"],
            style="bold",
        )
    console.print(table)
    console.print(
        "wall s: each stage in a fresh process; in flow s: the same stage inside the Prefect flow run; "
        f"other CPU s: what the rest of the machine used meanwhile; Prefect: {flow['prefect_api_url']}"
    )

    ratios = results["ratios"]
    console.print(
        f"ours / floor = {_ratio(ratios['ours_over_floor'])} (ingest alone {_ratio(ratios['ingest_over_floor'])}); "
        f"baseline / ours = {_ratio(ratios['baseline_over_ours'])}; "
        + (f"peer / ours = {_ratio(ratios['peer_over_ours'])}; " if "peer_over_ours" in ratios else "")
        + f"pipeline peak RSS {pipeline['peak_rss_mb']:,.0f} MB (baseline {baseline['peak_rss_mb']:,.0f} MB)"
    )
    skipped = baseline.get("expectations_skipped", [])
    console.print(
        f"GX suite: {baseline['suite']}; baseline ran {len(baseline.get('expectations_run', []))} expectation(s) "
        f"on pandas (the suite's that apply to the file's columns, and pandas equivalents of its SQL-only row "
        f"rules), skipped {len(skipped)}"
    )
    for stage in pipeline["stages"].values():
        for task_name, task in stage["tasks"].items():
            if "profile" in task:
                slowest = task["profile"]["slowest"][:3]
                console.print(
                    f"slowest statements of {task_name} ({task['profile']['statements']} statements, "
                    f"{task['profile']['statements_seconds']:,.1f} s):"
                )
                for statement in slowest:
                    console.print(f"  {statement['seconds']:8.2f} s  [{statement['via']}] {statement['sql'][:110]}")
    for name, target in results["targets"].items():
        verdict = "[green]met[/green]" if target["met"] else "[red]not met[/red]"
        console.print(f"target {name}: {target['what']} = {target['value']:,} (target {target['target']}): {verdict}")
