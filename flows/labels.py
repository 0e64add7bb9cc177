"""Names managers use for the codes the marts hold, in Indonesian and English.

The marts keep codes (`PBI_APBN`, `WRITTEN_WARNING_1`, `branch`): they are stable
keys for scripts and dashboards. Everything a person reads (the report, the
digests, the worklist file for the manpower office) shows these names instead.
"""

from __future__ import annotations

from flows import codes

# Segment codes and their names, long and short (for chart legends, where a long name would squeeze
# the bars on a phone): seeds/segments.csv (flows/codes.py).
SEGMENTS, SEGMENT_NAMES, SEGMENT_SHORT_NAMES = codes.SEGMENTS, codes.SEGMENT_NAMES, codes.SEGMENT_SHORT_NAMES

# PP 86/2013's steps, the most urgent (furthest along) first.
SANCTION_STEPS = ("NO_PUBLIC_SERVICES", "FINE", "WRITTEN_WARNING_2", "WRITTEN_WARNING_1")

STEP_NAMES = {
    "id": {
        "WRITTEN_WARNING_1": "Teguran tertulis pertama",
        "WRITTEN_WARNING_2": "Teguran tertulis kedua",
        "FINE": "Denda administratif",
        "NO_PUBLIC_SERVICES": "Tidak mendapat pelayanan publik tertentu",
    },
    "en": {
        "WRITTEN_WARNING_1": "First written warning",
        "WRITTEN_WARNING_2": "Second written warning",
        "FINE": "Administrative fine",
        "NO_PUBLIC_SERVICES": "Certain public services withheld",
    },
}

STEP_DESCRIPTIONS = {
    "id": {
        "WRITTEN_WARNING_1": "Teguran tertulis pertama (10 hari kerja untuk patuh)",
        "WRITTEN_WARNING_2": "Teguran tertulis kedua (10 hari kerja untuk patuh)",
        "FINE": "Denda 0,1% per bulan dari iuran terutang",
        "NO_PUBLIC_SERVICES": "Tidak mendapat pelayanan publik tertentu (izin, tender)",
    },
    "en": {
        "WRITTEN_WARNING_1": "First written warning (10 working days to comply)",
        "WRITTEN_WARNING_2": "Second written warning (10 working days to comply)",
        "FINE": "Fine of 0.1% a month of the contributions owed",
        "NO_PUBLIC_SERVICES": "Withhold certain public services (permits, tenders)",
    },
}

LEVEL_NAMES = {
    "id": {"national": "Nasional", "province": "Provinsi", "branch": "Kantor cabang", "region": "Kabupaten/kota"},
    "en": {"national": "National", "province": "Province", "branch": "Branch office", "region": "Regency/city"},
}

REASON_NAMES = {
    "id": {
        "employer not registered": "perusahaan belum terdaftar",
        "workers not registered": "pekerja belum terdaftar",
        "wage below minimum": "upah di bawah UMK",
        "arrears": "menunggak iuran",
    },
    "en": {
        "employer not registered": "employer not registered",
        "workers not registered": "workers not registered",
        "wage below minimum": "wage below minimum",
        "arrears": "arrears",
    },
}


def name(kind: dict[str, dict[str, str]], code: str | None, language: str) -> str:
    """The name of `code` in `language`; an unknown code is shown as it is rather than hidden."""
    if code is None:
        return "–"
    return kind.get(language, kind["id"]).get(code, code)


def reasons(text: str | None, language: str) -> str:
    """The worklist's comma-separated reasons, each named in `language`."""
    if not text:
        return "–"
    return ", ".join(name(REASON_NAMES, part, language) for part in text.split(", "))
