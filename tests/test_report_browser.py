"""The report in a real browser: Debian's headless Chromium, from file://, with the network cut off.

Chromium is driven over the DevTools protocol (the `websockets` client): every
console error, uncaught exception and network request is recorded; charts are
scrolled into view as a reader would (they are drawn lazily) and each must end
as an SVG; the screenshot must not be blank. Also: a 514-region report filtered
to a province, a branch and a name.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests import rows
from tests.conftest import TEST_KEY

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    # nothing leaves the machine: every request that is not file:// goes to a closed port
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, profile: Path, width: int = 1280, height: int = 900):
        self.process = subprocess.Popen(
            [
                chromium_path(),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.console_errors: list[str] = []
        self.requests: list[str] = []
        self._id = 0
        url = self._devtools_url()
        self.socket = connect(url, max_size=None, open_timeout=30)
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)
        self.call(
            "Network.emulateNetworkConditions",
            session=True,
            offline=True,
            latency=0,
            downloadThroughput=-1,
            uploadThroughput=-1,
        )
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def _devtools_url(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            if match:
                return match.group(1)
            if not line and self.process.poll() is not None:
                break
        raise RuntimeError("chromium did not start its DevTools endpoint")

    def _record(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
            self.console_errors.append(
                " ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"])
            )
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.console_errors.append(details.get("exception", {}).get("description") or details.get("text"))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.console_errors.append(params["entry"]["text"] + " " + params["entry"].get("url", ""))
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])

    def call(self, method: str, session: bool = False, timeout: float = 60, **params) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        self.socket.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self.socket.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._record(reply)

    def wait_for_event(self, method: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            self._record(message)
            if message.get("method") == method:
                return message["params"]

    def open(self, url: str) -> None:
        self.call("Page.navigate", session=True, url=url)
        self.wait_for_event("Page.loadEventFired")

    def evaluate(self, expression: str, timeout: float = 60):
        result = self.call(
            "Runtime.evaluate",
            session=True,
            timeout=timeout,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"].get("exception", {}).get("description"))
        return result["result"].get("value")

    def screenshot(self, scale: float = 1.0) -> bytes:
        """The visible part of the page as PNG (scaled down, it is quicker to check)."""
        viewport = self.call("Page.getLayoutMetrics", session=True)["cssVisualViewport"]
        clip = {
            "x": viewport["pageX"],
            "y": viewport["pageY"],
            "width": viewport["clientWidth"],
            "height": viewport["clientHeight"],
            "scale": scale,
        }
        return base64.b64decode(self.call("Page.captureScreenshot", session=True, format="png", clip=clip)["data"])

    def close(self) -> None:
        try:
            self.socket.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# Scroll every visible chart into view in turn, as a reader would, and report how each one ended.
DRAW_EVERY_CHART = """
(async () => {
  const charts = [...document.querySelectorAll('.chart')].filter(el => el.offsetParent !== null);
  const out = [];
  for (const el of charts) {
    el.scrollIntoView({block: 'center'});
    const start = performance.now();
    while (!['done', 'error', 'empty'].includes(el.dataset.state) && performance.now() - start < 20000) {
      await new Promise(resolve => setTimeout(resolve, 20));
    }
    const svg = el.querySelector('svg');
    out.push({scope: el.dataset.scope, kind: el.dataset.chart, state: el.dataset.state || null,
              svg: !!svg, marks: svg ? svg.querySelectorAll('path, line, rect').length : 0});
  }
  window.scrollTo(0, 0);
  return out;
})()
"""


def png_pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA PNG (what Chromium writes) into rows of raw pixel bytes."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat, header = 8, b"", None
    while position < len(png):
        length, kind = struct.unpack(">I4s", png[position : position + 8])
        body = png[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    channels = 3 if colour == 2 else 4
    stride = width * channels
    raw = zlib.decompress(idat)
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                line[x] = (line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, rows


def distinct_colours(png: bytes, step: int = 4) -> int:
    """How many different colours a sample of the image's pixels has (1 for a blank page)."""
    width, height, rows = png_pixels(png)
    channels = len(rows[0]) // width
    colours = set()
    for row in rows[::step]:
        for x in range(0, width, step):
            colours.add(row[x * channels : x * channels + 3])
    return len(colours)


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chromium():
    path = chromium_path()
    if path is None:
        pytest.fail("headless Chromium is needed: `make browser` (apt-get install chromium)")
    return path


@pytest.fixture
def browser(chromium, tmp_path):
    started = Browser(tmp_path / "chromium-profile")
    yield started
    started.close()


def _publish_demo(home: Path) -> Path:
    from flows import database, report
    from flows.settings import Settings

    settings = Settings(home=home, pseudonym_key=TEST_KEY)
    con = database.connect(settings)
    try:
        rows.publish_demo(con, settings)
        con.execute(
            "insert into ops.dq_results values ('run-1', 'build.coverage', 'expect_column_values_to_be_between', "
            "'warning', false, '1 value above 100', null, now())"
        )
        report.write(con, settings)
    finally:
        con.close()
    return settings.report_dir


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory) -> Path:
    return _publish_demo(tmp_path_factory.mktemp("demo"))


# Three months of made-up counts for every region, written as extract files (DuckDB writes them; quick).
NATIONAL_COUNTS = """
copy (
    with regions as (
        select region_code, row_number() over (order by region_code) as n,
            150000 + 997 * row_number() over (order by region_code) as population
        from ref.regions
    ),
    enrolled as (
        select region_code, round(population * (0.80 + (n % 19) / 100 + $step * 0.002))::bigint as total
        from regions
    )
    select enrolled.region_code, 'PBPU' as segment, split.status, split.participants
    from enrolled, lateral (
        select 'ACTIVE' as status, round(enrolled.total * 0.86)::bigint as participants
        union all select 'INACTIVE', enrolled.total - round(enrolled.total * 0.86)::bigint
    ) as split
) to '{path}' (header)
"""


@pytest.fixture(scope="module")
def national_report(tmp_path_factory) -> tuple[Path, dict]:
    """A report over all 514 regions, and how many regions each filter should leave."""
    from flows import database, ingest, metrics, report
    from flows.settings import Settings

    settings = Settings(home=tmp_path_factory.mktemp("national"), pseudonym_key=TEST_KEY)
    con = database.connect(settings)
    try:
        database.load_seeds(con, settings.seeds)
        landing = settings.landing_dir
        landing.mkdir(parents=True)
        for growth, period in enumerate(("2021-S2", "2022-S1")):
            con.execute(
                f"copy (select region_code, 150000 + 997 * row_number() over (order by region_code) + {growth * 500} "
                f"as population from ref.regions) to '{landing / f'population_{period}.csv'}' (header)"
            )
        for step, month in enumerate(("2022-06", "2022-07", "2022-08")):
            con.execute(NATIONAL_COUNTS.format(path=landing / f"region_counts_{month}.csv"), {"step": step})
        loaded = ingest.ingest_files(con, ingest.discover(landing))
        assert {result.status for result in loaded} == {"staged"}
        metrics.build(con)
        metrics.publish(con)
        report.write(con, settings)
        count = "select count(*) from ref.regions where "
        layout = {
            "regions": con.execute(
                "select count(*) from mart.coverage where level = 'region' and month = '2022-08-01'"
            ).fetchone()[0],
            "province_33": con.execute(count + "province_code = '33'").fetchone()[0],
            "branch_serang": con.execute(count + "branch_office = 'SERANG'").fetchone()[0],
            "named_kota": con.execute(count + "province_code = '33' and lower(region_name) like '%kota%'").fetchone()[
                0
            ],
        }
    finally:
        con.close()
    return settings.report_dir, layout


def _check_page(browser: Browser, page: Path, expected_charts: int) -> None:
    browser.open(page.as_uri())
    drawn = browser.evaluate(DRAW_EVERY_CHART, timeout=300)
    assert len(drawn) == expected_charts
    for chart in drawn:
        assert chart["state"] == "done" and chart["svg"] and chart["marks"] > 10, chart
    assert browser.console_errors == []
    assert [url for url in browser.requests if not url.startswith(("file:", "data:", "about:"))] == []
    colours = distinct_colours(browser.screenshot(scale=0.5))
    assert colours > 50, "the screenshot looks blank"


def test_demo_report_draws_every_chart_offline(browser, demo_report):
    # 12 regions, the scope trajectory and the segment mix
    _check_page(browser, demo_report / "index.html", expected_charts=12 + 2)
    text = browser.evaluate("document.body.innerText")
    assert "Cakupan JKN" in text and "Kab. Pekalongan" in text
    assert "1 dari 1 pemeriksaan tidak lolos" in text  # the run's data-quality warning
    svg_text = browser.evaluate("document.querySelector('#scope-chart svg').textContent")
    assert "Cakupan (%)" in svg_text and "Target 98%" in svg_text
    # the axis numbers use the Indonesian decimal comma where they have decimals
    assert "." not in browser.evaluate(
        "[...document.querySelectorAll('#scope-chart svg .role-axis-label text')].map(t => t.textContent).join(' ')"
    ).replace("Jan", "")


def test_english_report_draws_every_chart_offline(browser, demo_report):
    _check_page(browser, demo_report / "index.en.html", expected_charts=12 + 2)
    assert "Coverage (%)" in browser.evaluate("document.querySelector('#scope-chart svg').textContent")


def test_national_report_filters_to_a_province_a_branch_and_a_name(browser, national_report):
    folder, layout = national_report
    page = folder / "index.html"
    assert layout["regions"] == 514
    # everything the page needs is in the one file, and it stays small enough to open at once
    assert page.stat().st_size < 4_000_000
    browser.open(page.as_uri())
    visible_rows = "document.querySelectorAll('tr.region-row:not([hidden])').length"
    assert browser.evaluate(visible_rows) == 514
    # only the charts near the top are drawn until the reader scrolls (514 charts are not drawn at load)
    drawn_at_load = browser.evaluate("document.querySelectorAll('.card .chart svg').length")
    assert drawn_at_load < 50

    choose = (
        "(id, value) => { const el = document.getElementById(id); el.value = value; "
        "el.dispatchEvent(new Event('change')); }"
    )
    browser.evaluate(f"({choose})('f-province', '33')")
    assert browser.evaluate(visible_rows) == layout["province_33"]
    assert browser.evaluate("document.querySelectorAll('.card:not([hidden])').length") == layout["province_33"]
    assert browser.evaluate("document.getElementById('scope-chart').dataset.scope") == "province:33"
    assert browser.evaluate("document.getElementById('scope-name').textContent") == "Jawa Tengah"
    assert f"{layout['province_33']} dari 514" in browser.evaluate("document.getElementById('f-count').textContent")
    assert "province=33" in browser.evaluate("location.hash")
    # every chart of the province draws when scrolled to
    drawn = browser.evaluate(DRAW_EVERY_CHART, timeout=300)
    assert len(drawn) == layout["province_33"] + 2
    assert all(chart["state"] == "done" and chart["svg"] for chart in drawn)
    assert {"scope": "province:33", "kind": "trajectory_wide"} in [
        {"scope": chart["scope"], "kind": chart["kind"]} for chart in drawn
    ]

    browser.evaluate(f"({choose})('f-search', '')")
    browser.evaluate(
        "(() => { const el = document.getElementById('f-search'); el.value = 'kota'; "
        "el.dispatchEvent(new Event('input')); })()"
    )
    browser.evaluate("new Promise(resolve => setTimeout(resolve, 400))")
    assert browser.evaluate(visible_rows) == layout["named_kota"]

    browser.evaluate(
        "(() => { const el = document.getElementById('f-search'); el.value = ''; "
        "el.dispatchEvent(new Event('input')); })()"
    )
    browser.evaluate("new Promise(resolve => setTimeout(resolve, 400))")
    browser.evaluate(f"({choose})('f-province', '')")
    browser.evaluate(f"({choose})('f-branch', 'SERANG')")
    assert browser.evaluate(visible_rows) == layout["branch_serang"]
    assert browser.evaluate("document.getElementById('f-province').value") == "36"  # the branch's province
    assert browser.evaluate("document.getElementById('scope-chart').dataset.scope") == "branch:SERANG"
    drawn = browser.evaluate(DRAW_EVERY_CHART, timeout=300)
    assert len(drawn) == layout["branch_serang"] + 2
    assert all(chart["state"] == "done" and chart["svg"] for chart in drawn)
    assert browser.console_errors == []
    assert [url for url in browser.requests if not url.startswith(("file:", "data:", "about:"))] == []


def test_a_bookmarked_filter_is_restored(browser, national_report):
    folder, layout = national_report
    browser.open((folder / "index.html").as_uri() + "#province=33")
    assert browser.evaluate("document.querySelectorAll('tr.region-row:not([hidden])').length") == layout["province_33"]
    assert browser.evaluate("document.getElementById('f-province').value") == "33"


if __name__ == "__main__":
    # The README's screenshots of the demo report, at desktop and phone width:
    #   python -m tests.test_report_browser docs/report.png [REPORT_FOLDER written by `jkn demo`] [WIDTH] [#FILTER]
    #   python -m tests.test_report_browser docs/report-phone.png data/report 390 '#branch=PEKALONGAN'
    import sys
    import tempfile

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/report.png")
    width = int(sys.argv[3]) if len(sys.argv) > 3 else 1280
    fragment = sys.argv[4] if len(sys.argv) > 4 else ""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(sys.argv[2]) if len(sys.argv) > 2 else _publish_demo(Path(scratch) / "home")
        height = 2350 if width >= 600 else 2600
        shot = Browser(Path(scratch) / "profile", width=width, height=height)
        try:
            shot.call(
                "Emulation.setDeviceMetricsOverride",
                session=True,
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=width < 600,
            )
            shot.open((folder / "index.html").resolve().as_uri() + fragment)
            shot.evaluate(DRAW_EVERY_CHART, timeout=300)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(shot.screenshot())
        finally:
            shot.close()
    print(target)
