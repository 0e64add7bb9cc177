"""The report at desktop (1280 px) and phone (390 px) width in headless Chromium, filtered to one branch:
this month's actions come first, everything follows the filter, the status column and the chart are in view."""

from __future__ import annotations

import json

import pytest

from tests.test_report_browser import DRAW_EVERY_CHART, Browser, browser, chromium, demo_report  # noqa: F401

pytestmark = pytest.mark.slow

IN_VIEW = """
((selector) => {
  const el = document.querySelector(selector);
  if (!el) return null;
  el.scrollIntoView({block: 'center', inline: 'nearest'});
  const box = el.getBoundingClientRect();
  return {left: box.left, right: box.right, top: box.top, bottom: box.bottom, width: box.width,
          viewport: window.innerWidth, height: window.innerHeight};
})
"""


def in_view(page: Browser, selector: str) -> dict:
    box = page.evaluate(f"({IN_VIEW})({json.dumps(selector)})")
    assert box is not None, selector
    return box


def fully_visible(box: dict) -> bool:
    return box["left"] >= -0.5 and box["right"] <= box["viewport"] + 0.5 and box["width"] > 0


@pytest.fixture(params=[1280, 390], ids=["desktop", "phone"])
def sized(request, chromium, tmp_path):  # noqa: F811
    started = Browser(tmp_path / "profile", width=request.param, height=900)
    started.call(
        "Emulation.setDeviceMetricsOverride",
        session=True,
        width=request.param,
        height=900,
        deviceScaleFactor=1,
        mobile=request.param < 600,
    )
    yield started, request.param
    started.close()


def test_branch_report_at_desktop_and_phone_width(sized, demo_report):  # noqa: F811
    page, width = sized
    page.open((demo_report / "index.html").as_uri() + "#branch=PEKALONGAN")
    drawn = page.evaluate(DRAW_EVERY_CHART, timeout=300)
    assert drawn and all(chart["state"] == "done" for chart in drawn)
    # nothing makes the page wider than the screen: wide tables scroll inside their own box
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    # "This month" is the first section, and its actions are the branch's
    assert page.evaluate("document.querySelector('main section').id") == "this-month"
    actions = page.evaluate(
        "[...document.querySelectorAll('#this-month li.action:not([hidden])')]"
        ".map(li => [li.dataset.kind, li.dataset.branch || null])"
    )
    # the demo's data-quality warning first (it concerns every scope), then 3 regions and 3 employers
    assert [kind for kind, _ in actions] == ["checks"] + ["region"] * 3 + ["employer"] * 3
    assert {branch for kind, branch in actions if kind != "checks"} == {"PEKALONGAN"}

    # the headline cards, the province table and the chart follow the filter
    assert page.evaluate(
        "[...document.querySelectorAll('.kpis[data-scope]:not([hidden])')].map(el => el.dataset.scope)"
    ) == ["branch:PEKALONGAN"]
    assert page.evaluate(
        "[...document.querySelectorAll('table.scopes tr[data-level=province]:not([hidden])')]"
        ".map(tr => tr.dataset.code)"
    ) == ["33"]
    assert page.evaluate("document.getElementById('scope-chart').dataset.scope") == "branch:PEKALONGAN"
    assert page.evaluate(
        "[...document.querySelectorAll('details.wl-group:not([hidden])')].every(el => el.dataset.branch === "
        "'PEKALONGAN')"
    )

    # the chart fits the screen
    chart = in_view(page, "#scope-chart svg")
    assert fully_visible(chart), chart
    assert chart["width"] >= min(width - 60, 600)

    # the status column of the first region is on screen, and stays there when the table is scrolled sideways
    status = "tr.region-row:not([hidden]) td.key"
    assert fully_visible(in_view(page, status))
    page.evaluate("document.querySelector('table.regions').parentElement.scrollLeft = 10000")
    box = page.evaluate(
        f"(() => {{ const b = document.querySelector({json.dumps(status)})"
        ".getBoundingClientRect(); return {left: b.left, right: b.right, width: b.width, "
        "viewport: window.innerWidth}; })()"
    )
    assert fully_visible(box), box
    assert page.evaluate(
        "document.querySelector('tr.region-row:not([hidden]) td.key .status').textContent"
    ).strip() in {"✖ Kritis", "▼ Tertinggal", "▲ Berisiko", "● Sesuai lintasan", "✔ Tercapai"}
    assert page.console_errors == []


def test_a_digest_link_opens_one_region_at_its_detail(browser, demo_report):  # noqa: F811
    """What a region's digest links to: #region=CODE&at=ANCHOR filters to the region and goes to the detail."""
    browser.open((demo_report / "index.html").as_uri() + "#region=3325&at=chart-3325")
    assert browser.evaluate("document.querySelectorAll('tr.region-row:not([hidden])').length") == 1
    assert browser.evaluate(
        "[...document.querySelectorAll('.kpis[data-scope]:not([hidden])')].map(el => el.dataset.scope)"
    ) == ["region:3325"]
    assert browser.evaluate("document.getElementById('scope-chart').dataset.scope") == "region:3325"
    top = browser.evaluate("document.getElementById('chart-3325').getBoundingClientRect().top")
    assert 0 <= top < 200  # scrolled to the region's chart
    assert browser.console_errors == []
