"""Names managers use for the codes the marts hold, in Indonesian and English.

The marts keep codes (`PBI_APBN`, `WRITTEN_WARNING_1`, `branch`): they are stable
keys for scripts and dashboards. Everything a person reads (the report, the
digests, the worklist file for the manpower office) shows these names instead. Segment names are in
their seed (seeds/segments.csv), the others in the report's word templates: this module only reads them.
"""

from __future__ import annotations

from flows import codes, formats, words

LANGUAGES = ("id", "en")
_TEMPLATES = {language: words.module(f"report_words_{language}.j2") for language in LANGUAGES}  # shared with the report


def _words(table: str) -> dict[str, dict[str, str]]:
    """language -> code -> name, from the table of that name in each language's report words."""
    return {language: dict(getattr(_TEMPLATES[language], table)) for language in LANGUAGES}


# Segment codes and their names, long and short (for chart legends, where a long name would squeeze
# the bars on a phone): seeds/segments.csv (flows/codes.py).
SEGMENTS, SEGMENT_NAMES, SEGMENT_SHORT_NAMES = codes.SEGMENTS, codes.SEGMENT_NAMES, codes.SEGMENT_SHORT_NAMES

# PP 86/2013's steps, the most urgent (furthest along) first.
SANCTION_STEPS = ("NO_PUBLIC_SERVICES", "FINE", "WRITTEN_WARNING_2", "WRITTEN_WARNING_1")

# The names of steps, levels and reasons, per language, are words of the report beside the rest of its words
# (templates/report_words_<language>.j2: `step_names`, `step_descriptions`, `level_names`, `reason_names`).
STEP_NAMES = _words("step_names")
STEP_DESCRIPTIONS = _words("step_descriptions")  # with what each step asks, for the worklist file
LEVEL_NAMES = _words("level_names")
REASON_NAMES = _words("reason_names")


def name(kind: dict[str, dict[str, str]], code: str | None, language: str) -> str:
    """The name of `code` in `language`; an unknown code is shown as it is rather than hidden."""
    if code is None:
        return formats.EMPTY
    return kind.get(language, kind["id"]).get(code, code)


def reasons(text: str | None, language: str) -> str:
    """The worklist's comma-separated reasons, each named in `language`."""
    if not text:
        return formats.EMPTY
    return ", ".join(name(REASON_NAMES, part, language) for part in text.split(", "))
