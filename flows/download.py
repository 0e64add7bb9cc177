"""Fetch an extract over HTTP(S) into the landing folder, then it is ingested like any other file.

The body is streamed to a hidden temporary file in the landing folder (`.<name>.<random>.part`,
which discovery ignores) while its sha256 is computed, and renamed to `<kind>_<period>.<ext>`
only when it is complete and, if an expected sha256 was given, matches it. So the landing
folder never holds half a file, whatever happens to the connection or the process.

A failed connection, a timeout, a body cut short, or an answer 408/425/429/5xx is retried
with exponential backoff (a `Retry-After` in seconds is honoured, up to `MAX_WAIT`); any
other HTTP error, or a checksum mismatch, fails at once: asking again would not change it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests

from flows.errors import ConfigError, PipelineError
from flows.ingest import FILE_NAME

log = logging.getLogger(__name__)

RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
CONNECT_TIMEOUT = 10.0  # seconds to establish the connection
READ_TIMEOUT = 60.0  # seconds without a byte from the server
RETRIES = 3  # attempts after the first
BACKOFF = 0.5  # seconds before the first retry; doubles each time
MAX_WAIT = 60.0  # longest wait between attempts, whatever the server asks
CHUNK = 1 << 20


@dataclass(frozen=True)
class Downloaded:
    path: Path
    sha256: str
    size: int
    attempts: int


class _Retryable(Exception):
    """A failure that another attempt may not have."""

    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.wait = wait


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def shown_url(url: str) -> str:
    """The URL without credentials or query string (signed URLs carry tokens there), for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def check_sha256(expected: str | None) -> str | None:
    if expected is None:
        return None
    value = expected.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise ConfigError(f"--sha256 {expected!r}: expected 64 hexadecimal digits")
    return value


def download(
    url: str,
    landing: Path,
    expected_sha256: str | None = None,
    *,
    retries: int = RETRIES,
    backoff: float = BACKOFF,
    timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
    session: requests.Session | None = None,
) -> Downloaded:
    """Download `url` into `landing` as the extract file it names; return where it went.

    The file name comes from the server's Content-Disposition, else from the URL's last path
    segment, and must be an extract name (`<kind>_<period>.<ext>`).
    """
    expected = check_sha256(expected_sha256)
    if not is_url(url):
        raise ConfigError(f"{url!r} is not an http(s) URL")
    landing.mkdir(parents=True, exist_ok=True)
    http = session or requests.Session()
    http.headers.setdefault("User-Agent", "jkn-ingest")
    try:
        for attempt in range(1, retries + 2):
            try:
                return _attempt(http, url, landing, expected, timeout, attempt)
            except _Retryable as failure:
                if attempt > retries:
                    raise PipelineError(
                        f"{shown_url(url)}: download failed after {attempt} attempts: {failure}"
                    ) from None
                wait = min(failure.wait if failure.wait is not None else backoff * 2 ** (attempt - 1), MAX_WAIT)
                log.warning(
                    "download of %s failed (attempt %d of %d): %s; retrying in %.1f s",
                    shown_url(url),
                    attempt,
                    retries + 1,
                    failure,
                    wait,
                )
                time.sleep(wait)
    finally:
        if session is None:
            http.close()
    raise AssertionError("unreachable")


def _attempt(
    http: requests.Session, url: str, landing: Path, expected: str | None, timeout: tuple[float, float], attempt: int
) -> Downloaded:
    try:
        response = http.get(url, stream=True, timeout=timeout)
    except (requests.ConnectionError, requests.Timeout) as error:
        raise _Retryable(_reason(error)) from None
    with response:
        if response.status_code in RETRY_STATUSES:
            raise _Retryable(f"HTTP {response.status_code} {response.reason}", _retry_after(response))
        if response.status_code >= 400:
            raise PipelineError(f"{shown_url(url)}: HTTP {response.status_code} {response.reason}")
        name = _file_name(url, response)
        digest = hashlib.sha256()
        size = 0
        handle = tempfile.NamedTemporaryFile(dir=landing, prefix=f".{name}.", suffix=".part", delete=False)
        part = Path(handle.name)
        try:
            with handle:
                for chunk in response.iter_content(CHUNK):
                    handle.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            actual = digest.hexdigest()
            if expected and actual != expected:
                raise PipelineError(
                    f"{shown_url(url)}: checksum mismatch for {name}: expected sha256 {expected}, got {actual}; "
                    "the download was discarded"
                )
            target = landing / name
            os.replace(part, target)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
            part.unlink(missing_ok=True)
            raise _Retryable(f"the transfer broke off after {size} bytes ({_reason(error)})") from None
        except BaseException:
            part.unlink(missing_ok=True)
            raise
    log.info("downloaded %s to %s (%d bytes, attempt %d)", shown_url(url), target, size, attempt)
    return Downloaded(target, actual, size, attempt)


def _file_name(url: str, response: requests.Response) -> str:
    disposition = response.headers.get("Content-Disposition")
    name = None
    if disposition:
        message = Message()
        message["Content-Disposition"] = disposition
        name = message.get_filename()
    if not name:
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    name = Path(name.replace("\\", "/")).name  # never a path: only a name inside the landing folder
    if not FILE_NAME.match(name):
        raise ConfigError(
            f"{shown_url(url)}: {name!r} is not an extract file name (<kind>_<period>.<ext>, e.g. "
            "participants_2024-06.csv.gz); name the file so in the URL or in Content-Disposition"
        )
    return name


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None


def _reason(error: Exception) -> str:
    if isinstance(error, requests.Timeout):
        return "timed out"
    if isinstance(error, requests.ConnectionError):
        return "connection failed"
    return type(error).__name__
