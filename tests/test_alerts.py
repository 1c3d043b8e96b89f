"""Alerts: webhooks fired once when an event starts and once when it ends (signed, retried,
never for what was there before them), the Atom feeds, and the token that writing needs."""

from __future__ import annotations

import hashlib
import hmac
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from reachwatch.answers import events_for
from reachwatch.answers.alerts import add_webhook, atom_feed, deliver
from reachwatch.store import Store

from .answers_history import series, write
from .conftest import serving

T0 = datetime(2017, 4, 17)
CALLS = (datetime(2017, 5, 8), datetime(2017, 5, 22))


class Receiver:
    """Stands in for a webhook's receiver: records what it is sent, fails when told to."""

    def __init__(self, failures: int = 0) -> None:
        self.got: list[tuple[str, bytes, str]] = []
        self.failures = failures

    def __call__(self, url: str, body: bytes, signature: str) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("HTTP 503")
        self.got.append((url, body, signature))


def lend(db: Path) -> Any:
    @contextmanager
    def use() -> Iterator[Store]:
        with Store(db) as store:
            yield store

    return use


def test_a_webhook_hears_each_start_and_end_once_and_nothing_from_before_it(tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    # before the webhook: an old event on the site, which it must not be sent
    write(db, series(29049, "https://www.azadliq.org/", T0, 10, 2, (T0, T0 + timedelta(days=5)),
                     "tls.reset"))  # fmt: skip
    with Store(db) as store:
        hook = add_webhook(store, "http://receiver.test/hook", "AZ", None)
    receiver = Receiver()
    assert deliver(lend(db), receiver, lambda s: None) == 0
    # calls get blocked: one "started"
    write(db, series(29049, "skype/calls", T0, 30, 2, (CALLS[0], CALLS[0] + timedelta(days=40))))
    assert deliver(lend(db), receiver, lambda s: None) == 1
    assert deliver(lend(db), receiver, lambda s: None) == 0  # once
    # and unblocked: one "ended"
    write(db, series(29049, "skype/calls", CALLS[1], 5, 2))
    assert deliver(lend(db), receiver, lambda s: None) == 1
    kinds = [orjson.loads(body)["type"] for _, body, _ in receiver.got]
    assert kinds == ["event.started", "event.ended"]
    for _, body, signature in receiver.got:
        expected = hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
        assert signature == f"sha256={expected}"
    ended = orjson.loads(receiver.got[1][1])["event"]
    assert (ended["target"], ended["start"], ended["end"]) == (
        "skype/calls", "2017-05-08T00:00:00Z", "2017-05-22T00:00:00Z")  # fmt: skip


def test_deliveries_are_retried_then_given_up_once(tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    with Store(db) as store:
        add_webhook(store, "http://receiver.test/a", None, "skype/calls")
    write(db, series(29049, "skype/calls", T0, 30, 2, (CALLS[0], CALLS[0] + timedelta(days=60))))
    waits: list[float] = []
    flaky = Receiver(failures=2)
    assert deliver(lend(db), flaky, waits.append) == 1  # third try worked
    assert waits == [1.0, 2.0] and len(flaky.got) == 1
    with Store(db) as store:
        add_webhook(store, "http://receiver.test/b", None, "whatsapp/calls")
    write(db, series(29049, "whatsapp/calls", T0, 30, 2, (CALLS[0], CALLS[0] + timedelta(days=60))))
    dead = Receiver(failures=99)
    assert deliver(lend(db), dead, lambda s: None) == 0
    assert deliver(lend(db), dead, lambda s: None) == 0  # recorded as failed, not retried forever
    with Store(db, read_only=True) as store:
        rows = store.execute("SELECT status, attempts FROM deliveries WHERE status <> 'known' "
                             "ORDER BY status").fetchall()  # fmt: skip
    assert rows == [("delivered", 3), ("failed", 3)]


def test_the_atom_feed_has_an_entry_per_start_and_end(tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    write(db, series(29049, "skype/calls", T0, 42, 2, CALLS))
    with Store(db, read_only=True) as store:
        feed = atom_feed(events_for(store, cc="AZ"), "reachwatch: AZ", "http://x/feeds/AZ.atom")
    root = ET.fromstring(feed)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    titles = [e.findtext("a:title", namespaces=ns) for e in root.findall("a:entry", ns)]
    assert titles == [
        "skype/calls no longer blocked in AZ on AS29049 Delta Telecom (udp.timeout)",
        "skype/calls blocked in AZ on AS29049 Delta Telecom (udp.timeout)",
    ]
    assert root.findtext("a:updated", namespaces=ns) == "2017-05-22T00:00:00Z"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("alerts") / "s.duckdb"
    write(db, series(29049, "skype/calls", T0, 42, 2, CALLS))
    with serving(db, "--token", "s3cret-token") as base:
        yield base


def call(method: str, url: str, body: bytes | None = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, body, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read(), reply.headers.get("content-type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), ""


def test_writing_needs_the_token_and_reading_does_not(server: str) -> None:
    hook = orjson.dumps({"url": "http://127.0.0.1:9/hook", "probe_cc": "AZ"})
    assert call("POST", f"{server}/api/v1/webhooks", hook)[0] == 401
    assert call("POST", f"{server}/api/v1/webhooks", hook, "wrong")[0] == 401
    status, body, _ = call("POST", f"{server}/api/v1/webhooks", hook, "s3cret-token")
    assert status == 201 and len(orjson.loads(body)["secret"]) == 64
    hook_id = orjson.loads(body)["id"]
    status, body, _ = call("GET", f"{server}/api/v1/webhooks", token="s3cret-token")
    assert [h["id"] for h in orjson.loads(body)["results"]] == [hook_id]
    assert "secret" not in orjson.loads(body)["results"][0]
    assert call("DELETE", f"{server}/api/v1/webhooks/{hook_id}", token="s3cret-token")[0] == 200
    status, feed, kind = call("GET", f"{server}/feeds/AZ.atom")
    assert status == 200 and kind.startswith("application/atom+xml") and b"<entry>" in feed
    status, feed, _ = call("GET", f"{server}/feeds/AZ/skype/calls.atom")
    assert status == 200 and feed.count(b"<entry>") == 2
    bad = b"- {id: x, country: AZ, app: skipe, asserted_status: blocked}\n"
    status, reason, _ = call("POST", f"{server}/api/v1/claims", bad, "s3cret-token")
    assert status == 422 and b"skipe" in reason
    good = (b"- {id: t1, publisher: T, country: AZ, app: skype, asserted_status: blocked, "
            b"features: [calls], start: 2017-05}\n")  # fmt: skip
    assert call("POST", f"{server}/api/v1/claims", good)[0] == 401
    status, body, _ = call("POST", f"{server}/api/v1/claims", good, "s3cret-token")
    assert status == 200 and orjson.loads(body)["added"] in (1, ["t1"])
