"""Secrets hidden in every spelling, wherever text leaves the process: stored details, logs, the console.

Comparing a secret with the text as written is not enough: HTTP libraries put a
URL into their error messages re-encoded (a space becomes `%20`, `|` becomes
`%7C`, an encoded `%2F` may come back decoded, hex digits change case), and a
token can sit in the path, the query or the user part of the URL. So each secret
is decoded to its characters once, and the text is searched for those
characters where each may be written as itself or percent-encoded (in either
case, also twice over, `%257C`), a space also as `+`.

`remember(...)` is called with the settings' secrets when they are loaded;
from then on `hide_secrets` and every log record of the process hide them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

HIDDEN = "<hidden>"
# Shorter pieces (a path of "/", a query "a=1") are no secret and would blank out ordinary words.
MIN_LENGTH = 4

_patterns: list[re.Pattern] = []  # longest secret piece first
_remembered: set[str] = set()


def _decoded(text: str) -> str:
    for _ in range(3):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def _hex_digit(value: int) -> str:
    digit = f"{value:X}"
    return digit if digit.isdigit() else f"[{digit}{digit.lower()}]"


def _character(character: str) -> str:
    spellings = [re.escape(character)]
    spellings += [
        "".join(f"%(?:25)*{_hex_digit(byte >> 4)}{_hex_digit(byte & 15)}" for byte in character.encode("utf-8"))
    ]
    if character in " +":
        spellings += [r"\+", "%20", " "]
    return "(?:" + "|".join(spellings) + ")"


def spelling_pattern(secret: str) -> re.Pattern:
    """The secret, decoded, in any mixture of raw and percent-encoded characters."""
    return re.compile("".join(_character(character) for character in _decoded(secret)))


def _token_like(piece: str) -> bool:
    """A path segment or query value worth hiding on its own: not a plain word such as `services`
    or `webhooks`, which would blank out ordinary log lines (Prefect's task `alerts`, say)."""
    decoded = _decoded(piece)
    return len(decoded) >= 8 and not re.fullmatch(r"[a-z]+(?:[-_][a-z]+)*", decoded)


def parts(secret: str) -> list[str]:
    """What to hide of a secret: all of it, and for a URL each piece that may hold a token."""
    pieces = [secret]
    if "://" in secret:
        url = urlsplit(secret)
        pieces += [
            url.netloc.rpartition("@")[0],
            url.password or "",
            url.path,
            url.path + ("?" + url.query if url.query else ""),
            url.query,
            url.fragment,
        ]
        pieces += [segment for segment in url.path.split("/") if _token_like(segment)]
        pieces += [value for _, value in parse_qsl(url.query, keep_blank_values=True) if _token_like(value)]
    unique = {piece for piece in pieces if len(_decoded(piece).strip("/?&=")) >= MIN_LENGTH}
    return sorted(unique, key=len, reverse=True)  # longest first: hide the whole URL, not pieces of it


def patterns_for(secrets: Iterable[str | None]) -> list[re.Pattern]:
    return [spelling_pattern(piece) for secret in secrets if secret for piece in parts(secret)]


def _longest_first(patterns: Iterable[re.Pattern]) -> list[re.Pattern]:
    # a whole URL is hidden as one, before a shorter piece of it (or of another secret) breaks it up
    return sorted(set(patterns), key=lambda pattern: len(pattern.pattern), reverse=True)


def hide(text: str, patterns: Iterable[re.Pattern]) -> str:
    for pattern in patterns:
        text = pattern.sub(HIDDEN, text)
    return text


def hide_secrets(text: str, *secrets: str | None) -> str:
    """`text` without the given secrets nor the remembered ones, in any spelling."""
    return hide(str(text), _longest_first([*patterns_for(secrets), *_patterns]))


def remember(secrets: Iterable[str | None]) -> None:
    """Hide these secrets from now on in `hide_secrets` and in every log record of this process."""
    for secret in secrets:
        if secret and secret not in _remembered:
            _remembered.add(secret)
            _patterns[:] = _longest_first([*_patterns, *patterns_for([secret])])
    if _patterns:
        _install_log_scrubbing()


_previous_factory = None


def _install_log_scrubbing() -> None:
    """One record factory for every logger (ours, Prefect's, libraries'): a record's message and
    traceback are scrubbed when it is made, before any handler formats, prints or ships it."""
    global _previous_factory
    if _previous_factory is not None:
        return
    _previous_factory = logging.getLogRecordFactory()

    def scrubbed_record(*args, **kwargs) -> logging.LogRecord:
        record = _previous_factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed call logs as it would have
            return record
        hidden = hide(message, _patterns)
        if hidden != message:
            record.msg, record.args = hidden, ()
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = hide(logging.Formatter().formatException(record.exc_info), _patterns)
        return record

    logging.setLogRecordFactory(scrubbed_record)
