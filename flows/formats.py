"""How numbers, months and missing values are written in Indonesian (`1.313.212`, `86,18`, `Agustus 2022`)
and English, for every reader: the report's filters (`number`, `percent`, `points`, `rupiah`, `month_name`,
`timestamp`), the alert messages' and digests' filters (flows/alerts/messages.py, flows/actions.py: the same
functions plus `long_date`), and the month names the charts use.

Digit grouping is written here (`grouped`: a dot between thousands and a decimal comma in Indonesian, the
other way round in English) rather than with Babel's `id_ID`/`en` formats: Babel is not a dependency.

It imports nothing heavy, so the alerts stage can use it without loading the report's chart libraries.
"""

from __future__ import annotations

from datetime import UTC, date

# What every reader sees for a value that is not there: the report, the alert messages, the digests.
# An en dash, so it is not read as a minus sign (negative numbers are written with U+2212, `−1,20`).
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

# The same conventions for the charts' d3 formatting (Vega-Lite's formatLocale and timeFormatLocale): d3 has
# no Indonesian locale, so these are the conventions of Indonesian offices (1.313.212 and 86,18).
D3_FORMAT_LOCALES: dict[str, dict] = {
    "id": {"decimal": ",", "thousands": ".", "grouping": [3], "currency": ["Rp", ""], "percent": "%"},
    "en": {"decimal": ".", "thousands": ",", "grouping": [3], "currency": ["Rp", ""], "percent": "%"},
}
D3_TIME_FORMAT_LOCALES: dict[str, dict] = {
    "id": {
        "dateTime": "%A, %e %B %Y pukul %X",
        "date": "%d/%m/%Y",
        "time": "%H.%M.%S",
        "periods": ["AM", "PM"],
        "days": ["Minggu", "Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu"],
        "shortDays": ["Min", "Sen", "Sel", "Rab", "Kam", "Jum", "Sab"],
        "months": list(MONTH_NAMES["id"]),
        "shortMonths": ["Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"],
    },
    "en": {
        "dateTime": "%x, %X",
        "date": "%-m/%-d/%Y",
        "time": "%-I:%M:%S %p",
        "periods": ["AM", "PM"],
        "days": ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"],
        "shortDays": ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"],
        "months": list(MONTH_NAMES["en"]),
        "shortMonths": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    },
}


_SWAP_SEPARATORS = str.maketrans(",.", ".,")


def grouped(value: float | int, digits: int = 0, locale: str = "id") -> str:
    """1313212 -> '1.313.212' (id) or '1,313,212' (en); 86.176 with 2 digits -> '86,18' or '86.18'."""
    text = f"{value:,.{digits}f}"
    return text.translate(_SWAP_SEPARATORS) if locale == "id" else text


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
    if not value:
        return EMPTY
    if isinstance(value, str):
        year, month = value[:7].split("-")
        value = date(int(year), int(month), 1)
    return f"{MONTH_NAMES[locale][value.month - 1]} {value.year}"


def long_date(value, locale: str = "id") -> str:
    """'31 Desember 2024' from a date or 'YYYY-MM-DD'."""
    if not value:
        return EMPTY
    day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    return f"{day.day} {MONTH_NAMES[locale][day.month - 1]} {day.year}"


def timestamp(value, locale: str = "id") -> str:
    if value is None:
        return EMPTY
    value = value.astimezone(UTC)
    return f"{value.day} {MONTH_NAMES[locale][value.month - 1]} {value.year} {value:%H:%M} UTC"
