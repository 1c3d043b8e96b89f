"""Hostile strings through the collector, the API and the pages of `reachwatch serve` (the
browser half is in test_browser.py). Real measurements whose input, network name, bodies,
headers, failure strings and uid hold HTML, SQL, control characters, NUL and bidi overrides
(and one with a 10 MB body) come in through the collector; hostile query parameters and paths
go to every route. Nothing answers 500: JSON stays JSON and gives the strings back as data, a
refusal says why, pages escape them, and the SQL fragments stay data: every table is intact."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.fuzz import HOSTILE
from reachwatch.store import Store

from .conftest import FASTPATH, serving
from .test_web import SAMPLE

MARK = ("<script>document.title='pwned';alert(1)</script>\"><img src=x onerror=alert(2)>"
        "'; DROP TABLE verdicts; --\x00\x01\x1b[31m\u202eevil\u202c")  # fmt: skip
"""One string with every kind of hostile text, put wherever a measurement holds text."""
BIG = 10 * 1024 * 1024
TABLES = ("measurements", "observations", "verdicts", "quarantine")


@dataclass(frozen=True)
class Hostile:
    """The uids the collector gave the hostile measurements."""

    web: str  # web_connectivity in ID, archive.org's sample: hostile everywhere
    big: str  # the same with a 10 MB body
    app: str  # whatsapp in IE: hostile failures and network name


def call(url: str, body: bytes | None = None) -> tuple[int, bytes, str]:
    """Status, body and content type; a refusal is an answer too."""
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, reply.read(), reply.headers.get("content-type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("content-type", "")


def submit(base: str, content: dict[str, Any]) -> tuple[int, Any]:
    """One measurement through OONI's flow: open a report for its test, submit to it."""
    meta = {"test_name": content["test_name"], "probe_cc": content["probe_cc"],
            "probe_asn": content["probe_asn"], "format": "json"}  # fmt: skip
    status, body, _ = call(f"{base}/report", orjson.dumps(meta))
    assert status == 200, body
    report = orjson.loads(body)["report_id"]
    payload = orjson.dumps({"format": "json", "content": content})
    status, body, _ = call(f"{base}/report/{urllib.parse.quote(report)}", payload)
    return status, orjson.loads(body) if status == 200 else body.decode()


def hostile_web() -> dict[str, Any]:
    """archive.org measured from ID, with MARK in every text a probe or a network writes."""
    m: dict[str, Any] = orjson.loads(SAMPLE.read_bytes())
    m["input"] = "http://hostile.example/" + MARK
    m["probe_network_name"] = m["report_id"] = m["software_name"] = MARK
    m["measurement_uid"] = ("20250527233111.802678_ID_webconnectivity_\"><img src=x "
                            "onerror=alert(3)>'; DROP TABLE measurements; --")  # fmt: skip
    keys = m["test_keys"]
    keys["http_experiment_failure"] = keys["dns_experiment_failure"] = MARK
    for request in keys["requests"] or []:
        request["failure"] = MARK
        request["request"]["url"] = m["input"]
        if request.get("response"):
            request["response"]["body"] = MARK
            request["response"]["headers"] = {MARK: MARK, "Content-Type": "text/html"}
            request["response"]["headers_list"] = [[MARK, MARK]]
    for connect in keys["tcp_connect"] or []:
        connect["status"]["failure"] = MARK
    for query in keys["queries"] or []:
        query["failure"] = MARK
    return m


def hostile_app() -> dict[str, Any]:
    """WhatsApp measured from IE, its connections failing with MARK on a network named MARK."""
    m: dict[str, Any] = orjson.loads((FASTPATH / "whatsapp.json").read_bytes())
    m["probe_network_name"] = MARK
    m.pop("measurement_uid", None)
    for connect in m["test_keys"]["tcp_connect"]:
        connect["status"] = {"failure": MARK, "success": False}
    return m


def hostile_web_big() -> dict[str, Any]:
    """The hostile web measurement with a 10 MiB body (MARK over and over): under the
    collector's 16 MiB limit once it is JSON, so it is stored and shown."""
    m = hostile_web()
    m["measurement_uid"] = "20250527233111.802678_ID_webconnectivity_big"
    m["measurement_start_time"] = "2025-05-27 23:31:09"
    first = next(r for r in m["test_keys"]["requests"] if r.get("response"))
    first["response"]["body"] = (MARK * (BIG // len(MARK) + 1))[:BIG]
    return m


def submit_hostile(base: str) -> Hostile:
    """The three hostile measurements, each acknowledged with its uid."""
    uids = []
    for content in (hostile_web(), hostile_web_big(), hostile_app()):
        status, answer = submit(base, content)
        assert status == 200, answer
        uids.append(answer["measurement_uid"])
    return Hostile(*uids)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Hostile]]:
    db = tmp_path_factory.mktemp("hostile") / "h.duckdb"
    with serving(db) as base:
        yield base, submit_hostile(base)


def test_hostile_fields_come_back_from_the_api_as_the_same_data(
    served: tuple[str, Hostile],
) -> None:
    base, uids = served
    status, body, kind = call(f"{base}/api/v1/measurements?probe_cc=ID&limit=1000")
    assert status == 200 and kind.startswith("application/json")
    rows = orjson.loads(body)["results"]
    assert {r["measurement_uid"] for r in rows} == {uids.web, uids.big}
    assert {r["target"] for r in rows} == {"http://hostile.example/" + MARK}  # NUL and all
    assert any(MARK in r["reason"] for r in rows)  # the failure string, as the probe wrote it
    status, body, _ = call(f"{base}/api/v1/measurements?probe_cc=IE")
    names = {r["probe_network_name"] for r in orjson.loads(body)["results"]}
    assert status == 200 and names == {MARK}


NASTY = (*HOSTILE, MARK, "x" * 8000, "%", "_", "*", "9999-12-31", "0001-01-01",
         "0001-01-01T00:00:00+01:00", "2017-02-30", "-1", "1e999")  # fmt: skip


def routes(value: str) -> list[str]:
    """Every route that reads, with `value` in each of its parameters in turn."""
    q = urllib.parse.quote(value, safe="")
    api = [f"/api/v1/measurements?{name}={q}" for name in ("probe_cc", "probe_asn", "test_name",
           "target", "since", "until", "verdict", "technique", "limit", "offset")]  # fmt: skip
    api += [f"/api/v1/aggregation?axis_x={q}", f"/api/v1/aggregation?axis_y={q}&axis_x=target",
            f"/api/v1/aggregation?format={q}", f"/api/v1/aggregation?until={q}&axis_x=target",
            f"/api/v1/events?probe_cc={q}", f"/api/v1/events?target={q}",
            f"/api/v1/answer?subject={q}&probe_cc=ID", f"/api/v1/answer?subject=x.{q}&probe_cc=ID",
            f"/api/v1/answer?subject=hostile.example&probe_cc={q}",
            f"/api/v1/answer?subject=whatsapp&probe_cc=IE&at={q}",
            f"/api/v1/claims?probe_cc={q}", f"/api/v1/claims?subject={q}"]  # fmt: skip
    pages = [f"/answer?subject={q}&cc=ID", f"/answer?subject=x.{q}&cc=ID",
             f"/answer?subject=hostile.example&cc={q}", f"/answer?subject=whatsapp&cc=IE&at={q}",
             f"/answer?subject=hostile.example&cc=ID&format={q}", f"/country/{q}",
             f"/country/ID?format={q}", f"/measurement/{q}", f"/feeds/{q}.atom",
             f"/feeds/ID/{q}.atom"]  # fmt: skip
    return api + pages


def test_hostile_parameters_get_json_or_a_reason_and_never_run(
    served: tuple[str, Hostile],
) -> None:
    base, _ = served
    before = call(f"{base}/api/v1/aggregation?axis_x=probe_cc")[1]
    for value in NASTY:
        for route in routes(value):
            status, body, kind = call(base + route)
            where = f"{route[:120]} -> {status}"
            assert status in (200, 404, 422), where
            if status != 200:
                assert body.strip(), where  # a refusal says why
            elif route.startswith("/api/"):
                assert kind.startswith("application/json"), where
                orjson.loads(body)
            elif kind.startswith("text/html"):
                page = body.decode()
                assert "<script>document.title" not in page and "<img src=x" not in page, where
    # the SQL fragments were data: the same rows, and the tables still answer
    assert call(f"{base}/api/v1/aggregation?axis_x=probe_cc")[1] == before


def test_the_last_day_there_is_is_a_valid_until(served: tuple[str, Hostile]) -> None:
    """`until=9999-12-31` is that whole day: the day after is past datetime's range (it was a
    500, found by the test above)."""
    base, _ = served
    status, body, _ = call(f"{base}/api/v1/measurements?probe_cc=ID&until=9999-12-31")
    assert status == 200 and orjson.loads(body)["metadata"]["count"] == 2
    status, _, _ = call(f"{base}/api/v1/aggregation?until=9999-12-31&axis_x=probe_cc")
    assert status == 200


def test_a_huge_measurement_is_cut_on_its_page_and_whole_in_its_download(
    served: tuple[str, Hostile],
) -> None:
    """The page shows at most 64 KiB of a line and 2 MiB in all, saying what it cut (a 10 MB
    line took chromium 90 s to lay out); `?format=json` gives the measurement whole."""
    base, uids = served
    status, body, _ = call(f"{base}/measurement/{uids.big}")
    assert status == 200 and len(body) < 1024 * 1024
    assert b"[cut: " in body and b"<script>document" not in body
    status, body, kind = call(f"{base}/measurement/{uids.big}?format=json")
    assert status == 200 and kind == "application/json"
    assert orjson.loads(body) == hostile_web_big()
    long = hostile_app() | {"measurement_start_time": "2022-12-02 12:58:50"}
    long["test_keys"]["x_lines"] = [MARK] * 30_000  # 3.5 MiB of short lines once indented
    status, answer = submit(base, long)
    assert status == 200, answer
    status, body, _ = call(f"{base}/measurement/{answer['measurement_uid']}")
    assert status == 200 and len(body) < 4 * 1024 * 1024
    assert body.rstrip().endswith(b"</html>") and b"more characters]</pre>" in body


def test_the_collector_refuses_what_it_cannot_take_with_the_reason(
    served: tuple[str, Hostile],
) -> None:
    base, _ = served
    status, body, _ = call(f"{base}/report", orjson.dumps({"test_name": MARK, "probe_cc": MARK}))
    assert status == 400 and b"is not a country code" in body
    # a time that is valid ISO 8601 but not a time in UTC: refused with the reason (it was an
    # OverflowError, a 500 for every submission committed with it; found by bench/fuzz.py)
    early = hostile_app() | {"measurement_start_time": "0001-01-01T00:00:00+01:00"}
    status, reason = submit(base, early)
    assert status == 400 and "out of range in UTC" in reason
    # more than 16 MiB is refused on its Content-Length, before a byte of it is read
    meta = {"test_name": "whatsapp", "probe_cc": "IE", "format": "json"}
    report = orjson.loads(call(f"{base}/report", orjson.dumps(meta))[1])["report_id"]
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(base).netloc, timeout=30)
    connection.putrequest("POST", f"/report/{urllib.parse.quote(report)}")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(16 * 1024 * 1024 + 1))
    connection.endheaders()
    answer = connection.getresponse()
    assert answer.status == 413 and b"the body is over 16777216 bytes" in answer.read()
    connection.close()


def test_sql_fragments_stay_data_and_every_table_is_intact(tmp_path: Path) -> None:
    db = tmp_path / "sql.duckdb"
    with serving(db) as base:
        submit_hostile(base)
        for value in ("'; DROP TABLE verdicts; --", "' OR '1'='1", '" OR 1=1; --'):
            for route in routes(value):
                assert call(base + route)[0] in (200, 404, 422), route
    with Store(db, read_only=True) as store:
        counts = {t: store.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in TABLES}
        reasons = store.execute(
            "SELECT reason FROM verdicts WHERE target = 'whatsapp/messaging'"
        ).fetchall()
    assert counts == {"measurements": 3, "observations": counts["observations"], "verdicts": 5,
                      "quarantine": 0} and counts["observations"] > 3  # fmt: skip
    assert MARK in reasons[0][0]  # the failure string, kept as the probe wrote it
