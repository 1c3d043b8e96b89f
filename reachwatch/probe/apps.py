"""App experiments driven by the catalogue: every feature of an app (messaging, calls, web, ...)
measured the way the app reaches it, so "messaging ok, calls blocked" comes out as exactly that.

Each endpoint is tried with its protocol: a TCP connect (`tcp`), a TLS handshake (`tls`), an
HTTPS request (`https`), a QUIC handshake (`quic`), a STUN binding (`udp-stun`) or a TURN
allocate (`turn`). The measurement keeps OONI's archival lists and, under `x_features`, which
transactions tried which endpoint of which feature, so the pipeline judges each feature by its
own rule.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from typing import Any

import orjson
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..model import parse_measurement
from ..pipeline.verdicts import verdicts_of
from ..pipeline.verdicts.apps import MESSENGER_HOSTS
from ._conn import tcp_connect, tls_context, tls_handshake
from ._failures import failure_of
from ._geo import IPDatabase
from ._http import NetConfig, http_request, resolve
from ._proxy import Proxy, ProxyError, UDPAssociation, socks5_udp_associate
from ._quic import quic_handshake
from ._stun import stun_binding, turn_allocate
from ._trace import Trace
from .catalogue import Catalogue, Endpoint, default_catalogue
from .web_connectivity import ProbeContext, base_measurement

APP_TEST_VERSION = "0.1.0"
MAX_AT_ONCE = 16
ADDRESSES_PER_ENDPOINT = 2
UDP_PROTOCOLS = ("udp-stun", "turn", "quic")
UNSUPPORTED = "socks_command_not_supported"  # RFC 1928's answer of a proxy without UDP


async def measure_app(
    key: str,
    context: ProbeContext,
    catalogue: Catalogue | None = None,
    run_id: str | None = None,
    ipdb: IPDatabase | None = None,
) -> dict[str, Any]:
    """One measurement of every feature of app `key` (a CatalogueError lists the known apps).
    Measurements of one comparison (direct and through a tunnel) share a `run_id`. With an IP
    database, DNS answers carry their AS number, so the pipeline can tell answers outside the
    app's networks."""
    app = (catalogue or default_catalogue()).app(key)
    started = context.now()
    clock = time.perf_counter()
    trace = Trace(clock)
    gate = asyncio.Semaphore(MAX_AT_ONCE)

    async def one(endpoint: Endpoint) -> tuple[Trace, Endpoint]:
        async with gate:
            child = trace.child()
            await _try(child, endpoint, context.net)
            return child, endpoint

    features: dict[str, Any] = {}
    for name, feature in app.features.items():
        done = await asyncio.gather(*(one(e) for e in feature.endpoints))
        features[name] = {
            "rule": feature.rule,
            "endpoints": [
                {
                    "target": endpoint.target,
                    "port": endpoint.port,
                    "protocol": endpoint.protocol,
                    "transactions": sorted(trace.merge(child)),
                }
                for child, endpoint in done
            ],
        }
    if ipdb is not None:
        _annotate(trace, ipdb)
    keys: dict[str, Any] = {
        **trace.archival(),
        "failure": None,
        "x_features": features,
        "x_via": context.net.via_label,
        "x_run": run_id,
        "x_networks": list(app.networks) or None,
    }
    measurement = base_measurement(
        None, key, APP_TEST_VERSION, context, started, time.perf_counter() - clock, keys
    )
    _summarise(measurement)
    keys.update(_ooni_keys(key, features, trace))
    return measurement


async def _try(trace: Trace, endpoint: Endpoint, net: NetConfig) -> None:
    """Reach one endpoint with its protocol, recording every step in `trace`."""
    if net.via is not None:
        await _try_via(trace, endpoint, net, net.via)
        return
    addrs, failure = await resolve(trace, endpoint.target, net)
    if failure is not None:
        return
    for ip in addrs[:ADDRESSES_PER_ENDPOINT]:
        if endpoint.protocol in ("udp-stun", "turn"):
            failure = await _datagram(trace, ip, endpoint, net)
        elif endpoint.protocol == "quic" and net.source:
            # aioquic cannot bind a local address: the handshake would not leave from the
            # address (the interface) asked for
            _udp_not_sent(trace, trace.now(), endpoint, UNSUPPORTED)
            return
        elif endpoint.protocol == "quic":
            failure = await quic_handshake(
                trace, ip, endpoint.port, endpoint.host or ip, cafile=net.ca_file,
                timeout=net.timeout,
            )  # fmt: skip
        else:
            failure = await _stream(trace, ip, endpoint, net)
        if failure is None:
            return


async def _try_via(trace: Trace, endpoint: Endpoint, net: NetConfig, via: Proxy) -> None:
    """Through a proxy: names go to the proxy unresolved (local DNS is what a censor may
    poison), UDP through SOCKS5 UDP ASSOCIATE where the proxy offers it."""
    if endpoint.protocol not in UDP_PROTOCOLS:
        await _stream(trace, endpoint.target, endpoint, net)
        return
    t0 = trace.now()
    try:
        if via.scheme != "socks5" or endpoint.protocol == "quic":
            raise ProxyError(UNSUPPORTED)  # HTTP CONNECT carries no UDP; QUIC stays direct
        association = await asyncio.wait_for(socks5_udp_associate(via), net.timeout)
    except Exception as exc:
        failure = exc.failure if isinstance(exc, ProxyError) else failure_of(exc)
        _udp_not_sent(trace, t0, endpoint, failure)
        return
    try:
        await _datagram(trace, endpoint.target, endpoint, net, association)
    finally:
        association.close()


async def _datagram(
    trace: Trace, host: str, endpoint: Endpoint, net: NetConfig, via: UDPAssociation | None = None
) -> str | None:
    """A STUN binding or a TURN allocate, from the configured address or through `via`."""
    ask = stun_binding if endpoint.protocol == "udp-stun" else turn_allocate
    _, failure = await ask(trace, host, endpoint.port, timeout=net.timeout, via=via,
                           source=None if via else net.source)  # fmt: skip
    return failure


def _udp_not_sent(trace: Trace, t0: float, endpoint: Endpoint, failure: str) -> None:
    """The tunnel could not carry this endpoint's UDP (or the address asked for cannot be
    bound): recorded as its only operation."""
    address = f"{endpoint.target}:{endpoint.port}"
    trace.event("connect", t0, address=address, failure=failure, proto="udp",
                tid=trace.transaction())  # fmt: skip


async def _stream(trace: Trace, ip: str, endpoint: Endpoint, net: NetConfig) -> str | None:
    conn, failure = await tcp_connect(
        trace, ip, endpoint.port, timeout=net.timeout, source=net.source, via=net.via
    )
    if conn is None:
        return failure
    try:
        if endpoint.protocol in ("tls", "https"):
            # pinned endpoints are told by their key, not by a CA and a name (an address has none)
            context = tls_context(verify=not endpoint.pins, cafile=net.ca_file)
            failure = await tls_handshake(
                trace, conn, endpoint.host or ip, context=context, timeout=net.timeout
            )
            if failure is None and endpoint.pins:
                failure = _check_pins(trace.tls_handshakes[-1], endpoint.pins)
        if failure is None and endpoint.protocol in ("http", "https"):
            # reached when an HTTP response comes back, whatever its status
            secure = endpoint.protocol == "https"
            default = 443 if secure else 80
            port = "" if endpoint.port == default else f":{endpoint.port}"
            url = f"{endpoint.protocol}://{endpoint.host or ip}{port}{endpoint.path}"
            _, failure = await http_request(trace, conn, url, method=endpoint.method,
                                            timeout=net.timeout)  # fmt: skip
    finally:
        await conn.close()
    return failure


def _annotate(trace: Trace, ipdb: IPDatabase) -> None:
    """OONI's `asn` and `as_org_name` on every address answer."""
    for query in trace.queries:
        for answer in query.get("answers") or ():
            address = answer.get("ipv4") or answer.get("ipv6")
            if address:
                network = ipdb.lookup(address)
                answer["asn"], answer["as_org_name"] = network.asn, network.name


def _check_pins(handshake: dict[str, Any], pins: tuple[str, ...]) -> str | None:
    """The leaf's key must be one of the pins ("sha256/" + base64 of its SPKI's SHA-256);
    another key is someone else's server. The handshake entry records the mismatch."""
    chain = handshake.get("peer_certificates") or []
    if chain:
        leaf = x509.load_der_x509_certificate(base64.b64decode(chain[0]["data"]))
        spki = leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        if "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode() in pins:
            return None
    handshake["failure"] = "ssl_invalid_certificate"
    handshake["x_pin_mismatch"] = True
    return "ssl_invalid_certificate"


def _first_failures(trace: Trace) -> dict[int, str]:
    """Per transaction, the first failure any of its operations recorded."""
    found: dict[int, str] = {}
    for entries in trace.archival().values():
        for entry in entries:
            status = entry.get("status")
            failure = status["failure"] if status else entry.get("failure")
            tid = entry.get("transaction_id")
            if failure and tid is not None:
                found.setdefault(tid, str(failure))
    return found


def _ooni_keys(key: str, features: dict[str, Any], trace: Trace) -> dict[str, Any]:
    """OONI's summary keys for the apps OONI has a test for, so its tools read our
    measurements of them: an endpoint failed when its last attempt did; a feature when one of
    its endpoints did (`each`) or all of them (`any`)."""

    first = _first_failures(trace)

    def failures(name: str) -> dict[str, str | None]:
        endpoints = features.get(name, {}).get("endpoints", [])
        # the last attempt decides: the experiment stops at the first address that answers
        return {f"{e['target']}:{e['port']}":
                first.get(e["transactions"][-1]) if e["transactions"] else None
                for e in endpoints}  # fmt: skip

    def status(name: str) -> tuple[str | None, str | None]:
        found = failures(name)
        if not found:
            return None, None
        failed = [f for f in found.values() if f]
        down = bool(failed) and (features[name]["rule"] == "each" or len(failed) == len(found))
        return ("blocked" if down else "ok"), (failed[0] if down else None)

    if key == "whatsapp":
        chat = failures("messaging")
        registration, web = status("registration"), status("web")
        return {
            "registration_server_status": registration[0],
            "registration_server_failure": registration[1],
            "whatsapp_endpoints_status": status("messaging")[0],
            "whatsapp_endpoints_blocked": sorted(e for e, f in chat.items() if f),
            "whatsapp_endpoints_dns_inconsistent": [],  # as OONI's own probe writes it today
            "whatsapp_web_status": web[0],
            "whatsapp_web_failure": web[1],
        }
    if key == "telegram":
        messaging, web = status("messaging"), status("web")
        tried = {t for e in features.get("messaging", {}).get("endpoints", [])
                 for t in e["transactions"]}  # fmt: skip
        connected = any(c["transaction_id"] in tried and not c["status"]["failure"]
                        for c in trace.tcp_connect)  # fmt: skip
        return {  # OONI: TCP-blocked if no connect to a data centre worked, HTTP if none answered
            "telegram_tcp_blocking": bool(tried) and not connected,
            "telegram_http_blocking": messaging[0] == "blocked",
            "telegram_web_status": web[0],
            "telegram_web_failure": web[1],
        }
    if key == "signal":
        backend = status("messaging")
        return {"signal_backend_status": backend[0], "signal_backend_failure": backend[1]}
    if key == "facebook_messenger":
        reached = {e.split(":")[0]: f is None for e, f in failures("messaging").items()}
        return {
            "facebook_tcp_blocking": status("messaging")[0] == "blocked",
            **{f"facebook_{service}_reachable": reached[host]
               for host, service in MESSENGER_HOSTS.items() if host in reached},
        }  # fmt: skip
    return {}


def _summarise(measurement: dict[str, Any]) -> None:
    """Our pipeline's verdict per feature, kept with the measurement for the person reading it."""
    verdicts = verdicts_of(parse_measurement(orjson.dumps(measurement)))
    measurement["test_keys"]["x_reachwatch"] = {
        v.target.split("/", 1)[-1]: {"verdict": v.verdict, "technique": v.technique,
                                      "reason": v.reason}
        for v in verdicts
    }  # fmt: skip
