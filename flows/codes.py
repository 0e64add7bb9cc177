"""The JKN segments and participant statuses, read from their seeds (`seeds/segments.csv`,
`seeds/statuses.csv`): the one list that ingest checks against, the suites and the report show,
and the labels name. Codes, not settings: the seeds shipped with jkn are read (not `JKN_SEEDS`),
because every extract, mart and suite depends on these six segments and two statuses.

An alias is a spelling an office's export uses for a code, after upper-casing and turning spaces
and hyphens into underscores (`pbi jk` -> `PBI_JK` -> `PBI_APBN`).
"""

from __future__ import annotations

import csv
from pathlib import Path

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def _rows(file_name: str) -> list[dict[str, str]]:
    with (SEEDS / file_name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


_SEGMENT_ROWS = _rows("segments.csv")
_STATUS_ROWS = _rows("statuses.csv")

SEGMENTS: tuple[str, ...] = tuple(row["segment"] for row in _SEGMENT_ROWS)
STATUSES: tuple[str, ...] = tuple(row["status"] for row in _STATUS_ROWS)


def _aliases(rows: list[dict[str, str]], code: str) -> dict[str, str]:
    aliases = {row[code]: row[code] for row in rows}
    for row in rows:
        aliases.update({alias: row[code] for alias in row["aliases"].split("|") if alias})
    return aliases


SEGMENT_ALIASES: dict[str, str] = _aliases(_SEGMENT_ROWS, "segment")
STATUS_ALIASES: dict[str, str] = _aliases(_STATUS_ROWS, "status")

SEGMENT_NAMES = {
    language: {row["segment"]: row[f"name_{language}"] for row in _SEGMENT_ROWS} for language in ("id", "en")
}
SEGMENT_SHORT_NAMES = {
    language: {row["segment"]: row[f"short_name_{language}"] for row in _SEGMENT_ROWS} for language in ("id", "en")
}
