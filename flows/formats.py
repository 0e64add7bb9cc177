"""How numbers, months and missing values are written in Indonesian (`1.313.212`, `86,18`, `Agustus 2022`)
and English: the report's filters (`number`, `percent`, `points`, `rupiah`, `month_name`, `timestamp`) and
the month names and digit grouping alerts and the charts use.

It imports nothing heavy, so the alerts stage can use it without loading the report's chart libraries.
"""

from __future__ import annotations

from datetime import UTC, date

# What the report shows for a value that is not there (alerts, in plain-text messages, write "-").
EMPTY = "–"

MONTH_NAMES = {
    "id": (
        "Januari",
        "Februari",
        "Maret",
        "April",
        "Mei",
        "Juni",
        "Juli",
        "Agustus",
        "September",
        "Oktober",
        "November",
        "Desember",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}


def grouped(value: float | int, digits: int = 0, locale: str = "id") -> str:
    """1313212 -> '1.313.212' (id) or '1,313,212' (en); 86.176 with 2 digits -> '86,18' or '86.18'."""
    text = f"{value:,.{digits}f}"
    return text.translate(str.maketrans(",.", ".,")) if locale == "id" else text


def number(value, locale: str = "id", digits: int = 0) -> str:
    """1.313.212 and 86,18 in Indonesian; 1,313,212 and 86.18 in English; a dash for nothing."""
    if value is None:
        return EMPTY
    text = grouped(float(value), digits, locale) if digits else grouped(round(float(value)), 0, locale)
    if text in {"-0", "-0.00", "-0.0"}:
        text = text[1:]
    return text.replace("-", "−")


def percent(value, locale: str = "id", digits: int = 2) -> str:
    return EMPTY if value is None else number(value, locale, digits) + "%"


def points(value, locale: str = "id") -> str:
    """A gap in percentage points, signed so 'above the path' reads differently from 'below'."""
    if value is None:
        return EMPTY
    sign = "+" if value > 0.005 else ""
    return sign + number(value, locale, 2) + " pp"


def rupiah(value, locale: str = "id") -> str:
    return EMPTY if value is None else "Rp " + number(value, locale)


def month_name(value, locale: str = "id") -> str:
    """'Agustus 2022' from a date or 'YYYY-MM'."""
    if value is None:
        return EMPTY
    if isinstance(value, str):
        year, month = value[:7].split("-")
        value = date(int(year), int(month), 1)
    return f"{MONTH_NAMES[locale][value.month - 1]} {value.year}"


def timestamp(value, locale: str = "id") -> str:
    if value is None:
        return EMPTY
    value = value.astimezone(UTC)
    return f"{value.day} {MONTH_NAMES[locale][value.month - 1]} {value.year} {value:%H:%M} UTC"
