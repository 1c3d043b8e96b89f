"""The collector in `reachwatch serve`, as a probe uses it: OONI's submission flow, an
acknowledgement only once the measurement is archived and stored, and 4xx answers with the
reason for what it will not take."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from reachwatch.store import archive_root_for

from .conftest import reachwatch, serving

SAMPLES = Path(__file__).parent.parent / "samples" / "ooni" / "fastpath"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    db = tmp_path / "c.duckdb"
    with serving(db) as base:
        yield f"{base}/", db


def post(url: str, body: Any) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, orjson.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def measurement(
    name: str = "20250527233111.802678_ID_webconnectivity_5a37ec909dbf14e3.json",
) -> Any:
    return orjson.loads((SAMPLES / name).read_bytes())


def test_a_probe_submits_and_what_was_acknowledged_is_archived_and_stored(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    base, db = server
    file = tmp_path / "m.jsonl"
    wanted = [measurement(), measurement("whatsapp.json")]
    file.write_bytes(b"".join(orjson.dumps(m) + b"\n" for m in wanted))
    sent = reachwatch("submit", str(file), "--collector", base)
    assert sent.returncode == 0, sent.stderr
    assert "submitted 2 of 2" in sent.stdout
    found = orjson.loads(urllib.request.urlopen(f"{base}api/v1/measurements?limit=50").read())
    uids = {r["measurement_uid"] for r in found["results"]}
    assert {r["test_name"] for r in found["results"]} == {"web_connectivity", "whatsapp"}
    archived = list(archive_root_for(db).rglob("*.jsonl.gz"))
    assert len(archived) == 2  # raw/YYYYMMDD/HH/CC/test_name/..., one per test
    before = found["metadata"]["count"]
    again = reachwatch("submit", str(file), "--collector", base)  # the same twice: stored once
    assert again.returncode == 0
    found = orjson.loads(urllib.request.urlopen(f"{base}api/v1/measurements?limit=50").read())
    assert {r["measurement_uid"] for r in found["results"]} == uids and len(uids) == 2
    assert found["metadata"]["count"] == before  # no verdict row twice


def test_what_it_will_not_take_gets_the_reason(server: tuple[str, Path]) -> None:
    base, _ = server
    status, opened = post(f"{base}report", {"test_name": "web_connectivity", "probe_cc": "ID",
                                            "probe_asn": "AS7713", "format": "json"})  # fmt: skip
    assert status == 200 and opened["supported_formats"] == ["json"]
    report = f"{base}report/{opened['report_id']}"
    assert post(f"{base}report", {"probe_cc": "ID"})[0] == 400
    assert post(f"{base}report/nope", {"format": "json", "content": measurement()})[0] == 404
    status, reason = post(report, b"{not json")
    assert status == 400 and "not JSON" in reason
    status, reason = post(report, {"format": "json", "content": {"test_name": "web_connectivity"}})
    assert status == 400 and "not a measurement reachwatch can store" in reason
    other = measurement("whatsapp.json")
    status, reason = post(report, {"format": "json", "content": other})
    assert status == 400 and "is not the report's 'web_connectivity'" in reason
    assert _declared_too_large(report) == 413  # refused on its Content-Length, unread
    assert post(report, {"format": "json", "content": measurement()})[0] == 200
    assert post(f"{report}/close", {})[0] == 200
    assert post(report, {"format": "json", "content": measurement()})[0] == 404  # closed
    kept = orjson.loads(urllib.request.urlopen(f"{base}api/v1/aggregation").read())
    assert kept["result"][0]["measurement_count"] == 1  # only the one good measurement


def _declared_too_large(url: str) -> int:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    connection.putrequest("POST", parts.path)
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(16 * 1024 * 1024 + 1))
    connection.endheaders()
    status = connection.getresponse().status
    connection.close()
    return status


def test_a_client_that_sends_too_fast_is_told_to_wait(tmp_path: Path) -> None:
    with serving(tmp_path / "r.duckdb", "--rate", "3") as base:
        meta = {"test_name": "web_connectivity", "probe_cc": "ID"}
        answers = [post(f"{base}/report", meta)[0] for _ in range(4)]
        assert answers == [200, 200, 200, 429]
