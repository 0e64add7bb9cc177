"""Data Docs read offline: after a real check run, the index and validation pages load only vendored
scripts and styles, and headless Chromium with no network fills the index's list of validations."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from flows import checks
from tests.fixtures.checks import batches

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--virtual-time-budget=5000",
    # no network at all: a page that still needed a CDN would stay empty
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
]


def test_pages_load_no_script_or_stylesheet_from_the_network(settings):
    batches.prepare(settings)
    checks.gate(settings, checks.suite_files("staging."), "run-offline")
    pages = list(settings.data_docs_dir.rglob("*.html"))
    assert len(pages) > 5
    for page in pages:
        html = page.read_text(encoding="utf-8")
        remote = re.findall(r'<(?:script|link)\b[^>]*(?:src|href)="(https?://[^"]+)"', html)
        assert remote == [], (page, remote)
        for local in re.findall(r'(?:src|href)="((?:\.\./)*static/vendor/[^"]+)"', html):
            assert (page.parent / local).is_file(), (page, local)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (make test installs it)")
def test_the_index_lists_the_validations_in_a_browser_without_network(settings, tmp_path):
    batches.prepare(settings)
    checks.gate(settings, checks.suite_files("staging."), "run-offline")
    dom = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            (settings.data_docs_dir / "index.html").resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    rows = re.findall(r'<tr[^>]*data-href="([^"]+)"[^>]*data-index="\d+"', dom)
    # bootstrap-table drew both lists: this run's five validations, and the suites (10 to a page)
    assert len([href for href in rows if href.startswith("validations/") and "run-offline" in href]) == 5
    assert len([href for href in rows if href.startswith("expectations/")]) == 10
