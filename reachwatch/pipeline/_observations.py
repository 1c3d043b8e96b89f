"""Raw measurement -> observations: one row per DNS query, TCP connect, TLS handshake, HTTP
transaction and UDP exchange, with OONI's failure strings kept exactly as the probe wrote them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

from ..model import (
    DNSCheckKeys,
    ParsedMeasurement,
    Primitives,
    TorKeys,
)

DNS_OVER_UDP = frozenset({"web_connectivity", "dnscheck"})
"""Tests whose UDP traffic is DNS, already one `dns` row per query: no separate UDP rows."""


class Observation(NamedTuple):
    """One row of the `observations` table (same columns, same order)."""

    measurement_uid: str
    idx: int
    kind: str
    scope: str | None = None
    hostname: str | None = None
    query_type: str | None = None
    engine: str | None = None
    resolver: str | None = None
    ip: str | None = None
    port: int | None = None
    answers: list[str] | None = None
    failure: str | None = None
    tls_version: str | None = None
    http_url: str | None = None
    http_status: int | None = None
    http_body_length: int | None = None
    t0: float | None = None
    t: float | None = None


def observations_of(pm: ParsedMeasurement) -> list[Observation]:
    """Every network operation a measurement recorded, flattened."""
    out: list[Observation] = []
    keys = pm.keys
    if isinstance(keys, Primitives):
        _primitives(pm.uid, keys, None, out)
        if pm.base.test_name not in DNS_OVER_UDP:
            _udp_exchanges(pm.uid, keys, None, out)
    elif isinstance(keys, TorKeys):
        targets = keys.targets or {}
        named = targets.items() if isinstance(targets, dict) else enumerate(targets)
        for name, target in sorted(named, key=lambda item: str(item[0])):
            _primitives(pm.uid, target, str(name), out)
    elif isinstance(keys, DNSCheckKeys):
        if keys.bootstrap is not None:
            _primitives(pm.uid, keys.bootstrap, "bootstrap", out)
        for name, lookup in sorted((keys.lookups or {}).items()):
            _primitives(pm.uid, lookup, name, out)
    return out


def split_address(address: str | None) -> tuple[str | None, int | None]:
    """'1.2.3.4:443' or '[::1]:443' -> (ip, port); what is not a port (99999999999, say, from
    a broken or hostile probe) is no port, kept as written in the address."""
    if not address:
        return None, None
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or len(port) > 5 or int(port) > 65535:
        return address, None
    return host.strip("[]"), int(port)


_row = tuple.__new__  # an Observation straight from its 18 fields, without keyword binding


def _primitives(uid: str, keys: Primitives, scope: str | None, out: list[Observation]) -> None:
    O = Observation  # noqa: N806, E741
    for q in keys.queries or ():
        answers = [
            a.ipv4 or a.ipv6 or a.hostname or ""
            for a in q.answers or ()
            if a.ipv4 or a.ipv6 or a.hostname
        ]
        out.append(_row(O, (uid, len(out), "dns", scope, q.hostname, q.query_type, q.engine,
                            q.resolver_address, None, None, answers, q.failure, None, None,
                            None, None, q.t0, q.t)))  # fmt: skip
    for c in keys.tcp_connects():
        failure = c.status.failure if c.status else None
        out.append(_row(O, (uid, len(out), "tcp", scope, None, None, None, None, c.ip, c.port,
                            None, failure, None, None, None, None, c.t0, c.t)))  # fmt: skip
    for h in keys.tls_handshakes or ():
        ip, port = split_address(h.address)
        out.append(_row(O, (uid, len(out), "tls", scope, h.server_name, None, None, None, ip,
                            port, None, h.failure, h.tls_version, None, None, None, h.t0,
                            h.t)))  # fmt: skip
    for r in keys.requests or ():
        url = r.request.url if r.request else None
        response = r.response
        status = response.code if response else None
        size = response.body_length() if response else None
        out.append(_row(O, (uid, len(out), "http", scope, _host(url), None, None, None, None,
                            None, None, r.failure, None, url, status, size, r.t0,
                            r.t)))  # fmt: skip


def _udp_exchanges(uid: str, keys: Primitives, scope: str | None, out: list[Observation]) -> None:
    """Group UDP network events per remote address into one exchange each (STUN and the like):
    the exchange failed with its first failing write or read."""
    if _UDP.search(memoryview(keys.network_events)) is None:
        return  # most tests record only TCP events: skip decoding (or copying) hundreds of them
    exchanges: dict[str, list[str | None]] = {}
    times: dict[str, tuple[float | None, float | None]] = {}
    current: str | None = None
    for event in keys.events():
        if event.proto == "udp" and event.address:
            current = event.address
        elif event.proto not in (None, "udp"):
            current = None  # a TCP event: not part of the exchange
        if current is None:
            continue
        failures = exchanges.setdefault(current, [])
        if event.operation in ("write", "read", "close"):
            failures.append(event.failure)
        first = times.get(current, (event.t0 if event.t0 is not None else event.t, None))[0]
        times[current] = (first, event.t)
    for address, failures in exchanges.items():
        ip, port = split_address(address)
        failure = next((f for f in failures if f), None)
        if failure is None and not failures:
            failure = keys.failure  # nothing was sent or read: the test's own failure
        t0, t = times[address]
        out.append(
            Observation(uid, len(out), "udp", scope, ip=ip, port=port, failure=failure, t0=t0, t=t)
        )


_UDP = re.compile(rb'"udp"')


@lru_cache(maxsize=65536)
def _host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None
