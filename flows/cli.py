"""The `jkn` command line: its arguments and what each command calls. Exit codes: 0 done, 1 pipeline error,
2 usage or configuration error, 3 a critical data-quality check failed, 4 database busy, 5 published but
landing files were refused whole. What the commands print is flows/terminal.py; running the Prefect flow
from here, flows/prefect_run.py."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from flows import prefect_run, terminal
from flows.errors import DataQualityError, JknError
from flows.prefect_run import EPHEMERAL_TIMEOUT_SETTING
from flows.settings import load_settings
from flows.terminal import console, errors

app = typer.Typer(
    help="Early warning for JKN coverage and employer compliance: ingest extracts, check them, "
    "publish metrics, alert managers. Settings come from JKN_* variables or jkn.toml.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    # A traceback with locals could show a secret setting; errors are reported by main() instead.
    pretty_exceptions_enable=False,
)
DEMO_PSEUDONYM_KEY = "jkn-demo-key-not-for-production-use"


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=terminal.print_version,
            is_eager=True,
            help="Print the versions of jkn, Prefect, GX, DuckDB.",
        ),
    ] = False,
) -> None:
    """Early warning for JKN coverage and employer compliance."""


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
    with prefect_run.environment(demo_environment), database.writer_lock(load_settings(), "jkn demo"):
        if fresh and settings.db_path.exists():
            settings.db_path.unlink()
        files = demo_data.write_landing(landing)
        console.print(f"Demo landing folder: {landing} ({len(files)} files)")
        result = prefect_run.run_pipeline()
        terminal.print_summary(result)
    _exit_if_refused(result)


def _exit_if_refused(result: dict) -> None:
    if result.get("refused"):
        errors.print(f"error: {result['refused']}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(result["refused"].exit_code)


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
        result = prefect_run.run_pipeline(from_month=from_month, to_month=to_month, skip_if_nothing_new=only_new)
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
        terminal.print_summary(result)
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
    terminal.print_ingest(results)
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
    terminal.print_checks(staged, report, failed)
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
    from flows import database, stages
    from flows.runs import new_run_id

    settings = load_settings()
    if dry_run:
        # Read-only, on the published snapshot: nothing can change, and a run under way is not held up.
        summary = stages.alerts_dry_run(settings, new_run_id())
    else:
        with database.writer_lock(settings, "jkn alerts"):
            summary = stages.alerts(settings, new_run_id())
    terminal.print_alerts(summary, dry_run, settings.pending_alert_hours)


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
    terminal.print_status()


def main() -> None:
    try:
        # Standalone mode: typer's own click turns usage errors into exit 2 and typer.Exit(n) into n.
        app(prog_name="jkn")
    except JknError as error:
        lines = error.lines() if isinstance(error, DataQualityError) else [str(error)]
        errors.print("error: " + "\n".join(lines), markup=False, highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)
    except Exception as error:  # noqa: BLE001 - anything else is a pipeline error: one line, details in a file
        if prefect_run.prefect_did_not_start(error):
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
        terminal.print_failure(error)
        sys.exit(1)


if __name__ == "__main__":
    main()
