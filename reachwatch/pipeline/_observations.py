"""Raw measurement -> observations: one row per DNS query, TCP connect, TLS handshake, HTTP
transaction and UDP exchange, with OONI's failure strings kept exactly as the probe wrote them.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

from ..model import (
    DNSCheckKeys,
    ParsedMeasurement,
    Primitives,
    TorKeys,
    length_of,
)


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
    """'1.2.3.4:443' or '[::1]:443' -> (ip, port)."""
    if not address:
        return None, None
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return address, None
    return host.strip("[]"), int(port)


def _primitives(uid: str, keys: Primitives, scope: str | None, out: list[Observation]) -> None:
    for query in keys.queries or ():
        answers = [
            a.ipv4 or a.ipv6 or a.hostname or ""
            for a in query.answers or ()
            if a.ipv4 or a.ipv6 or a.hostname
        ]
        out.append(
            Observation(
                uid,
                len(out),
                "dns",
                scope,
                hostname=query.hostname,
                query_type=query.query_type,
                engine=query.engine,
                resolver=query.resolver_address,
                answers=answers,
                failure=query.failure,
                t0=query.t0,
                t=query.t,
            )
        )
    for connect in keys.tcp_connects():
        status = connect.status
        out.append(
            Observation(
                uid,
                len(out),
                "tcp",
                scope,
                ip=connect.ip,
                port=connect.port,
                failure=status.failure if status else None,
                t0=connect.t0,
                t=connect.t,
            )
        )
    for handshake in keys.tls_handshakes or ():
        ip, port = split_address(handshake.address)
        out.append(
            Observation(
                uid,
                len(out),
                "tls",
                scope,
                hostname=handshake.server_name,
                ip=ip,
                port=port,
                failure=handshake.failure,
                tls_version=handshake.tls_version,
                t0=handshake.t0,
                t=handshake.t,
            )
        )
    for transaction in keys.requests or ():
        url = transaction.request.url if transaction.request else None
        response = transaction.response
        out.append(
            Observation(
                uid,
                len(out),
                "http",
                scope,
                hostname=_host(url),
                http_url=url,
                http_status=response.code if response else None,
                http_body_length=length_of(response.body) if response else None,
                failure=transaction.failure,
                t0=transaction.t0,
                t=transaction.t,
            )
        )
    _udp_exchanges(uid, keys, scope, out)


def _udp_exchanges(uid: str, keys: Primitives, scope: str | None, out: list[Observation]) -> None:
    """Group UDP network events per remote address into one exchange each (STUN and the like)."""
    exchanges: dict[str, list[str | None]] = {}
    times: dict[str, tuple[float | None, float | None]] = {}
    current: str | None = None
    if b'"udp"' not in bytes(keys.network_events):
        return  # most tests record only TCP events: skip decoding hundreds of them
    for event in keys.events():
        if event.proto == "udp" and event.address:
            current = event.address
            exchanges.setdefault(current, [])
            first = times.get(current, (event.t0 if event.t0 is not None else event.t, None))[0]
            times[current] = (first, event.t)
        elif current is not None and event.operation in ("write", "read", "close"):
            exchanges[current].append(event.failure)
            times[current] = (times[current][0], event.t)
    for address, failures in exchanges.items():
        ip, port = split_address(address)
        failure = next((f for f in failures if f), None)
        if failure is None and not any(f is None for f in failures):
            failure = keys.failure
        t0, t = times[address]
        out.append(
            Observation(uid, len(out), "udp", scope, ip=ip, port=port, failure=failure, t0=t0, t=t)
        )


def _host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None
