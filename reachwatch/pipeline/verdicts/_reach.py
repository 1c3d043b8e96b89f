"""Reaching one host through the operations a measurement recorded: where it failed, if it did.

App tests (whatsapp, telegram, signal, facebook_messenger) and circumvention tests record DNS
lookups, TCP connects, TLS handshakes and HTTP requests without a control; a feature is judged
by whether its endpoints could be reached and, if not, at which stage the path broke.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from ...model import DNSQuery, Primitives, TCPConnect, TLSHandshake
from ._common import is_network_failure, technique_for


@dataclass(frozen=True, slots=True)
class Reach:
    """Whether an endpoint was reached; if not, the stage and failure where the path broke."""

    reached: bool
    stage: str = ""
    failure: str | None = None
    where: str = ""
    attempted: bool = True
    technique_hint: str | None = None  # when the failure is a judgement, not an OONI string
    ip: str | None = None  # the endpoint's address, when one TCP endpoint was tried

    @property
    def technique(self) -> str:
        return self.technique_hint or technique_for(self.stage, self.failure or "")

    def describe(self) -> str:
        if self.reached:
            return f"{self.where} reached"
        if not self.attempted:
            return f"{self.where} was not measured"
        return f"{self.stage.upper()} {self.where} failed with {self.failure}"


@lru_cache(maxsize=65536)
def url_host(url: str | None) -> str:
    """The URL's host, lowercase ("" if none); cached: test lists repeat the same URLs, and
    `SplitResult.hostname` is parsed again at every call."""
    try:
        return (urlsplit(url or "").hostname or "").lower()
    except ValueError:
        return ""


def addresses_of(keys: Primitives, host: str) -> set[str]:
    return {
        answer.ipv4 or answer.ipv6 or ""
        for query in keys.queries or ()
        if (query.hostname or "").lower() == host
        for answer in query.answers or ()
        if answer.ipv4 or answer.ipv6
    }


def reach_host(keys: Primitives, host: str, *, via_http: bool = True) -> Reach:
    """The furthest any attempt to `host` got: an HTTP response, a handshake, a connect."""
    if via_http:
        transactions = [
            r for r in keys.requests or () if url_host(r.request.url if r.request else None) == host
        ]
        for transaction in transactions:
            response = transaction.response
            answered = response is not None and (response.code or 0) > 0
            # a reply the probe did not expect (status, redirect) still came from the host
            if (transaction.failure is None and response is not None) or (
                answered and not is_network_failure(transaction.failure or "")
            ):
                return Reach(True, where=host)
    else:
        transactions = []
    handshakes = [h for h in keys.tls_handshakes or () if (h.server_name or "").lower() == host]
    if not via_http and any(h.failure is None for h in handshakes):
        return Reach(True, where=host)
    addrs = addresses_of(keys, host)
    connects = [c for c in keys.tcp_connects() if c.ip in addrs]
    lookups = [q for q in keys.queries or () if (q.hostname or "").lower() == host]
    if transactions:
        failure = next((t.failure for t in transactions if t.failure), None)
        return _locate(failure, host, handshakes, connects, lookups)
    failed_tls = [h for h in handshakes if h.failure]
    if failed_tls:
        return Reach(False, "tls", failed_tls[0].failure, f"handshake with {host}")
    if handshakes:
        return Reach(True, where=host)
    if connects:
        if any(c.status and c.status.success for c in connects):
            return Reach(True, where=host)
        failure = next((c.status.failure for c in connects if c.status and c.status.failure), None)
        return Reach(False, "tcp", failure, f"connect to {host}")
    failed_dns = [q for q in lookups if q.failure and not q.answers]
    if failed_dns and not addrs:
        return Reach(False, "dns", failed_dns[0].failure, f"lookup of {host}")
    return Reach(False, where=host, attempted=False)


def _locate(
    failure: str | None,
    host: str,
    handshakes: list[TLSHandshake],
    connects: list[TCPConnect],
    lookups: list[DNSQuery],
) -> Reach:
    """The stage of a failed request: the operation that failed with the request's failure."""
    for lookup in lookups:
        if lookup.failure == failure and not lookup.answers:
            return Reach(False, "dns", failure, f"lookup of {host}")
    for connect in connects:
        if connect.status and connect.status.failure == failure:
            return Reach(False, "tcp", failure, f"connect to {connect.ip}:{connect.port} ({host})")
    for handshake in handshakes:
        if handshake.failure == failure:
            return Reach(False, "tls", failure, f"handshake with {host}")
    return Reach(False, "http", failure, f"request to {host}")


def reach_endpoints(keys: Primitives, ports: set[int] | None = None) -> list[Reach]:
    """One Reach per TCP endpoint (ip:port) tried, optionally only on some ports."""
    out = []
    for connect in keys.tcp_connects():
        if ports is not None and connect.port not in ports:
            continue
        where = f"connect to {connect.ip}:{connect.port}"
        status = connect.status
        if status and status.success:
            out.append(Reach(True, where=where, ip=connect.ip))
        else:
            out.append(
                Reach(False, "tcp", status.failure if status else None, where, ip=connect.ip)
            )
    return out


def commonest(failures: list[Reach]) -> Reach:
    """The failure most endpoints share: what a feature's verdict reports."""
    counts = Counter((r.stage, r.failure) for r in failures)
    (stage, failure), _ = counts.most_common(1)[0]
    return next(r for r in failures if (r.stage, r.failure) == (stage, failure))
