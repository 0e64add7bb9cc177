"""The stages are written once (flows/stages.py); the commands that do not run the flow never load Prefect."""

import subprocess
import sys

import pytest

# Runs one command the way `jkn` does, then says whether any Prefect module was imported on the way.
COMMAND_THEN_MODULES = """
import sys
from flows import cli
sys.argv = ["jkn", *sys.argv[1:]]
code = 0
try:
    cli.main()
except SystemExit as exit:
    code = exit.code
loaded = sorted(name for name in sys.modules if name == "prefect" or name.startswith("prefect."))
print(f"exit={code} prefect_modules={len(loaded)}")
"""


@pytest.mark.parametrize(
    "command, exit_code, says",
    [
        # nothing loaded yet: the staging views are built, no suite runs, nothing is recorded
        ("check", 0, "Nothing staged"),
        ("status", 2, "nothing is published yet"),
    ],
)
def test_commands_without_the_flow_do_not_import_prefect(jkn_env, command, exit_code, says):
    result = subprocess.run(
        [sys.executable, "-c", COMMAND_THEN_MODULES, command], capture_output=True, text=True, timeout=300
    )
    assert says in result.stdout + result.stderr, result.stdout + result.stderr
    assert f"exit={exit_code} prefect_modules=0" in result.stdout, result.stdout + result.stderr


def test_check_after_ingest_uses_the_stages_and_records_results(jkn_env):
    """`jkn ingest` then `jkn check` through the shared stages: the checks ran on the staged file and
    were recorded, and no connection is left open (a read-only connection with another configuration opens)."""
    import duckdb

    from flows import generate, stages
    from flows.runs import new_run_id
    from flows.settings import load_settings

    settings = load_settings()
    files = generate.generate(
        settings.landing_dir, participants=200, employers=5, workforce=5, regions="2", seeds_dir=settings.seeds
    )
    results = stages.ingest(settings, files)
    assert {result.status for result in results} == {"staged"}
    staged, report = stages.try_staging_checks(settings, new_run_id())
    assert staged == len(files)
    assert report.results and not report.nothing_staged
    with duckdb.connect(str(settings.db_path), read_only=True) as con:  # fails if a stage kept the file open
        recorded = con.execute("select count(*) from ops.dq_results where run_id = ?", [report.run_id])
        assert recorded.fetchone()[0] == len(report.results)
