"""What every verdict rule shares: the Verdict row, OONI failure strings mapped to techniques,
bogon ranges, and the stage at which a chain of operations failed."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import NamedTuple

OK = "ok"
BLOCKED = "blocked"
DOWN = "down"
ERROR = "error"


class Verdict(NamedTuple):
    """One verdict for one target of one measurement."""

    target: str
    verdict: str
    technique: str | None
    reason: str
    probe_says: str | None = None


def ok(target: str, reason: str, probe_says: str | None = None) -> Verdict:
    return Verdict(target, OK, None, reason, probe_says)


def blocked(target: str, technique: str, reason: str, probe_says: str | None = None) -> Verdict:
    return Verdict(target, BLOCKED, technique, reason, probe_says)


def down(target: str, reason: str, probe_says: str | None = None) -> Verdict:
    return Verdict(target, DOWN, None, reason, probe_says)


def error(target: str, reason: str, probe_says: str | None = None) -> Verdict:
    return Verdict(target, ERROR, None, reason, probe_says)


# OONI failure strings (df-007, including probe-legacy's) grouped by what they say happened.
TIMEOUTS = frozenset(
    {"generic_timeout_error", "deferred_timeout_error", "tcp_timed_out_error", "task_timed_out"}
)
RESETS = frozenset({"connection_reset", "connection_lost_error", "network_reset"})
REFUSED = frozenset({"connection_refused", "connection_refused_error"})
EOFS = frozenset({"eof_error", "connection_done", "connection_aborted"})
UNREACHABLE = frozenset({"host_unreachable", "network_unreachable", "network_down"})
NXDOMAIN = frozenset(
    {"dns_nxdomain_error", "android_dns_cache_no_data", "dns_name_error", "dns_no_answer"}
)
DNS_FAILURES = NXDOMAIN | frozenset(
    {
        "dns_lookup_error",
        "dns_name_failure",
        "dns_server_misbehaving",
        "dns_servfail_error",
        "dns_refused_error",
        "dns_temporary_failure",
        "dns_non_recoverable_failure",
        "dns_reply_with_wrong_query_id",
        "dns_bogon_error",
    }
)
CERTIFICATE = frozenset(
    {"ssl_invalid_hostname", "ssl_unknown_authority", "ssl_invalid_certificate"}
)


def is_network_failure(failure: str) -> bool:
    """A failure of the path (what a censor causes), as opposed to one in the server's reply."""
    return (
        failure.startswith("ssl_error")  # Measurement Kit's certificate errors
        or failure in TIMEOUTS
        or failure in RESETS
        or failure in REFUSED
        or failure in EOFS
        or failure in UNREACHABLE
        or failure in DNS_FAILURES
        or failure in CERTIFICATE
        or failure == "ssl_failed_handshake"
    )


_KIND = {
    **dict.fromkeys(TIMEOUTS | UNREACHABLE, "timeout"),
    **dict.fromkeys(RESETS, "reset"),
    **dict.fromkeys(REFUSED, "refused"),
    **dict.fromkeys(EOFS, "eof"),
    **dict.fromkeys(CERTIFICATE, "mitm"),
}
# the kinds DESIGN.md names at each stage; any other failure folds into `reset`
_STAGE_KINDS = {
    "tcp": frozenset({"timeout", "reset", "refused"}),
    "tls": frozenset({"timeout", "reset", "eof", "mitm"}),
    "http": frozenset({"timeout", "reset"}),
}


def technique_for(stage: str, failure: str) -> str:
    """`stage.kind` in DESIGN.md's vocabulary for a failure string seen at a stage."""
    if stage == "dns":
        if failure in TIMEOUTS:
            return "dns.timeout"
        if failure in NXDOMAIN:
            return "dns.nxdomain"
        # SERVFAIL, REFUSED and the like where the control resolved: the answer differs
        return "dns.inconsistent"
    if stage == "udp":
        return "udp.timeout"
    kind = "mitm" if failure.startswith("ssl_error") else _KIND.get(failure, "reset")
    return f"{stage}.{kind if kind in _STAGE_KINDS[stage] else 'reset'}"


_BOGONS = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "::ffff:0:0/96",
        "::/96",
        "100::/64",
        "2001:10::/28",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
]


@lru_cache(maxsize=65536)
def is_bogon(address: str) -> bool:
    """Private, loopback, reserved or documentation addresses (OONI's list): no public site's."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip.version == net.version and ip in net for net in _BOGONS)


@lru_cache(maxsize=65536)
def is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True
