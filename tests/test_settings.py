import re
import subprocess
import sys
from pathlib import Path

import pytest

from flows.errors import ConfigError
from flows.settings import Settings, load_settings, setting_names

SETTINGS_PAGE = Path(__file__).parent.parent / "docs" / "settings.md"


def test_defaults(jkn_env, monkeypatch):
    monkeypatch.delenv("JKN_HOME")
    monkeypatch.delenv("JKN_PSEUDONYM_KEY")
    settings = load_settings()
    assert settings.home == Path("data")
    assert settings.db_path == Path("data/jkn.duckdb")
    assert settings.landing_dir == Path("data/landing")
    assert settings.outbox_dir == Path("data/outbox")
    assert settings.locale == "id"
    assert settings.pseudonym_key is None
    assert settings.recipients.name == "recipients.csv" and settings.recipients.exists()
    assert settings.reject_threshold_pct == 1.0


def test_environment_overrides_and_types(jkn_env, monkeypatch):
    monkeypatch.setenv("JKN_SMTP_PORT", "2525")
    monkeypatch.setenv("JKN_SMTP_STARTTLS", "true")
    monkeypatch.setenv("JKN_LOCALE", "en")
    settings = load_settings()
    assert settings.smtp_port == 2525
    assert settings.smtp_starttls is True
    assert settings.locale == "en"
    assert settings.home == jkn_env


def test_unknown_variable_is_named(jkn_env, monkeypatch):
    monkeypatch.setenv("JKN_WEBHOOK_ULR", "http://127.0.0.1:9/hook")
    with pytest.raises(ConfigError, match="JKN_WEBHOOK_ULR"):
        load_settings()


def test_invalid_value_is_named_and_secret_not_echoed(jkn_env, monkeypatch):
    monkeypatch.setenv("JKN_SMTP_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="SMTP_PORT"):
        load_settings()


def test_toml_file_and_unknown_key(jkn_env, tmp_path):
    (tmp_path / "jkn.toml").write_text('locale = "en"\nmemory_limit = "1GB"\n')
    settings = load_settings()
    assert settings.locale == "en" and settings.memory_limit == "1GB"
    (tmp_path / "jkn.toml").write_text('locale = "en"\nreminder_dayz = 3\n')
    with pytest.raises(ConfigError, match="reminder_dayz"):
        load_settings()


def test_secrets_are_not_printed(jkn_env, monkeypatch):
    monkeypatch.setenv("JKN_SMTP_PASSWORD", "hunter2-secret")
    settings = load_settings()
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in str(settings.model_dump())


def test_cli_exits_2_naming_unknown_variable(jkn_env):
    env = {"JKN_HOME": str(jkn_env), "JKN_BOGUS": "1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "flows.cli", "status"], capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert "JKN_BOGUS" in result.stderr


def test_the_settings_page_lists_every_field():
    text = SETTINGS_PAGE.read_text(encoding="utf-8")
    documented = {name.lower() for name in re.findall(r"^\| `JKN_([A-Z_]+)`", text, re.MULTILINE)}
    assert documented == setting_names(), documented ^ setting_names()
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no one-line help"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("JKN_MEMORY_LIMIT", "lots", "expected a size such as 2GB"),
        ("JKN_REJECT_THRESHOLD_PCT", "-5", "greater than or equal to 0"),
        ("JKN_PSEUDONYM_KEY", "short-secret", "at least 32 bytes"),
        ("JKN_SMTP_PORT", "99999", "less than or equal to 65535"),
        ("JKN_THREADS", "0", "greater than or equal to 1"),
        ("JKN_WEBHOOK_URL", "ftp://127.0.0.1/hook-secret-token", "http:// or https:// URL"),
        ("JKN_PENDING_ALERT_HOURS", "0", "greater than 0"),
        ("JKN_REPORT_URL", "file:///srv/jkn/report", "http:// or https:// URL"),
    ],
)
def test_bad_value_exits_2_naming_the_setting(jkn_env, name, value, expected):
    """A real `jkn status` process: the setting is checked before anything runs, and a secret's
    value is never repeated in the message."""
    env = {"JKN_HOME": str(jkn_env), "PATH": "/usr/bin:/bin", name: value}
    result = subprocess.run([sys.executable, "-m", "flows.cli", "status"], capture_output=True, text=True, env=env)
    assert result.returncode == 2, result.stderr
    assert name in result.stderr and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    if name in ("JKN_PSEUDONYM_KEY", "JKN_WEBHOOK_URL"):
        assert value not in result.stderr


def test_key_of_32_bytes_is_accepted_and_shorter_refused(jkn_env, monkeypatch):
    monkeypatch.setenv("JKN_PSEUDONYM_KEY", "k" * 32)
    assert load_settings().pseudonym_key.get_secret_value() == "k" * 32
    monkeypatch.setenv("JKN_PSEUDONYM_KEY", "k" * 31)
    with pytest.raises(ConfigError, match="JKN_PSEUDONYM_KEY: expected a secret of at least 32 bytes"):
        load_settings()


def test_memory_sizes_duckdb_accepts(jkn_env, monkeypatch):
    from flows import database

    for size in ("2GB", "512MB", "1.5GiB", " 800 mb "):
        monkeypatch.setenv("JKN_MEMORY_LIMIT", size)
        settings = load_settings()
        con = database.connect(settings)  # DuckDB itself takes the value
        con.close()


def test_misspelt_names_get_a_suggestion(jkn_env, monkeypatch, tmp_path):
    monkeypatch.setenv("JKN_REJECT_TRESHOLD_PCT", "2")
    with pytest.raises(ConfigError, match=r"JKN_REJECT_TRESHOLD_PCT \(did you mean JKN_REJECT_THRESHOLD_PCT\?\)"):
        load_settings()
    monkeypatch.delenv("JKN_REJECT_TRESHOLD_PCT")
    (tmp_path / "jkn.toml").write_text("memory_limt = '1GB'\n")
    with pytest.raises(ConfigError, match=r"memory_limt \(did you mean memory_limit\?\)"):
        load_settings()
    (tmp_path / "jkn.toml").write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="unknown setting\\(s\\): colour$"):
        load_settings()
