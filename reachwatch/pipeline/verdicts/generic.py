"""dnscheck and urlgetter: general-purpose experiments, judged on their input.

- dnscheck: the input is a resolver (`dot://`, `https://` DoH, `udp://`); ok if any of its
  addresses answered the lookup; else blocked where the transport to it broke.
- urlgetter: the input is a URL fetched once; OONI records which operation failed.
"""

from __future__ import annotations

from ...model import DNSCheckKeys, ParsedMeasurement, URLGetterKeys
from ..fingerprints import Fingerprints
from ._common import Verdict, blocked, error, is_network_failure, ok, technique_for
from ._reach import Reach, commonest

OPERATION_STAGE = {
    "resolve": "dns",
    "connect": "tcp",
    "tls_handshake": "tls",
    "quic_handshake": "tls",
    "http_round_trip": "http",
    "http_transaction": "http",
    "read": "http",
    "write": "http",
}


def dnscheck(pm: ParsedMeasurement, _fps: Fingerprints) -> list[Verdict]:
    target = pm.input or "(no resolver)"
    keys = pm.keys
    if not isinstance(keys, DNSCheckKeys):
        return [error(target, "test_keys are missing")]
    encrypted = target.startswith(("dot://", "https://", "doq://"))
    if keys.bootstrap_failure:
        reach = Reach(False, "dns", keys.bootstrap_failure, "lookup of the resolver's name")
        return [blocked(target, reach.technique, reach.describe())]
    reaches = []
    for address, lookup in sorted((keys.lookups or {}).items()):
        answered = any(q.answers for q in lookup.queries or ())
        if answered:
            reaches.append(Reach(True, where=address))
            continue
        tcp = next((c for c in lookup.tcp_connects() if c.status and c.status.failure), None)
        tls = next((h for h in lookup.tls_handshakes or () if h.failure), None)
        query = next((q for q in lookup.queries or () if q.failure), None)
        if tcp is not None and tcp.status is not None:
            reaches.append(Reach(False, "tcp", tcp.status.failure, f"connect to {address}"))
        elif tls is not None:
            reaches.append(Reach(False, "tls", tls.failure, f"handshake with {address}"))
        elif query is not None or lookup.failure:
            failure = (query.failure if query else None) or lookup.failure
            stage = "tls" if encrypted and failure != "dns_nxdomain_error" else "dns"
            reaches.append(Reach(False, stage, failure, f"query to {address}"))
    if not reaches:
        return [error(target, "no lookup was recorded")]
    failed = [r for r in reaches if not r.reached]
    if len(failed) < len(reaches):
        return [ok(target, f"{len(reaches) - len(failed)} of {len(reaches)} addresses answered")]
    worst = commonest(failed)
    if not worst.failure or not is_network_failure(worst.failure):
        return [error(target, worst.describe())]
    return [blocked(target, worst.technique, f"no address answered; e.g. {worst.describe()}")]


def urlgetter(pm: ParsedMeasurement, _fps: Fingerprints) -> list[Verdict]:
    target = pm.input or "(no input)"
    keys = pm.keys
    if not isinstance(keys, URLGetterKeys):
        return [error(target, "test_keys are missing")]
    if keys.failure is None:
        return [ok(target, "fetched")]
    if not is_network_failure(keys.failure):
        return [error(target, f"the fetch failed: {keys.failure[:120]}")]
    stage = OPERATION_STAGE.get(keys.failed_operation or "", "http")
    return [
        blocked(
            target,
            technique_for(stage, keys.failure),
            f"{keys.failed_operation or 'the fetch'} failed with {keys.failure}",
        )
    ]
