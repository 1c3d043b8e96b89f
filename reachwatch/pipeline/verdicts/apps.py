"""Messaging apps: one target per feature, each following the app's own rule.

- whatsapp/messaging: any of the chat endpoints (e*.whatsapp.net, 443 or 5222) is enough;
  whatsapp/registration (v.whatsapp.net) and whatsapp/web (web.whatsapp.com) need their host.
- telegram/messaging: any data centre answering is enough; telegram/web needs web.telegram.org.
- signal/messaging: every backend host is required (the app needs chat, storage and CDN).
- facebook_messenger/messaging: every endpoint is required, as OONI's test defines it.
- stunreachability: the STUN server named by the input.

These tests have no control: a failure is `blocked` at the stage where it happened (the apps'
global outages are rare and short), except where the probe itself is known to be wrong.
"""

from __future__ import annotations

import re
from datetime import datetime

from ...model import (
    EndpointRecord,
    FacebookMessengerKeys,
    ParsedMeasurement,
    Primitives,
    SignalKeys,
    StunReachabilityKeys,
    TelegramKeys,
    WhatsAppKeys,
)
from ..fingerprints import Fingerprints
from ._common import (
    CERTIFICATE,
    TIMEOUTS,
    Verdict,
    blocked,
    error,
    is_bogon,
    is_network_failure,
    ok,
)
from ._reach import Reach, addresses_of, commonest, reach_endpoints, reach_host, url_host

WHATSAPP_CHAT = re.compile(r"^e\d+\.whatsapp\.net$")
FACEBOOK_ASN = 32934
MESSENGER_HOSTS = {
    "b-api.facebook.com": "b_api",
    "b-graph.facebook.com": "b_graph",
    "edge-mqtt.facebook.com": "edge",
    "external.xx.fbcdn.net": "external_cdn",
    "scontent.xx.fbcdn.net": "scontent_cdn",
    "star.c10r.facebook.com": "star",
}
SIGNAL_RETIRED = {"api.directory.signal.org": datetime(2023, 5, 2)}
"""Hosts Signal retired: failing to reach them after that date says nothing about censorship."""


def _feature(target: str, reaches: list[Reach], rule: str, says: str | None) -> Verdict:
    """`any`: one reached endpoint is enough; `each`: all of them must be reached."""
    tried = [r for r in reaches if r.attempted]
    if not tried:
        return error(target, "no endpoint of this feature was measured", says)
    failed = [r for r in tried if not r.reached]
    reached = len(tried) - len(failed)
    if (rule == "any" and reached) or (rule == "each" and not failed):
        return ok(target, f"{reached} of {len(tried)} endpoints reached", says)
    worst = commonest(failed)
    if not worst.technique_hint and worst.failure and not is_network_failure(worst.failure):
        return error(target, f"{worst.describe()}: not a network failure", says)
    return blocked(
        target,
        worst.technique,
        f"{len(failed)} of {len(tried)} endpoints failed; e.g. {worst.describe()}",
        says,
    )


def whatsapp(pm: ParsedMeasurement, _fps: Fingerprints) -> list[Verdict]:
    keys = pm.keys
    if not isinstance(keys, WhatsAppKeys):
        return [error("whatsapp/messaging", "test_keys are missing")]
    chat_ips = {
        ip
        for query in keys.queries or ()
        if WHATSAPP_CHAT.match((query.hostname or "").lower())
        for ip in addresses_of(keys, (query.hostname or "").lower())
    }
    chat = [r for r in reach_endpoints(keys, {443, 5222}) if r.ip in chat_ips]
    if not chat:  # no chat address resolved: the lookups tell why
        chat = [
            reach_host(keys, (q.hostname or "").lower(), via_http=False)
            for q in keys.queries or ()
            if WHATSAPP_CHAT.match((q.hostname or "").lower())
        ]
    web = reach_host(keys, "web.whatsapp.com")
    return [
        _feature("whatsapp/messaging", chat, "any", keys.whatsapp_endpoints_status),
        _feature(
            "whatsapp/registration",
            [reach_host(keys, "v.whatsapp.net")],
            "each",
            keys.registration_server_status,
        ),
        # any HTTP answer over a verified TLS connection is WhatsApp's own; the status code it
        # sends has changed over the years (OONI's old "expected 302" misfired in Dec 2022)
        _feature("whatsapp/web", [web], "each", keys.whatsapp_web_status),
    ]


def telegram(pm: ParsedMeasurement, _fps: Fingerprints) -> list[Verdict]:
    keys = pm.keys
    if not isinstance(keys, TelegramKeys):
        return [error("telegram/messaging", "test_keys are missing")]
    web_ips = addresses_of(keys, "web.telegram.org")  # the web client is not a data centre
    centres = [r for r in reach_endpoints(keys, {80, 443}) if r.ip not in web_ips]
    web = [reach_host(keys, "web.telegram.org")]
    says_tcp = (
        None
        if keys.telegram_tcp_blocking is None
        else ("blocked" if keys.telegram_tcp_blocking else "ok")
    )
    return [
        _feature("telegram/messaging", centres, "any", says_tcp),
        _feature("telegram/web", web, "each", keys.telegram_web_status),
    ]


def signal(pm: ParsedMeasurement, _fps: Fingerprints) -> list[Verdict]:
    target = "signal/messaging"
    keys = pm.keys
    if not isinstance(keys, SignalKeys):
        return [error(target, "test_keys are missing")]
    says = keys.signal_backend_status
    unreliable = _signal_probe_unreliable(pm)
    hosts = sorted(
        {url_host(r.request.url if r.request else None) for r in keys.requests or ()} - {""}
    )
    reaches = []
    for host in hosts:
        retired = SIGNAL_RETIRED.get(host)
        if retired is not None and pm.start_time >= retired:
            continue
        reaches.append(reach_host(keys, host))
    pinned = [r for r in reaches if not r.reached and r.failure in CERTIFICATE]
    if unreliable and (pinned or any(not r.reached for r in reaches)):
        return [error(target, unreliable, says)]
    return [_feature(target, reaches, "each", says)]


def _signal_probe_unreliable(pm: ParsedMeasurement) -> str | None:
    """Probe versions whose Signal results OONI knows to be wrong (certificate pin rotation)."""
    version = _version(pm.base.test_version)
    start = pm.start_time
    if version == (0, 2, 4):
        return "Signal test 0.2.4 is known to report false failures (ooni/probe#2636)"
    if version <= (0, 2, 3) and start >= datetime(2023, 11, 7):
        return "Signal tests up to 0.2.3 pin certificates Signal rotated in Nov 2023 (probe#2627)"
    if version < (0, 2, 2) and start >= datetime(2022, 10, 19):
        return (
            "Signal tests before 0.2.2 pin the root CA Signal replaced on 2022-10-19 (probe#2344)"
        )
    return None


def facebook_messenger(pm: ParsedMeasurement, _fps: Fingerprints) -> list[Verdict]:
    target = "facebook_messenger/messaging"
    keys = pm.keys
    if not isinstance(keys, FacebookMessengerKeys):
        return [error(target, "test_keys are missing")]
    says = (
        None
        if keys.facebook_tcp_blocking is None
        else ("blocked" if (keys.facebook_tcp_blocking or keys.facebook_dns_blocking) else "ok")
    )
    reaches = []
    for host, key in MESSENGER_HOSTS.items():
        reach = reach_host(keys, host, via_http=False)
        inconsistent = _dns_outside(keys, host, {FACEBOOK_ASN})
        if inconsistent is None:
            inconsistent = getattr(keys, f"facebook_{key}_dns_consistent", None) is False
        if inconsistent:
            reach = Reach(
                False,
                "dns",
                "answers outside Facebook's network",
                f"lookup of {host}",
                technique_hint="dns.inconsistent",
            )
        elif not reach.attempted and getattr(keys, f"facebook_{key}_reachable", None) is not None:
            # older probes recorded only their conclusion per endpoint
            reachable = getattr(keys, f"facebook_{key}_reachable")
            reach = Reach(
                bool(reachable),
                "tcp",
                None if reachable else "unreachable",
                f"connect to {host} (as the probe reported)",
                technique_hint="tcp.timeout",
            )
        reaches.append(reach)
    return [_feature(target, reaches, "each", says)]


def _dns_bogons(keys: Primitives, host: str) -> bool:
    """True if `host` got addresses and every one is a bogon that no network announces: the
    probe's IP database looked it up and found no AS (a lab's own ranges have one; without a
    database there is no telling)."""
    answers = [
        answer
        for query in keys.queries or ()
        if (query.hostname or "").lower() == host
        for answer in query.answers or ()
        if answer.ipv4
    ]
    return bool(answers) and all(is_bogon(a.ipv4 or "") and a.asn == 0 for a in answers)


def _dns_outside(keys: Primitives, host: str, networks: set[int]) -> bool | None:
    """True if every answer for `host` is outside the app's networks; None if unknown."""
    asns = [
        answer.asn
        for query in keys.queries or ()
        if (query.hostname or "").lower() == host
        for answer in query.answers or ()
        if answer.ipv4 and answer.asn
    ]
    if not asns:
        return None
    return networks.isdisjoint(asns)


def stunreachability(pm: ParsedMeasurement, _fps: Fingerprints) -> list[Verdict]:
    keys = pm.keys
    endpoint = keys.endpoint if isinstance(keys, StunReachabilityKeys) else None
    target = pm.input or (f"stun://{endpoint}" if endpoint else "stun://(unknown)")
    if not isinstance(keys, StunReachabilityKeys):
        return [error(target, "test_keys are missing")]
    if keys.failure is None:
        return [ok(target, "the STUN server answered the binding request")]
    failed_lookup = next((q for q in keys.queries or () if q.failure and not q.answers), None)
    if failed_lookup is not None:
        reach = Reach(False, "dns", failed_lookup.failure, f"lookup of {failed_lookup.hostname}")
        return [blocked(target, reach.technique, reach.describe())]
    if is_network_failure(keys.failure):
        return [
            blocked(target, "udp.timeout", f"the binding request got no answer ({keys.failure})")
        ]
    return [error(target, f"the test failed: {keys.failure}")]


def _version(text: str | None) -> tuple[int, ...]:
    parts = []
    for piece in (text or "0").split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


_STAGE_ORDER = {"dns": 0, "tcp": 1, "tls": 2, "http": 3, "udp": 3}
_GOAL = {
    "tcp": "tcp",
    "http": "http",
    "tls": "tls",
    "https": "http",
    "udp-stun": "udp",
    "turn": "udp",
    "quic": "quic",
}
"""The operation that, once it succeeds, means the endpoint was reached with its protocol."""


def catalogue_app(pm: ParsedMeasurement, _fps: Fingerprints) -> list[Verdict]:
    """An app measured from reachwatch's catalogue: each feature by its own rule, from the
    operations that tried each of its endpoints (`x_features`)."""
    keys = pm.keys
    test = pm.base.test_name
    if not isinstance(keys, Primitives) or not keys.x_features:
        return [error(f"{test}/messaging", "no feature of the app was measured")]
    operations = _operations(keys)
    networks = set(keys.x_networks or ())

    def reach(endpoint: EndpointRecord) -> Reach:
        host = endpoint.target.lower()
        if _dns_bogons(keys, host):
            # a private or reserved address is not the app's server, whatever happened next
            return Reach(False, "dns", "answers are bogons", f"lookup of {host}",
                         technique_hint="dns.bogon")  # fmt: skip
        if networks and _dns_outside(keys, host, networks):
            # reached or not, an address outside the service's networks is not the service
            return Reach(False, "dns", "answers outside the app's networks",
                         f"lookup of {host}", technique_hint="dns.inconsistent")  # fmt: skip
        return _endpoint_reach(endpoint, operations)

    return [
        _feature(
            f"{test}/{name}",
            [reach(endpoint) for endpoint in record.endpoints],
            record.rule,
            None,
        )
        for name, record in keys.x_features.items()
    ]


def _operations(keys: Primitives) -> dict[int, list[tuple[str, str | None, bool]]]:
    """Per transaction: (stage, failure, reached) of every operation it recorded."""
    out: dict[int, list[tuple[str, str | None, bool]]] = {}

    def add(tid: int | None, stage: str, failure: str | None, reached: bool) -> None:
        if tid is not None:
            out.setdefault(tid, []).append((stage, failure, reached))

    for query in keys.queries or ():
        failed = bool(query.failure) and not query.answers
        add(query.transaction_id, "dns", query.failure if failed else None, not failed)
    for connect in keys.tcp_connects():
        failure = connect.status.failure if connect.status else "unknown_failure"
        add(connect.transaction_id, "tcp", failure, failure is None)
    for handshake in keys.tls_handshakes or ():
        add(handshake.transaction_id, "tls", handshake.failure, handshake.failure is None)
    for handshake in keys.quic_handshakes or ():
        # QUIC is TLS over UDP: silence is a UDP drop, anything else a failed TLS handshake
        failure = handshake.failure
        stage = "quic" if failure is None else "udp" if failure in TIMEOUTS else "tls"
        add(handshake.transaction_id, stage, failure, failure is None)
    for request in keys.requests or ():
        answered = bool(request.response and (request.response.code or 0) > 0)
        reached = request.failure is None or (answered and not is_network_failure(request.failure))
        add(request.transaction_id, "http", None if reached else request.failure, reached)
    for event in keys.events():
        # a read answers; a failed connect is a datagram never sent (or a tunnel without UDP)
        telling = event.operation == "read" or (event.operation == "connect" and event.failure)
        if event.proto == "udp" and telling:
            add(event.transaction_id, "udp", event.failure, event.failure is None)
    return out


def _endpoint_reach(
    endpoint: EndpointRecord, operations: dict[int, list[tuple[str, str | None, bool]]]
) -> Reach:
    where = f"{endpoint.protocol} {endpoint.target}:{endpoint.port}"
    steps = [step for tid in endpoint.transactions for step in operations.get(tid, ())]
    if not steps:
        return Reach(False, where=where, attempted=False)
    goal = _GOAL.get(endpoint.protocol, "tcp")
    if any(stage == goal and reached for stage, _, reached in steps):
        return Reach(True, where=where)
    failures = [(stage, failure) for stage, failure, reached in steps if not reached and failure]
    if not failures:
        return Reach(False, goal, "unknown_failure", where)
    stage, failure = max(failures, key=lambda item: _STAGE_ORDER.get(item[0], 0))
    return Reach(False, stage, failure, where)
