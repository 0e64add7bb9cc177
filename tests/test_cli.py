import subprocess
import sys

import pytest
from typer.testing import CliRunner

from flows.cli import app

COMMANDS = ["demo", "run", "ingest", "check", "metrics", "alerts", "report", "status", "serve", "generate"]


def test_top_level_help_lists_every_command():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_explains_itself(command):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    # the first line of help is a sentence about what it does
    assert len(result.output.split("Usage:")[1].strip()) > 40


def test_status_without_database_is_a_usage_error(jkn_env):
    result = subprocess.run([sys.executable, "-m", "flows.cli", "status"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "nothing is published yet" in result.stderr


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["ingest", "--bogus"], "No such option: --bogus"),
        (["ingest", "/nonexistent/region_counts_2022-08.csv"], "no such file"),
        ([], "Usage: jkn"),
    ],
)
def test_usage_errors_exit_2(jkn_env, arguments, expected):
    result = subprocess.run([sys.executable, "-m", "flows.cli", *arguments], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr + result.stdout


def test_version_names_jkn_and_its_engines(jkn_env):
    from importlib.metadata import version

    import flows

    result = subprocess.run([sys.executable, "-m", "flows.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"jkn {flows.__version__} (")
    for package in ("prefect", "great-expectations", "duckdb"):
        assert f"{package} {version(package)}" in result.stdout
