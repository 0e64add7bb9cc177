"""The `jkn` command line. Exit codes: 0 done, 1 pipeline error, 2 usage or
configuration error, 3 a critical data-quality check failed, 4 database busy,
5 published but landing files were refused whole."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flows.errors import DataQualityError, FilesRefused, JknError
from flows.settings import load_settings

app = typer.Typer(
    help="Early warning for JKN coverage and employer compliance: ingest extracts, check them, "
    "publish metrics, alert managers. Settings come from JKN_* variables or jkn.toml.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    # A traceback with locals could show a secret setting; errors are reported by main() instead.
    pretty_exceptions_enable=False,
)
# Summary tables need ~110 columns; a pipe or CI log would otherwise get 80.
console = Console(width=None if Console().is_terminal else 120)
errors = Console(stderr=True)

DEMO_PSEUDONYM_KEY = "jkn-demo-key-not-for-production-use"


def _print_version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    # What on-call needs to match a report with DEPENDENCIES' known bugs: ours and the three engines.
    console.print(
        f"jkn {installed('jkn')} (prefect {installed('prefect')}, great-expectations "
        f"{installed('great-expectations')}, duckdb {installed('duckdb')})",
        highlight=False,
    )
    raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the versions of jkn, Prefect, GX, DuckDB.",
        ),
    ] = False,
) -> None:
    """Early warning for JKN coverage and employer compliance."""


# Prefect's temporary server (no PREFECT_API_URL) gives up after 20 s by default; its first start
# (database migrations) takes longer than that on a busy 2-core machine.
EPHEMERAL_TIMEOUT_SETTING = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
EPHEMERAL_TIMEOUT_SECONDS = "180"


def _quiet_prefect() -> None:
    """Prefect's own chatter hides our summary; keep its warnings and errors."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault(EPHEMERAL_TIMEOUT_SETTING, EPHEMERAL_TIMEOUT_SECONDS)


def _prefect_did_not_start(error: Exception) -> bool:
    return isinstance(error, RuntimeError) and "ephemeral Prefect API server" in str(error)


@app.command()
def demo(
    fresh: Annotated[bool, typer.Option(help="Delete an earlier demo database first.")] = False,
) -> None:
    """Write a realistic demo landing folder under $JKN_HOME and run the whole pipeline on it."""
    from flows import database
    from flows import demo as demo_data

    settings = load_settings()
    if settings.landing is not None:
        errors.print(f"note: the demo writes its own landing folder; JKN_LANDING={settings.landing} is ignored")
    landing = settings.home / "landing"
    demo_environment = {"JKN_LANDING": str(landing)}
    if not settings.pseudonym_key:
        demo_environment["JKN_PSEUDONYM_KEY"] = DEMO_PSEUDONYM_KEY
        console.print("Using the built-in demo pseudonymisation key (set JKN_PSEUDONYM_KEY for real data).")
    # The flow reads its settings from the environment; the demo's own only hold for this command.
    with _environment(demo_environment), database.writer_lock(load_settings(), "jkn demo"):
        if fresh and settings.db_path.exists():
            settings.db_path.unlink()
        files = demo_data.write_landing(landing)
        console.print(f"Demo landing folder: {landing} ({len(files)} files)")
        result = _run_pipeline()
        _print_summary(result)
    _exit_if_refused(result)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run_pipeline(**parameters) -> dict:
    _quiet_prefect()
    from flows.pipeline import pipeline

    _no_tracebacks_on_console()
    _show_progress()
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        console.print(
            f"{time.strftime('%H:%M:%S')}  starting Prefect's temporary server (PREFECT_API_URL is not "
            "set; the first start takes up to a minute on a busy machine) ...",
            highlight=False,
        )
    started = time.monotonic()
    try:
        result = pipeline(**parameters)
    except FilesRefused as refused:  # published all the same: print the summary, then exit 5
        result = refused.result | {"refused": refused}
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def _exit_if_refused(result: dict) -> None:
    if result.get("refused"):
        errors.print(f"error: {result['refused']}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(result["refused"].exit_code)


class _OneLineErrors(logging.Filter):
    """Prefect logs a failed flow or task with its traceback; the API keeps that (the
    Prefect UI shows it), and main() prints one line, so the console drops it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "jkn_printed_by_cli", False):  # the flow's own error lines: main() prints them
            return False
        return not (record.exc_info and record.name.startswith(("prefect.flow_runs", "prefect.task_runs")))


class _ProgressLines(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        console.print(f"{time.strftime('%H:%M:%S')}  {record.getMessage()}", markup=False, highlight=False)


def _show_progress() -> None:
    """One line per stage start and end (flows/progress.py), whatever Prefect's own log level."""
    logger = logging.getLogger("jkn.progress")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not any(isinstance(handler, _ProgressLines) for handler in logger.handlers):
        logger.addHandler(_ProgressLines())


def _no_tracebacks_on_console() -> None:
    for handler in logging.getLogger().handlers:
        if not any(isinstance(existing, _OneLineErrors) for existing in handler.filters):
            handler.addFilter(_OneLineErrors())


def _print_summary(result: dict) -> None:
    settings = load_settings()
    from flows import parts, snapshot

    loaded = [f for f in result["files"] if f["status"] == "staged"]
    skipped = [f for f in result["files"] if f["status"] == "skipped"]
    refused = [f for f in result["files"] if f["status"] == "rejected"]
    if not result.get("backfill"):  # a backfill loads no files
        console.print(f"Files: {len(loaded)} loaded, {len(skipped)} already loaded, {len(refused)} refused")
    for item in refused:
        errors.print(f"  refused: {item['message']}")
    from flows import missing_regions

    with snapshot.connect(settings) as con:
        month, rows = _latest_trajectory(con)
        late = missing_regions.not_reported(con, month if month != "-" else None)
    table = Table(title=f"Coverage against trajectory, {month}")
    for column, justify in (
        ("Region", "left"),
        ("Coverage %", "right"),
        ("Expected %", "right"),
        ("Gap pp", "right"),
        ("Gap (people)", "right"),
        ("Projected", "right"),
        ("Status", "left"),
    ):
        table.add_column(column, justify=justify)
    for name, actual, expected, gap, people, projected, status in rows:
        table.add_row(name, f"{actual:.2f}", f"{expected:.2f}", f"{gap:+.2f}", f"{people:,}", projected or "-", status)
    console.print(table)
    for row in late:
        console.print(f"{row['name']}: {missing_regions.region_note(row)}")
    for warning in result.get("warnings", []):
        console.print(f"warning: {warning['suite']} {warning['expectation']}: {warning['observed']}")
    alerts = result["alerts"]
    _print_refused_recipients(alerts)
    if alerts.get("skipped"):
        console.print(f"Alerts: {alerts['skipped']}")
    else:
        console.print(f"Alerts: {alerts.get('alerts_open', 0)} open, {alerts.get('messages', 0)} message(s) sent")
    console.print(f"Database: {result['database']} (rows in {parts.parts_root(Path(result['database']))})")
    console.print(f"Readers:  {snapshot.snapshot_path(Path(result['database']))} (the published snapshot)")
    console.print(f"Report:   {result['report']}")
    console.print(f"Alerts:   {settings.outbox_dir}")
    console.print(f"Finished in {result['seconds']} s")


def _print_refused_recipients(summary: dict) -> None:
    for row in summary.get("recipients_refused", []):
        errors.print(f"  recipient refused: {row}", markup=False, highlight=False, soft_wrap=True)


def _latest_trajectory(con):
    month = con.execute("select max(month) from mart.trajectory").fetchone()[0]
    rows = con.execute(
        "select name, actual_pct, expected_pct, gap_pp, people_needed, projected_target_month, status "
        "from mart.trajectory where month = ? and level = 'region' order by gap_pp desc",
        [month],
    ).fetchall()
    return (month.strftime("%Y-%m") if month else "-"), rows


@app.command()
def run(
    from_month: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="YYYY-MM",
            help="Backfill from this month: recompute and republish only the months from --from to --to "
            "(either may be left open), from what is already loaded; other months keep their published rows.",
        ),
    ] = None,
    to_month: Annotated[str | None, typer.Option("--to", metavar="YYYY-MM", help="Backfill up to this month.")] = None,
    only_new: Annotated[
        bool,
        typer.Option(
            "--only-new", help="Do nothing unless a new file has landed or a crashed run left work (the landing watch)."
        ),
    ] = False,
) -> None:
    """Run the whole pipeline as one Prefect flow: ingest new files, check, publish, alert, report."""
    from flows import database
    from flows.runs import Window

    settings = load_settings()
    Window.parse(from_month, to_month)  # a bad month is a usage error before Prefect starts
    # The flow takes the lock too (re-entrant); holding it here as well keeps the next run
    # out until the summary below has read the marts it prints.
    with database.writer_lock(settings, "jkn run (command line)"):
        result = _run_pipeline(from_month=from_month, to_month=to_month, skip_if_nothing_new=only_new)
        if result["status"] == "nothing_new":
            console.print(
                f"Nothing new in {settings.landing_dir}: no file loaded, nothing checked, "
                f"published, alerted or reported ({result['seconds']} s)."
            )
            return
        if result["backfill"]:
            console.print(
                f"Backfill {result['backfill']}: marts recomputed and republished for these months "
                "only; other months keep their published rows; no files loaded."
            )
        _print_summary(result)
    _exit_if_refused(result)


@app.command()
def serve(
    limit: Annotated[int, typer.Option(help="Flow runs at once; the database takes one writer, so keep 1.")] = 1,
) -> None:
    """Serve the deployments of prefect.yaml (schedules, parameters, limits) on this machine, without a work pool."""
    load_settings()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.settings import PREFECT_API_URL

    from flows import deployments

    if not PREFECT_API_URL.value():
        errors.print(
            "note: PREFECT_API_URL is not set: Prefect starts a temporary server and the run history "
            "goes with it. Point PREFECT_API_URL at a Prefect server to keep it."
        )
    deployments.serve_all(limit=limit)


@app.command("ingest")
def ingest_command(
    sources: Annotated[
        list[str],
        typer.Argument(
            metavar="[FILE_OR_URL]...",
            help="Extract files or http(s) URLs to load (default: new files in the landing folder). "
            "A URL is downloaded into the landing folder first.",
        ),
    ] = None,
    sha256: Annotated[
        str | None,
        typer.Option(
            "--sha256", help="Expected SHA-256 of the downloaded file (with exactly one URL); a mismatch loads nothing."
        ),
    ] = None,
) -> None:
    """Load extract files into the raw tables (files loaded before are skipped), from disk or over HTTP(S)."""
    from flows import database, download, stages

    settings = load_settings()
    sources = list(sources or [])
    urls = [source for source in sources if download.is_url(source)]
    if sha256 is not None:
        download.check_sha256(sha256)
        if len(urls) != 1:
            raise typer.BadParameter("--sha256 goes with exactly one URL")
    missing = [source for source in sources if source not in urls and not Path(source).is_file()]
    if missing:
        raise typer.BadParameter(f"no such file: {', '.join(missing)}")
    # Downloads (with their retries) happen before the database is locked.
    paths = [
        download.download(source, settings.landing_dir, sha256).path if source in urls else Path(source)
        for source in sources
    ]
    with database.writer_lock(settings, "jkn ingest"):
        # Files named here are tried again even if they were refused before (a seed or setting may have changed).
        results = stages.ingest(settings, paths, retry_rejected=bool(paths))
    table = Table(title="Ingest")
    for column in ("File", "Status", "Rows loaded", "Rows rejected", "Message"):
        table.add_column(column)
    for result in results:
        table.add_row(
            result.file_name, result.status, str(result.rows_loaded), str(result.rows_rejected), result.message
        )
    console.print(table)
    if any(result.status == "rejected" for result in results):
        raise typer.Exit(1)


@app.command("generate")
def generate_command(
    participants: Annotated[int, typer.Option(help="Participants (rows of the participants file).")] = 10_000,
    employers: Annotated[int, typer.Option(help="Employers registered with the insurer.")] = 200,
    workforce: Annotated[int, typer.Option(help="Companies in the manpower office's workforce report.")] = 250,
    regions: Annotated[
        str, typer.Option(help="'all', a number of regions, or region codes separated by commas.")
    ] = "all",
    month: Annotated[str, typer.Option(metavar="YYYY-MM", help="The month the extracts describe.")] = "2024-06",
    out: Annotated[Path | None, typer.Option(help="Folder to write to (default: the landing folder).")] = None,
    seed: Annotated[int, typer.Option(help="The same seed and options give the same bytes.")] = 0,
    format: Annotated[str, typer.Option(help="csv, csv.gz or parquet.")] = "csv",
) -> None:
    """Write synthetic extracts (all five kinds, consistent with each other) for tests and benchmarks."""
    from flows import generate

    settings = load_settings()
    started = time.monotonic()
    files = generate.generate(
        out or settings.landing_dir,
        participants=participants,
        employers=employers,
        workforce=workforce,
        regions=regions,
        month=month,
        seed=seed,
        format=format,
        seeds_dir=settings.seeds,
        threads=settings.threads,
        memory_limit=settings.memory_limit,
    )
    for path in files:
        console.print(f"{path} ({path.stat().st_size:,} bytes)")
    console.print(f"{len(files)} file(s) in {time.monotonic() - started:.1f} s")


@app.command()
def check(
    failed: Annotated[bool, typer.Option("--failed", help="List only the checks that failed.")] = False,
) -> None:
    """Run the staging suites (Great Expectations, inside DuckDB) on the staged files and print
    the results; exit 3 if a critical check fails. Nothing is quarantined or published."""
    from flows import database, stages
    from flows.runs import new_run_id

    settings = load_settings()
    with database.writer_lock(settings, "jkn check"):
        staged, report = stages.try_staging_checks(settings, new_run_id())
    if report.nothing_staged:
        console.print(
            "Nothing staged: no check ran, nothing was recorded. Files are staged by "
            "`jkn ingest`; `jkn run` checks and publishes them."
        )
        return
    table = Table(title=f"Checks on {staged} staged file(s), run {report.run_id[:8]}")
    for column in ("Suite", "Expectation", "Severity", "Result", "Observed"):
        table.add_column(column)
    for result in report.results:
        if failed and result.success:
            continue
        table.add_row(
            result.suite,
            result.expectation,
            result.severity,
            "pass" if result.success else "FAIL",
            result.observed[:120],
        )
    console.print(table)
    console.print(
        f"{len(report.results)} checks: {len(report.critical_failures)} critical failure(s), "
        f"{len(report.warnings)} warning(s)"
    )
    if report.data_docs:
        console.print(f"Data Docs: {report.data_docs}")
    if not report.passed:
        errors.print(
            "critical checks failed: `jkn run` would quarantine the staged files and publish nothing", soft_wrap=True
        )
        raise typer.Exit(3)


@app.command("metrics")
def metrics_command() -> None:
    """Build the marts in SQL, check them, and publish them if no critical check fails."""
    from flows import database, stages
    from flows.runs import new_run_id

    settings = load_settings()
    with database.writer_lock(settings, "jkn metrics"):
        stages.build(settings)
        stages.check_marts(settings, new_run_id())
        stages.publish(settings)
    console.print("Marts published.")


@app.command("alerts")
def alerts_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show who would get what; send nothing, change nothing.")
    ] = False,
) -> None:
    """Evaluate alert rules on the published marts and deliver digests (and any message an earlier run
    could not deliver)."""
    from flows import alerts, database, stages
    from flows.runs import new_run_id

    settings = load_settings()
    if dry_run:
        # Read-only, on the published snapshot: nothing can change, and a run under way is not held up.
        summary = stages.alerts_dry_run(settings, new_run_id())
    else:
        with database.writer_lock(settings, "jkn alerts"):
            summary = stages.alerts(settings, new_run_id())
    table = Table(title=("Would send" if dry_run else "Sent") + f", {summary['month']}")
    for column in ("Recipient", "Scope", "Channel", "Language", "Alerts", "New", "Worsened", "Reminder", "Resolved"):
        table.add_column(column, overflow="fold")
    for item in summary["plan"]:
        states = item["states"]
        table.add_row(
            item["recipient"],
            item["scope"],
            item["channel"],
            item["language"],
            str(item["alerts"]),
            *(str(states.get(state, 0)) for state in alerts.STATE_ORDER),
        )
    console.print(table)
    _print_refused_recipients(summary)
    console.print(
        f"Alerts: {summary['alerts_open']} open, {summary['alerts_to_send']} to send "
        f"in {summary['messages']} message(s)"
    )
    if dry_run:
        console.print(f"Messages from earlier runs still to deliver: {summary['earlier_pending']}")
        for item, payload in zip(summary["plan"], summary["payloads"], strict=True):
            console.print(f"\n--- {item['recipient']} ({item['channel']}) ---", markup=False, highlight=False)
            console.print(payload["text"], markup=False, highlight=False)
        console.print("\nDry run: nothing was sent and nothing in the database changed.")
    else:
        console.print(
            f"Delivered: {summary['delivered']}, still pending (retried by the next run): "
            f"{summary['pending']}, failed for good: {summary['failed']}, "
            f"maybe delivered (not sent again): {summary['unknown']}"
        )
        if summary["notices"].get("notices"):
            console.print(
                f"Told ops about {summary['notices']['notices']} message(s) pending longer than "
                f"JKN_PENDING_ALERT_HOURS={settings.pending_alert_hours:g}"
            )


@app.command("report")
def report_command(
    locale: Annotated[
        str | None,
        typer.Option(
            metavar="id|en",
            help="Language of index.html (default JKN_LOCALE); the other language is written too.",
        ),
    ] = None,
    month: Annotated[
        str | None,
        typer.Option(
            metavar="YYYY-MM",
            help="Report on this month (default: the latest published).",
        ),
    ] = None,
) -> None:
    """Write the managers' HTML report (Indonesian and English) from the published marts."""
    from datetime import datetime

    from flows import stages
    from flows.errors import ConfigError

    settings = load_settings()
    if locale not in (None, "id", "en"):
        raise ConfigError(f"--locale {locale!r}: expected id or en")
    as_of = None
    if month:
        try:
            as_of = datetime.strptime(month, "%Y-%m").date()
        except ValueError:
            raise ConfigError(f"--month {month!r}: expected YYYY-MM") from None
    path = stages.report_published(settings, locale=locale, month=as_of)
    console.print(f"Report: {path}")


@app.command("worklist")
def worklist_command(
    scope: Annotated[
        str,
        typer.Option(
            metavar="CODE",
            help="ID (the nation), a province (33), a branch office (PEKALONGAN) or a region (3326).",
        ),
    ] = "ID",
    file_format: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            metavar="xlsx|csv",
            help="File format(s) (default: both).",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Folder to write to (default $JKN_HOME/report).")] = None,
) -> None:
    """Export the enforcement worklist for the manpower office (.xlsx, CSV; companies only), with its sha256."""
    from flows import database, worklist

    settings = load_settings()
    with database.writer_lock(settings, "jkn worklist"):
        with database.connected(settings) as con:
            try:
                written = worklist.export(
                    con,
                    out or settings.report_dir,
                    scope.upper() if not scope.isdigit() else scope,
                    formats=tuple(file_format or worklist.FORMATS),
                    language=settings.locale,
                )
            except ValueError as error:
                raise typer.BadParameter(str(error)) from None
    if not written:
        console.print("No enforcement worklist published yet.")
    for item in written:
        console.print(f"{item['path']}: {item['rows']} employer(s), sha256 {item['sha256']}")


@app.command()
def status() -> None:
    """Print the latest coverage by region and the open alerts; a region missing this month is listed with
    its last figures and their month, and the scopes that lack it are marked partial."""
    from flows import missing_regions, snapshot

    settings = load_settings()
    with snapshot.connect(settings) as con:
        month, rows = _latest_trajectory(con)
        latest = con.execute("select max(month) from mart.coverage").fetchone()[0]
        coverage = con.execute(
            "select level, code, name, coverage_pct, active_rate_pct, participants, population, is_uhc "
            "from mart.coverage where month = ? "
            "order by case level when 'national' then 0 when 'province' then 1 when 'branch' then 2 else 3 end, code",
            [latest],
        ).fetchall()
        partial = missing_regions.partial_scopes(con, latest)
        not_reported = missing_regions.not_reported(con, latest)
        open_alerts = con.execute(
            "select rule, level, code, severity, first_month, last_month from ops.alerts "
            "where state = 'open' order by severity = 'critical' desc, rule, code"
        ).fetchall()
    table = Table(title=f"Coverage, {month}")
    for column in ("Level", "Name", "Coverage %", "Active %", "Participants", "Population", "UHC", "Note"):
        table.add_column(column)
    for level, code, name, cov, active, people, population, uhc in coverage:
        note = missing_regions.status_note(partial[level, code]) if (level, code) in partial else ""
        table.add_row(
            level,
            name,
            f"{cov:.2f}" if cov is not None else "-",
            f"{active:.2f}" if active is not None else "-",
            f"{people:,}",
            f"{population:,}" if population else "-",
            "yes" if uhc else "no",
            note,
        )
    for row in not_reported:  # last figures, said to be of their own month
        cov, active, population = row["coverage_pct"], row["active_rate_pct"], row["population"]
        table.add_row(
            "region",
            row["name"],
            f"{cov:.2f}" if cov is not None else "-",
            f"{active:.2f}" if active is not None else "-",
            f"{row['participants']:,}",
            f"{population:,}" if population else "-",
            "-",
            missing_regions.region_note(row),
        )
    console.print(table)
    alerts_table = Table(title=f"Open alerts ({len(open_alerts)})")
    for column in ("Rule", "Level", "Code", "Severity", "Since", "Last"):
        alerts_table.add_column(column)
    for rule, level, code, severity, first, last in open_alerts:
        alerts_table.add_row(rule, level, code, severity, str(first)[:7], str(last)[:7])
    console.print(alerts_table)


def main() -> None:
    try:
        # Standalone mode: typer's own click turns usage errors into exit 2 and typer.Exit(n) into n.
        app(prog_name="jkn")
    except JknError as error:
        lines = error.lines() if isinstance(error, DataQualityError) else [str(error)]
        errors.print("error: " + "\n".join(lines), markup=False, highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)
    except Exception as error:  # noqa: BLE001 - anything else is a pipeline error: one line, details in a file
        if _prefect_did_not_start(error):
            errors.print(
                f"error: Prefect's temporary server did not start within "
                f"{os.environ.get(EPHEMERAL_TIMEOUT_SETTING, '20')} s ({EPHEMERAL_TIMEOUT_SETTING}); nothing was run. "
                f"Raise that setting on a busy machine, or start a Prefect server once and set PREFECT_API_URL "
                "(docs/operations.md), which also keeps the run history.",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(1)
        from flows.runs import mask_identifiers
        from flows.scrub import hide_secrets

        log_file = _write_error_log(error)
        first_line = (str(error).strip().splitlines() or [""])[0][:300]
        errors.print(
            f"error: the pipeline failed: {type(error).__name__}: {hide_secrets(mask_identifiers(first_line))}\n"
            f"  full traceback: {log_file}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


def _write_error_log(error: Exception) -> str:
    """The traceback of an unexpected error, in `$JKN_HOME/logs/` (16-digit numbers masked, secrets
    hidden); or, when that cannot be written either (a full disk, a read-only folder), why not: the
    error itself must still reach the console as one line."""
    import traceback
    from datetime import UTC, datetime

    from flows.runs import mask_identifiers
    from flows.scrub import hide_secrets

    try:
        home = load_settings().home
    except JknError:
        home = Path("data")
    path = home / "logs" / f"error-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{os.getpid()}.log"
    text = "".join(traceback.format_exception(error))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"jkn {' '.join(sys.argv[1:])}\n{hide_secrets(mask_identifiers(text))}", encoding="utf-8")
    except OSError as cannot:
        with suppress(OSError):
            path.unlink(missing_ok=True)  # no half-written log left on a full disk
        return f"not written, {path.parent}: {cannot.strerror or cannot}"
    return str(path.resolve())


if __name__ == "__main__":
    main()
