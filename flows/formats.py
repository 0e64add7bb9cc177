"""How numbers and months are written in Indonesian (`1.313.212`, `86,18`, `Agustus 2022`) and English.

Shared by alerts, the report and the charts; it imports nothing heavy, so the alerts stage can
use it without loading the report's chart libraries.
"""

from __future__ import annotations

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
