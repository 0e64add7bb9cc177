"""Data Docs render a suite's page again only when the suite changed or its page is gone: both check
stages rebuild the docs every run, and a suite's page does not depend on the run."""

from __future__ import annotations

from flows import checks, gx_setup


def _page(settings, name: str):
    return settings.data_docs_dir / "expectations" / f"{name.replace('.', '/')}.html"


def test_suite_pages_are_rendered_again_only_when_their_suite_changed(settings):
    definitions = [checks.read_suite(path) for path in checks.suite_files("build.")]
    names = [definition["name"] for definition in definitions]
    assert gx_setup.stale_suite_pages(settings, definitions) == names  # nothing rendered yet

    for name in names:
        _page(settings, name).parent.mkdir(parents=True, exist_ok=True)
        _page(settings, name).write_text("<html></html>", encoding="utf-8")
    gx_setup.mark_suite_pages(settings, definitions)
    assert gx_setup.stale_suite_pages(settings, definitions) == []

    changed = {**definitions[0], "expectations": definitions[0]["expectations"][:-1]}
    assert gx_setup.stale_suite_pages(settings, [changed, *definitions[1:]]) == [names[0]]
    _page(settings, names[1]).unlink()
    assert gx_setup.stale_suite_pages(settings, definitions) == [names[1]]
