"""The web explorer's pages from the real server: home, answer (with the timeline's data and
the bundled chart library), country, measurement; CSV from every table; a hostile body shown
as text. (Browser tests with Playwright and chromium come with the rest of the explorer.)"""

from __future__ import annotations

import csv
import io
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from .answers_history import series, write
from .conftest import reachwatch, serving

T0 = datetime(2017, 4, 17)
BLOCK = (datetime(2017, 5, 8), datetime(2017, 5, 22))
SAMPLE = (Path(__file__).parent.parent / "samples" / "ooni" / "fastpath"
          / "20250527233111.802678_ID_webconnectivity_5a37ec909dbf14e3.json")  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("web") / "w.duckdb"
    write(
        db, series(29049, "skype/calls", T0, 42, 2, BLOCK) + series(31721, "skype/calls", T0, 42, 2)
    )
    claims = Path(__file__).parent.parent / "reachwatch" / "answers" / "data"
    assert reachwatch("claims", "add", str(claims / "article-skype-az.yaml"), "--db", str(db))
    with serving(db) as base:
        yield base


def page(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=30) as reply:
        return reply.read().decode(), reply.headers.get("content-type", "")


def post(url: str, body: object) -> dict:
    request = urllib.request.Request(url, orjson.dumps(body), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return orjson.loads(reply.read())


def test_the_answer_page_has_the_card_the_timeline_and_the_evidence(server: str) -> None:
    home, kind = page(f"{server}/")
    assert kind.startswith("text/html") and 'action="/answer"' in home
    html, _ = page(f"{server}/answer?subject=skype&cc=az&at=2017-05-15")
    assert '<span class="partially" id="status">partially blocked</span>' in html
    assert '<script src="/static/uPlot.iife.min.js"></script>' in html  # bundled, no CDN
    data = re.search(r'<script type="application/json" class="timeline" data-target="skype/calls">'
                     r"(.*?)</script>", html, re.S)  # fmt: skip
    assert data is not None
    days = orjson.loads(data.group(1))
    assert {
        "measurement_start_day": "2017-05-08",
        "probe_asn": "AS29049",
        "blocked_count": 2,
        "ok_count": 0,
        "down_count": 0,
        "error_count": 0,
        "measurement_count": 2,
    } in days
    uid = re.search(r'<a class="evidence" href="/measurement/([^"]+)">', html)
    assert uid is not None
    evidence, _ = page(f"{server}/measurement/{uid.group(1)}")
    assert "skype/calls" in evidence
    script, kind = page(f"{server}/static/uPlot.iife.min.js")
    assert "uPlot" in script and "javascript" in kind


def test_every_table_downloads_as_csv(server: str) -> None:
    card, kind = page(f"{server}/answer?subject=skype&cc=AZ&at=2017-05-15&format=csv")
    assert kind.startswith("text/csv") and card.splitlines()[0].startswith("target,asn,network")
    html, _ = page(f"{server}/answer?subject=skype&cc=AZ&at=2017-05-15")
    links = re.findall(r'<a class="csv" href="\?([^"]+)">CSV</a>', html)
    headers = {}
    for link in links:
        query = link.replace("&amp;", "&")
        rows = list(csv.DictReader(io.StringIO(page(f"{server}/answer?{query}")[0])))
        assert rows, query
        headers[query.rsplit("table=", 1)[1]] = set(rows[0])
    assert set(headers) == {"features", "networks", "episodes", "claims"}
    assert {"target", "status", "since", "technique"} <= headers["features"]
    assert {"target", "network", "status", "measurements"} <= headers["networks"]
    assert {"target", "start", "end", "networks", "technique"} <= headers["episodes"]
    assert {"id", "says", "check_outcome", "check_reason", "conflicts"} <= headers["claims"]
    with pytest.raises(urllib.error.HTTPError, match="422"):
        page(f"{server}/answer?subject=skype&cc=AZ&format=csv&table=nope")
    country, _ = page(f"{server}/country/AZ?format=csv")
    assert country.splitlines()[0].startswith("target,probe_cc,probe_asn,network_name,verdict")
    html, _ = page(f"{server}/country/AZ")
    assert "skype/calls" in html and "Delta Telecom" in html


def test_a_hostile_body_is_shown_as_text(server: str) -> None:
    measurement = orjson.loads(SAMPLE.read_bytes())
    hostile = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'
    for request in measurement["test_keys"]["requests"] or []:
        if request.get("response"):
            request["response"]["body"] = hostile
    measurement["input"] = "http://evil.example/<script>alert(2)</script>"
    report = post(f"{server}/report", {"test_name": "web_connectivity", "probe_cc": "ID",
                                       "probe_asn": "AS7713", "format": "json"})  # fmt: skip
    uid = post(f"{server}/report/{report['report_id']}",
               {"format": "json", "content": measurement})["measurement_uid"]  # fmt: skip
    html, _ = page(f"{server}/measurement/{uid}")
    assert "<script>document" not in html and "<img src=x" not in html
    assert "&lt;script&gt;document.title" in html or "\\u003cscript" in html
    assert "<script>alert(2)" not in html


def test_a_csv_has_every_rows_columns_and_a_cell_each() -> None:
    from reachwatch.web import _flat, csv_response

    rows = [{"a": 1, "tunnels": {}}, {"a": 2, "tunnels": {"restored": 3}, "ids": ["x", "y"],
                                      "conflicts": [{"with": "b"}]}]  # fmt: skip
    reply = csv_response([_flat(r) for r in rows], "t")
    parsed = list(csv.DictReader(io.StringIO(bytes(reply.body).decode())))
    assert list(parsed[0]) == ["a", "tunnels_restored", "ids", "conflicts"]
    assert parsed[0] == {"a": "1", "tunnels_restored": "", "ids": "", "conflicts": ""}
    assert parsed[1] == {"a": "2", "tunnels_restored": "3", "ids": "x y",
                         "conflicts": '[{"with":"b"}]'}  # fmt: skip
