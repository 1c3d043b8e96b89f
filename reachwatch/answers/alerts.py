"""Alerts: an Atom feed of event starts and ends, and webhooks fired once when an event starts
and once when it ends, signed, with retries.

An event is known by its country, target and start (`event_key`); the `deliveries` table says,
per webhook, which phases of which events were sent. A webhook registered today is not sent
the events that were already there: they are recorded as `known` when it is registered."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

import orjson

from ..store import Store
from ._events import Event
from ._evidence import event_record, events_for

SIGNATURE_HEADER = "X-Reachwatch-Signature"
ATTEMPTS = 3
"""Deliveries tried per phase before it is recorded as failed."""
BACKOFF = 1.0
"""Seconds before the second attempt; doubled before each later one."""


def event_key(event: Event) -> str:
    return f"{event.cc}|{event.target}|{event.start:%Y-%m-%dT%H:%M:%SZ}"


def phases(event: Event) -> list[tuple[str, datetime]]:
    """What happened to an event so far: it started; it ended (unless ongoing)."""
    done = [("started", event.start)]
    if event.end is not None:
        done.append(("ended", event.end))
    return done


def atom_feed(events: Iterable[Event], title: str, self_url: str) -> str:
    """An Atom feed (RFC 4287) with one entry per event start and end, newest first."""
    entries = []
    for event in events:
        for phase, when in phases(event):
            what = "blocked" if phase == "started" else "no longer blocked"
            line = (f"{event.target} {what} in {event.cc} on {', '.join(event.networks)}"
                    f" ({event.technique or 'technique unknown'})")  # fmt: skip
            entries.append((when, phase, event, line))
    entries.sort(key=lambda e: (e[0], e[1]), reverse=True)
    updated = entries[0][0] if entries else datetime(1970, 1, 1, tzinfo=UTC)
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<title>{escape(title)}</title>",
        f'<link rel="self" href="{escape(self_url)}"/>',
        f"<id>{escape(self_url)}</id>",
        f"<updated>{updated:%Y-%m-%dT%H:%M:%SZ}</updated>",
        "<author><name>reachwatch</name></author>",
    ]
    for when, phase, event, line in entries:
        out += [
            "<entry>",
            f"<id>tag:reachwatch,{escape(event_key(event))}|{phase}</id>",
            f"<title>{escape(line)}</title>",
            f"<updated>{when:%Y-%m-%dT%H:%M:%SZ}</updated>",
            f"<summary>{escape(_summary(event, phase))}</summary>",
            "</entry>",
        ]
    out.append("</feed>")
    return "\n".join(out) + "\n"


def _summary(event: Event, phase: str) -> str:
    bounds = (f"started between {event.start_after or 'the first measurement'} and "
              f"{event.start}")  # fmt: skip
    if phase == "ended" and event.end is not None:
        bounds = f"ended between {event.end_after} and {event.end}"
    return (f"{bounds}; confidence {event.confidence:.2f}; "
            f"{len(event.measurements)} blocked measurements")  # fmt: skip


@dataclass(frozen=True)
class Webhook:
    id: str
    url: str
    secret: str
    probe_cc: str | None
    target: str | None


def add_webhook(store: Store, url: str, cc: str | None, target: str | None) -> Webhook:
    """Register a webhook; the events already there are recorded as known, not sent."""
    hook = Webhook(f"wh_{secrets.token_hex(8)}", url, secrets.token_hex(32),
                   cc.upper() if cc else None, target)  # fmt: skip
    now = datetime.now(UTC).replace(tzinfo=None)
    store.execute("INSERT INTO webhooks VALUES (?, ?, ?, ?, ?, ?)",
                  [hook.id, hook.url, hook.secret, hook.probe_cc, hook.target, now])  # fmt: skip
    for event in _events(store, hook):
        for phase, _ in phases(event):
            _record(store, hook, event, phase, "known", 0, None)
    return hook


def webhooks(store: Store) -> list[Webhook]:
    rows = store.execute(
        "SELECT id, url, secret, probe_cc, target FROM webhooks ORDER BY created_at"
    ).fetchall()
    return [Webhook(*row) for row in rows]


def remove_webhook(store: Store, hook_id: str) -> bool:
    found = store.execute("SELECT count(*) FROM webhooks WHERE id = ?", [hook_id]).fetchone()
    store.execute("DELETE FROM webhooks WHERE id = ?", [hook_id])
    return bool(found and found[0])


def _events(store: Store, hook: Webhook) -> list[Event]:
    return events_for(store, cc=hook.probe_cc, targets=[hook.target] if hook.target else None)


def _record(store: Store, hook: Webhook, event: Event, phase: str, status: str, attempts: int,
            error: str | None) -> None:  # fmt: skip
    store.execute(
        "INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?)",
        [hook.id, event_key(event), phase, status, attempts, error,
         datetime.now(UTC).replace(tzinfo=None)],
    )  # fmt: skip


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 of the body with the webhook's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(url: str, body: bytes, signature: str) -> None:
    request = urllib.request.Request(url, body, {
        "Content-Type": "application/json", SIGNATURE_HEADER: signature,
        "User-Agent": "reachwatch-alerts",
    })  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as reply:
        if not 200 <= reply.status < 300:
            raise OSError(f"HTTP {reply.status}")


def pending(store: Store, hook: Webhook) -> list[tuple[Event, str]]:
    """The (event, phase) pairs the webhook has not been sent (nor tried to the end)."""
    sent = {(row[0], row[1]) for row in store.execute(
        "SELECT event_key, phase FROM deliveries WHERE webhook_id = ?", [hook.id]
    ).fetchall()}  # fmt: skip
    return [(event, phase) for event in _events(store, hook)
            for phase, _ in phases(event) if (event_key(event), phase) not in sent]  # fmt: skip


def deliver(
    store_use: Callable[[], Any],
    send: Callable[[str, bytes, str], None] = _post,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send every webhook what it has not been sent; each phase once, with up to ATTEMPTS
    tries. The store is borrowed (`store_use()`, a context manager) only between sends, so
    slow receivers do not hold it. Returns how many were delivered."""
    with store_use() as store:
        work = [(hook, event, phase) for hook in webhooks(store)
                for event, phase in pending(store, hook)]  # fmt: skip
    delivered = 0
    for hook, event, phase in work:
        body = orjson.dumps({"type": f"event.{phase}", "event": event_record(event)})
        error: str | None = None
        attempt = 0
        for attempt in range(1, ATTEMPTS + 1):
            try:
                send(hook.url, body, sign(hook.secret, body))
                error = None
                break
            except (OSError, urllib.error.URLError) as exc:
                error = str(exc)
                if attempt < ATTEMPTS:
                    sleep(BACKOFF * 2 ** (attempt - 1))
        with store_use() as store:
            _record(store, hook, event, phase, "failed" if error else "delivered", attempt, error)
        delivered += error is None
    return delivered
