"""One row of the routing file (`JKN_RECIPIENTS`) checked on its own: a bad row is refused with its
file, line, column and reason, and every other recipient still gets their messages.

An address goes into a mail header, a file name or an HTTP request. What cannot be right there is
refused: a line break or other control character (a second header, a second recipient), an email
address that is not `name@domain` in plain letters, digits and `.!#$%&'*+/=?^_`{|}~-` (no quotes,
angle brackets, spaces or markup), a webhook that is not an http(s) URL with a host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    rf"@{LABEL}(?:\.{LABEL})*"
)


@dataclass(frozen=True)
class RefusedRow:
    file: str
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}, column {self.column}: {self.reason}"


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def address_problem(channel: str, address: str) -> str | None:
    """Why this address cannot be used for this channel, or None. A webhook URL is never quoted
    back: it may hold a token."""
    if CONTROL.search(address):
        return "the address holds a line break or another control character"
    if channel == "email":
        if len(address) > 254 or not EMAIL.fullmatch(address):
            return f"not an email address (expected name@domain): {_shown(address)}"
    elif channel == "webhook":
        try:
            url = urlsplit(address)
            valid = url.scheme in ("http", "https") and bool(url.hostname) and not re.search(r"\s", address)
        except ValueError:
            valid = False
        if not valid:
            return "not an http(s) URL with a host (the value is not shown: it may hold a token)"
    return None
