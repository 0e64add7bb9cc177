"""One settings object for the whole project.

Values come from `JKN_*` environment variables, then from `jkn.toml` (in the
working directory, or the file named by `JKN_CONFIG`), then the defaults below.
An unknown `JKN_` variable or toml key is an error that names it (with the
nearest known name): a typo in a deployment must not silently fall back to a
default. Every value is checked when loaded (type, range, size syntax, key
length), so a bad one stops the command with exit 2 before any work starts.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from flows import private_files, scrub
from flows.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "JKN_"
# Not a setting itself: it says where the toml file holding the settings is.
CONFIG_VARIABLE = "JKN_CONFIG"
# HMAC-SHA256 takes any key, but a short one can be found by trying: with the
# NIK's structure known, a guessed key re-identifies every person_key.
MINIMUM_KEY_BYTES = 32
# What DuckDB's memory_limit accepts: a number and a unit (1000- or 1024-based).
MEMORY_SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)\s*$", re.IGNORECASE)


class Settings(BaseSettings):
    """Every setting of jkn. The settings table in docs/settings.md is checked against these fields."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", case_sensitive=False, validate_default=True
    )

    home: Path = Field(Path("data"), description="Working folder: database, landing, outbox, report.")
    db: Path | None = Field(None, description="DuckDB file (default `$JKN_HOME/jkn.duckdb`).")
    landing: Path | None = Field(None, description="Folder where extract files arrive (default `$JKN_HOME/landing`).")
    pseudonym_key: SecretStr | None = Field(
        None, description="Secret key for the HMAC-SHA256 that turns a NIK into `person_key`."
    )
    webhook_url: SecretStr | None = Field(
        None, description="Adds one national recipient that gets alerts by webhook at this URL."
    )
    smtp_host: str | None = Field(
        None, description="Mail server for email recipients (unset: email goes to the outbox)."
    )
    smtp_port: int = Field(25, ge=1, le=65535, description="Mail server port.")
    smtp_user: str | None = Field(None, description="Mail server login name (optional).")
    smtp_password: SecretStr | None = Field(None, description="Mail server password (optional).")
    smtp_from: str = Field("jkn@localhost", description="Sender address of alert emails.")
    smtp_starttls: bool = Field(False, description="Use STARTTLS with the mail server.")
    recipients: Path = Field(PROJECT_ROOT / "seeds" / "recipients.csv", description="Alert routing file.")
    locale: Literal["id", "en"] = Field("id", description="Default language of messages and report.")
    memory_limit: str = Field("2GB", description="DuckDB memory limit; DuckDB spills to disk past it.")
    threads: int | None = Field(None, ge=1, le=1024, description="DuckDB threads (default: all cores).")
    seeds: Path = Field(PROJECT_ROOT / "seeds", description="Folder of reference CSVs.")
    reject_threshold_pct: float = Field(
        1.0, ge=0, le=100, description="A file with more bad rows than this share (%) is refused whole."
    )
    population_lag_months: int = Field(
        0, ge=0, le=120, description="Months after its as-of date before a population figure may be used."
    )
    reminder_days: int = Field(7, ge=1, description="Days before an unchanged open alert is sent again.")
    delivery_retries: int = Field(
        3, ge=0, le=20, description="Retries of a webhook or email within one run after a temporary failure."
    )
    delivery_backoff_seconds: float = Field(
        2.0, ge=0, le=600, description="Wait before the first retry of a delivery; doubles with each retry."
    )
    delivery_timeout_seconds: float = Field(
        10.0, gt=0, le=3600, description="Timeout of one webhook request or mail-server connection."
    )
    delivery_budget_seconds: float = Field(
        120.0, description="Most time one run spends delivering messages; the rest waits for the next run."
    )
    dask_address: str | None = Field(
        None, description="Dask scheduler (`tcp://host:8786`) whose workers read the new files; unset: this process."
    )
    lock_timeout: float = Field(
        0.0, ge=0, description="Seconds to wait for another run to release the database (then exit 4)."
    )
    report_url: str | None = Field(
        None,
        description="Where the report folder is served (http or https), for links in messages and the "
        "run's report artifact (unset: they give the file's path).",
    )
    pending_alert_hours: float = Field(
        24.0, gt=0, description="Hours a message may stay undelivered before the ops recipients are told."
    )

    @field_validator("memory_limit")
    @classmethod
    def _memory_size(cls, value: str) -> str:
        if not MEMORY_SIZE.match(value):
            raise ValueError(f"expected a size such as 2GB, 512MB or 1.5GiB, got {value!r}")
        return value.strip()

    @field_validator("pseudonym_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode("utf-8")) < MINIMUM_KEY_BYTES:
            raise ValueError(
                f"expected a secret of at least {MINIMUM_KEY_BYTES} bytes (a short key can be guessed, and with it "
                "every person_key re-identified); make one with: openssl rand -hex 32"
            )
        return value

    @field_validator("report_url")
    @classmethod
    def _report_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        # The URL is a secret (it often holds a token): the message must not repeat it.
        if value is not None and not re.match(r"^https?://[^/\s]+", value.get_secret_value()):
            raise ValueError("expected an http:// or https:// URL")
        return value

    @property
    def db_path(self) -> Path:
        return self.db or self.home / "jkn.duckdb"

    @property
    def landing_dir(self) -> Path:
        return self.landing or self.home / "landing"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def report_dir(self) -> Path:
        return self.home / "report"

    @property
    def data_docs_dir(self) -> Path:
        return self.home / "data_docs"


def setting_names() -> set[str]:
    return set(Settings.model_fields)


def _unknown_environment_variables() -> list[str]:
    known = {ENV_PREFIX + name.upper() for name in setting_names()} | {CONFIG_VARIABLE}
    return sorted(name for name in os.environ if name.upper().startswith(ENV_PREFIX) and name.upper() not in known)


def _did_you_mean(name: str, known: list[str]) -> str:
    """`name (did you mean X?)` when a known name is close enough to be a typo of it."""
    close = difflib.get_close_matches(name.upper(), [item.upper() for item in known], n=1, cutoff=0.7)
    if not close:
        return name
    suggestion = known[[item.upper() for item in known].index(close[0])]
    return f"{name} (did you mean {suggestion}?)"


def _toml_values() -> dict:
    path = os.environ.get(CONFIG_VARIABLE)
    toml_path = Path(path) if path else Path("jkn.toml")
    if not toml_path.exists():
        if path:
            raise ConfigError(f"{CONFIG_VARIABLE}={path}: no such file")
        return {}
    try:
        values = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{toml_path}: not valid TOML: {error}") from error
    unknown = sorted(key for key in values if key.lower() not in setting_names())
    if unknown:
        known = sorted(setting_names())
        raise ConfigError(f"{toml_path}: unknown setting(s): {', '.join(_did_you_mean(key, known) for key in unknown)}")
    # Environment variables win over the file.
    return {
        key.lower(): value
        for key, value in values.items()
        if ENV_PREFIX + key.upper() not in {name.upper() for name in os.environ}
    }


def load_settings(**overrides) -> Settings:
    """Read and validate the settings; raise ConfigError naming what is wrong."""
    unknown = _unknown_environment_variables()
    if unknown:
        known = sorted(ENV_PREFIX + name.upper() for name in setting_names())
        raise ConfigError(
            f"unknown setting(s) {', '.join(_did_you_mean(name, known) for name in unknown)}; known: "
            + ", ".join(known)
        )
    try:
        settings = Settings(**{**_toml_values(), **overrides})
    except ValidationError as error:
        # Only pydantic's message, never the input: the value may be a secret.
        problems = "; ".join(
            f"{ENV_PREFIX}{'.'.join(str(part) for part in item['loc']).upper()}: "
            f"{item['msg'].removeprefix('Value error, ')}"
            for item in error.errors()
        )
        raise ConfigError(f"invalid setting: {problems}") from None
    # From here on this process hides these values, in any spelling, from logs and stored details,
    # and what it creates is readable by its owner only.
    scrub.remember(value.get_secret_value() for value in dict(settings).values() if isinstance(value, SecretStr))
    private_files.protect(settings)
    return settings
