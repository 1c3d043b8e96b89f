"""The explorer in a real browser: Playwright drives Debian's chromium (`./dev` installs both)
against `reachwatch serve`. A user asks the home page, gets the answer page with its chart
drawn, follows an evidence link to the raw measurement, and a measurement holding `<script>`
shows it as text, as do the answer, country and measurement pages of test_hostile.py's
measurements (HTML, SQL, control characters, NUL, bidi overrides, a 10 MB body) with no script
run. On a phone-sized screen nothing overflows sideways. Screenshots go to
`artifacts/screenshots/` (or $REACHWATCH_ARTIFACTS) for a person to look at."""

from __future__ import annotations

import html
import os
import re
import shutil
import time
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from playwright.sync_api import Browser, Locator, Page, sync_playwright

from .answers_history import series, write
from .conftest import serving
from .test_hostile import MARK, Hostile, submit_hostile
from .test_web import SAMPLE, post

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# as root on a closed network: no sandbox, and none of chromium's calls home
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
         "--disable-background-networking", "--disable-component-update"]  # fmt: skip
ARTIFACTS = Path(
    os.environ.get("REACHWATCH_ARTIFACTS", Path(__file__).parent.parent / "artifacts")
) / "screenshots"  # fmt: skip
PHONE = {"width": 390, "height": 844}

T0 = datetime(2017, 4, 17)
BLOCK = (datetime(2017, 5, 8), datetime(2017, 5, 22))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("browser") / "b.duckdb"
    write(
        db,
        series(29049, "skype/calls", T0, 42, 2, BLOCK)
        + series(31721, "skype/calls", T0, 42, 2)
        + series(29049, "skype/messaging", T0, 42, 2),
    )
    with serving(db) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `./dev test` installs it (apt-get)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page that fails its test on any script error, and whose alert() is recorded."""
    size = PHONE if "phone" in request.node.name else {"width": 1280, "height": 900}
    context = browser.new_context(viewport=size)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    opened.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"),
                                         dialog.dismiss()))  # fmt: skip
    yield opened
    context.close()
    assert problems == []


def painted(canvas: Locator, colour: str) -> int:
    """How many pixels of the canvas are (nearly) this colour."""
    return int(canvas.evaluate(
        """(c, hex) => { const [r, g, b] = [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16));
           const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data; let n = 0;
           for (let i = 0; i < d.length; i += 4) {
             const off = Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b);
             if (d[i + 3] > 200 && off < 30) n++; }
           return n; }""", colour))  # fmt: skip


def shoot(page: Page, name: str, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 5_000  # a picture of a page, not an empty canvas
    return path


def test_search_answer_chart_and_evidence(server: str, page: Page) -> None:
    page.goto(f"{server}/")
    page.fill("input[name=subject]", "skype")
    page.fill("input[name=cc]", "AZ")
    page.fill("input[name=at]", "2017-05-15")
    shoot(page, "home")
    page.click("button[type=submit]")
    page.wait_for_url("**/answer?**")
    assert page.inner_text("#status") == "partially blocked"
    # uPlot drew a chart per feature and network: a canvas with bars painted in it
    calls = 'div.chart[data-target="skype/calls"]'
    page.wait_for_selector(f'{calls}[data-network="AS29049"][data-drawn="yes"] canvas')
    assert page.locator("div.chart[data-drawn=yes]").count() == 3  # calls x 2, messaging x 1
    blocked_net = page.locator(f'{calls}[data-network="AS29049"] canvas').first
    box = blocked_net.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 80
    red, green = painted(blocked_net, "#b00020"), painted(blocked_net, "#1b7f3b")
    assert red > 500 and green > 500  # blocked days and ok days both show
    assert painted(page.locator(f'{calls}[data-network="AS31721"] canvas').first, "#b00020") == 0
    legend = page.inner_text(f'{calls}[data-network="AS29049"] .u-legend')
    assert "ok" in legend and "blocked" in legend and "error" in legend
    shoot(page, "answer")

    evidence = page.locator("a.evidence").first
    uid = evidence.inner_text()
    evidence.click()
    page.wait_for_url(f"**/measurement/{uid}")
    assert uid in page.inner_text("main")
    assert "skype/calls" in page.inner_text("#verdicts")
    shoot(page, "measurement")


def test_a_script_in_a_real_measurement_is_shown_as_text(server: str, page: Page) -> None:
    """A real OONI measurement, its page bodies made hostile, submitted to the collector: its
    answer page links to it, and its measurement page shows the raw JSON as text."""
    measurement = orjson.loads(SAMPLE.read_bytes())
    hostile = '<script>document.title="pwned";alert(1)</script><img src=x onerror=alert(2)>'
    for request in measurement["test_keys"]["requests"] or []:
        if request.get("response"):
            request["response"]["body"] = hostile
    report = post(f"{server}/report", {"test_name": "web_connectivity", "probe_cc": "ID",
                                       "probe_asn": "AS7713", "format": "json"})  # fmt: skip
    uid = post(f"{server}/report/{report['report_id']}",
               {"format": "json", "content": measurement})["measurement_uid"]  # fmt: skip
    page.goto(f"{server}/answer?subject=archive.org&cc=ID&at=2025-05-28")
    page.click(f'a.evidence[href="/measurement/{uid}"]')
    page.wait_for_url(f"**/measurement/{uid}")
    assert page.title() != "pwned"
    raw = page.inner_text("#raw")
    assert '"input": "http://archive.org"' in raw and '"probe_asn": "AS23693"' in raw
    assert '<script>document.title=\\"pwned\\"' in raw and "<img src=x onerror" in raw
    assert page.locator("main script, main img").count() == 0  # text, not elements
    shoot(page, "hostile-measurement")
    # the page's `dialog` handler records any alert(); the fixture fails the test on one


@pytest.mark.parametrize("path", ["/", "/answer?subject=skype&cc=AZ&at=2017-05-15", "/country/AZ"])
def test_phone_layout_does_not_overflow(server: str, page: Page, path: str) -> None:
    page.goto(f"{server}{path}")
    page.wait_for_load_state("networkidle")
    width = page.evaluate("window.innerWidth")
    assert width == PHONE["width"]
    # the page itself never scrolls sideways: wide tables scroll inside their own box
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for chart in page.locator("div.chart canvas").all():
        box = chart.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    font = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert font >= 16  # readable without zooming
    name = "phone-" + (path.strip("/").split("?")[0].replace("/", "-") or "home")
    shoot(page, name)


@pytest.fixture(scope="module")
def hostile(server: str) -> Hostile:
    """test_hostile.py's measurements (HTML, SQL, control characters, NUL, bidi overrides in
    every text, one with a 10 MB body), submitted once to this module's server."""
    return submit_hostile(server)


SHOWN = MARK.split("\x00")[0]  # what stays one run of text (the HTML parser replaces a NUL)
HOSTILE_PAGES: dict[str, Callable[[Hostile], str]] = {
    "answer-web": lambda h: "/answer?subject=hostile.example&cc=ID&at=2025-05-28",
    "answer-app": lambda h: "/answer?subject=whatsapp&cc=IE&at=2022-12-03",
    "country-ID": lambda h: "/country/ID",
    "country-IE": lambda h: "/country/IE",
    "measurement-web": lambda h: f"/measurement/{urllib.parse.quote(h.web, safe='')}",
    "measurement-app": lambda h: f"/measurement/{h.app}",
    "measurement-big": lambda h: f"/measurement/{h.big}",
}
SCRIPTS = {"/static/uPlot.iife.min.js", "application/json timeline", "inline chart"}
"""The only scripts a page may hold: the chart library, the charts' data, the charts."""


@pytest.mark.parametrize("name", HOSTILE_PAGES)
def test_hostile_strings_are_inert_text(
    server: str, page: Page, hostile: Hostile, name: str
) -> None:
    """Each page shows the strings as text: its title is the one the server sent, it holds no
    element nor script the strings would make, and no script fails or opens a dialog (the
    `page` fixture fails the test on either). The 10 MB body's page loads at once (cut)."""
    started = time.monotonic()
    response = page.goto(server + HOSTILE_PAGES[name](hostile))
    page.wait_for_load_state("networkidle")
    assert response is not None and response.status == 200
    assert time.monotonic() - started < 15
    sent = re.search(r"<title>(.*?)</title>", response.text(), re.S)
    assert sent is not None
    assert page.title() == re.sub(r"[\t\n\f\r ]+", " ", html.unescape(sent.group(1))).strip()
    assert "pwned" not in page.title()
    assert page.locator("img, iframe, object, embed, [onerror], [onload]").count() == 0
    scripts = page.evaluate("""[...document.scripts].map(s => s.getAttribute("src")
        || (s.type ? `${s.type} ${s.className}` : s.text.includes("a chart per feature")
        && "inline chart" || s.text.slice(0, 80)))""")  # fmt: skip
    assert set(scripts) <= SCRIPTS
    if name.startswith("measurement"):
        raw = page.inner_text("#raw")
        assert orjson.dumps(SHOWN)[1:-1].decode() in raw  # JSON text, shown as it is
        assert ("[cut: " in raw) == (name == "measurement-big")
    else:
        assert SHOWN in page.inner_text("main")
    if name == "answer-web":  # the chart of a target named by the hostile URL is drawn
        assert page.locator("div.chart[data-drawn=yes] canvas").count() == 1
    shoot(page, f"hostile-{name}", full_page=name != "measurement-big")
