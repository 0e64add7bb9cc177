"""The names managers read for the marts' codes: one source, the report's word templates (and the segments'
seed), read by flows/labels.py for the report, the digests' actions and the worklist file."""

from jinja2 import Environment, PackageLoader

from flows import formats, labels, report


def _words(language: str):
    return Environment(loader=PackageLoader("flows", "templates")).get_template(f"report_words_{language}.j2").module


def test_names_are_the_word_templates_tables_in_both_languages():
    for language in labels.LANGUAGES:
        words = _words(language)
        assert labels.STEP_NAMES[language] == words.step_names
        assert labels.STEP_DESCRIPTIONS[language] == words.step_descriptions
        assert labels.LEVEL_NAMES[language] == words.level_names
        assert labels.REASON_NAMES[language] == words.reason_names
        # every sanction step and level is named, in each language
        assert set(labels.STEP_NAMES[language]) == set(labels.SANCTION_STEPS)
        assert set(labels.STEP_DESCRIPTIONS[language]) == set(labels.SANCTION_STEPS)
        assert set(labels.LEVEL_NAMES[language]) == {"national", "province", "branch", "region"}
        assert all(labels.STEP_NAMES[language].values()) and all(labels.STEP_DESCRIPTIONS[language].values())


def test_the_reports_cells_name_reasons_as_the_labels_do():
    """The report's `value_labels` take their reasons from `reason_names`, not a copy of them."""
    for language in labels.LANGUAGES:
        for code, named in labels.REASON_NAMES[language].items():
            assert report.VALUE_LABELS[language][code] == named
            assert report.cell(code, "reasons", language) == named
    assert labels.reasons("arrears, wage below minimum", "id") == "menunggak iuran, upah di bawah UMK"
    assert labels.name(labels.STEP_NAMES, "FINE", "en") == "Administrative fine"


def test_an_unknown_code_is_shown_as_it_is_and_a_missing_one_as_empty():
    assert labels.name(labels.STEP_NAMES, "NEW_STEP", "en") == "NEW_STEP"
    assert labels.name(labels.LEVEL_NAMES, None, "id") == formats.EMPTY
    assert labels.reasons("", "en") == formats.EMPTY
