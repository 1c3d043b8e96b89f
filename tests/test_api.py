"""The read API against the real server (`reachwatch serve` in its own process), on a
synthetic history: search with OONI's filters and paging, aggregation in JSON and CSV, events,
the answer card and the claims, OpenAPI; bad parameters get a 422 with the reason."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from .answers_history import series, write
from .conftest import reachwatch, serving

T0 = datetime(2017, 4, 17)
BLOCK = (datetime(2017, 5, 8), datetime(2017, 5, 22))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("api")
    db = folder / "r.duckdb"
    rows = series(29049, "skype/calls", T0, 42, 2, BLOCK) + series(31721, "skype/calls", T0, 42, 2)
    rows += series(29049, "skype/web", T0, 42, 2)
    write(db, rows)
    data = Path(__file__).parent.parent / "reachwatch" / "answers" / "data"
    added = reachwatch("claims", "add", str(data / "article-skype-az.yaml"), "--db", str(db))
    assert added.returncode == 0, added.stderr
    with serving(db) as base:
        yield base


def get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read(), reply.headers.get("content-type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("content-type", "")


def json(url: str) -> Any:
    status, body, _ = get(url)
    assert status == 200, body
    return orjson.loads(body)


def test_search_filters_and_pages_like_oonis(server: str) -> None:
    page = json(f"{server}/api/v1/measurements?probe_cc=AZ&target=skype/calls&verdict=blocked"
                "&limit=10")  # fmt: skip
    assert page["metadata"]["count"] == 28 and len(page["results"]) == 10
    first = page["results"][0]
    assert first["measurement_start_time"] == "2017-05-21 12:00:00"  # newest first
    assert (first["probe_asn"], first["probe_network_name"]) == ("AS29049", "Delta Telecom")
    assert first["technique"] == "udp.timeout"
    following = json(page["metadata"]["next_url"])
    assert following["metadata"]["offset"] == 10
    assert not {r["measurement_uid"] for r in following["results"]} & {
        r["measurement_uid"] for r in page["results"]
    }
    day = json(f"{server}/api/v1/measurements?probe_asn=AS31721&since=2017-05-10&until=2017-05-10")
    assert day["metadata"]["count"] == 2  # a day given as `until` is included whole


def test_aggregation_by_day_and_network_in_json_and_csv(server: str) -> None:
    found = json(f"{server}/api/v1/aggregation?target=skype/calls&axis_x=measurement_start_day"
                 "&axis_y=probe_asn&since=2017-05-08&until=2017-05-08")  # fmt: skip
    assert found["dimension_count"] == 2
    assert found["result"] == [
        {"measurement_start_day": "2017-05-08", "probe_asn": "AS29049", "measurement_count": 2,
         "ok_count": 0, "blocked_count": 2, "down_count": 0, "error_count": 0},
        {"measurement_start_day": "2017-05-08", "probe_asn": "AS31721", "measurement_count": 2,
         "ok_count": 2, "blocked_count": 0, "down_count": 0, "error_count": 0},
    ]  # fmt: skip
    status, body, kind = get(f"{server}/api/v1/aggregation?axis_x=target&format=CSV")
    assert status == 200 and kind.startswith("text/csv")
    lines = body.decode().splitlines()
    assert lines[0] == "target,measurement_count,ok_count,blocked_count,down_count,error_count"
    assert lines[1] == "skype/calls,168,140,28,0,0"


def test_events_answer_and_claims(server: str) -> None:
    (event,) = json(f"{server}/api/v1/events?probe_cc=AZ")["results"]
    assert (event["start"], event["end"]) == ("2017-05-08T00:00:00Z", "2017-05-22T00:00:00Z")
    card = json(f"{server}/api/v1/answer?subject=skype&probe_cc=AZ&at=2017-05-15")
    assert card["status"] == "partially blocked"
    assert {c["id"] for c in card["claims"]} >= {"article-unable-to-log-in"}
    claims = json(f"{server}/api/v1/claims?probe_cc=AZ&subject=skype")["results"]
    assert {c["check"]["outcome"] for c in claims} >= {"supported", "unverified"}


def test_openapi_and_bad_parameters(server: str) -> None:
    spec = json(f"{server}/openapi.json")
    assert {"/api/v1/measurements", "/api/v1/aggregation", "/api/v1/answer", "/api/v1/events",
            "/api/v1/claims", "/api/v1/webhooks", "/feeds/{cc}.atom", "/report",
            "/report/{report_id}"} <= set(spec["paths"])  # fmt: skip
    assert get(f"{server}/docs")[0] == 200
    for query, reason in (
        ("measurements?probe_asn=Delta", "not an AS number"),
        ("measurements?verdict=maybe", "not ok, blocked, down or error"),
        ("measurements?since=yesterday", "not a date"),
        ("aggregation?axis_x=colour", "unknown axis"),
        ("answer?subject=skipe&probe_cc=AZ", "neither an app nor a domain"),
    ):
        status, body, _ = get(f"{server}/api/v1/{query}")
        assert status == 422 and reason in body.decode(), (query, body)
    assert get(f"{server}/api/v1/measurements?limit=100000")[0] == 422
