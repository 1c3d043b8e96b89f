"""OONI's "classic" web_connectivity decision, replayed from its own analysis file.

A reference for comparison only: it walks the `Linear` list of probe-cli's minipipeline analysis
(`analysis.json`) with the rules of `analysisClassicComputeBlockingAccessible`, so that every
measurement with an analysis file gets OONI's current verdict even if the probe that made it ran
an older engine. Returns OONI's (blocking, accessible) pair mapped to our words.
"""

from __future__ import annotations

import ipaddress
from typing import Any

BODY_PROPORTION = 0.7


def _dns_consistency(a: dict[str, Any]) -> str | None:
    expectations = a.get("ControlExpectations")
    if (
        not a.get("DNSLookupUnexpectedFailure")
        and not a.get("DNSLookupSuccessWithInvalidAddressesClassic")
        and (a.get("DNSLookupSuccessWithValidAddressClassic") or a.get("DNSLookupExpectedFailure"))
    ):
        return "consistent"
    if (
        a.get("DNSLookupSuccessWithInvalidAddressesClassic")
        or a.get("DNSLookupUnexpectedFailure")
        or (
            a.get("DNSLookupSuccess")
            and expectations is not None
            and not expectations.get("DNSAddresses")
        )
    ):
        return "inconsistent"
    return None


def _http_diff(a: dict[str, Any]) -> bool:
    factor = a.get("HTTPFinalResponseDiffBodyProportionFactor")
    body = None if factor is None else factor > BODY_PROPORTION
    uncommon = a.get("HTTPFinalResponseDiffUncommonHeadersIntersection")
    headers = None if uncommon is None else len(uncommon) > 0
    words = a.get("HTTPFinalResponseDiffTitleDifferentLongWords")
    title = None if words is None else len(words) == 0
    if a.get("HTTPFinalResponseDiffStatusCodeMatch") is True:
        return not (body is True or headers is True or title is True)
    return True


def _loopback_only(addrs: list[str] | None) -> bool:
    ips = []
    for addr in addrs or ():
        try:
            ips.append(ipaddress.ip_address(addr))
        except ValueError:
            continue
    return bool(ips) and all(ip.is_loopback for ip in ips)


def classic_verdict(a: dict[str, Any]) -> str:
    """'ok', 'down', 'error' or 'blocked:<OONI type>' as OONI's classic engine concludes."""
    dns = _dns_consistency(a)

    def nil() -> str:
        return "blocked:dns" if dns == "inconsistent" else "error"

    def string(kind: str) -> str:
        return "blocked:dns" if dns == "inconsistent" else f"blocked:{kind}"

    def website_down() -> str:
        return "blocked:dns" if dns == "inconsistent" else "down"

    for o in a.get("Linear") or ():
        kind, failure = o.get("Type"), o.get("Failure")
        if o.get("HTTPResponseIsFinal") is True:
            if o.get("TLSHandshakeFailure") == "":
                return "ok"
            if o.get("ControlHTTPFailure") is None:
                return nil()
            return string("http-diff") if _http_diff(a) else "ok"
        if kind == 3 and failure:
            if o.get("ControlHTTPFailure") is None:
                return nil()
            if o.get("ControlHTTPFailure"):
                return website_down()
            return string("http-failure")
        if kind in (1, 2) and failure:
            own = "ControlTLSHandshakeFailure" if kind == 2 else "ControlTCPConnectFailure"
            if o.get(own) is None:
                return nil() if o.get("ControlHTTPFailure") is None else string("http-failure")
            if o.get(own):
                return website_down()
            return string("http-failure" if kind == 2 else "tcp_ip")
        if kind == 0 and failure:
            if o.get("ControlDNSLookupFailure") is None:
                return "ok" if o.get("ControlHTTPFailure") is None else string("dns")
            if o.get("ControlDNSLookupFailure"):
                return website_down()
            if o.get("ControlDNSResolvedAddrs") is not None and not o.get(
                "ControlDNSResolvedAddrs"
            ):
                return website_down()
            return string("dns")
        loopback = kind == 0 and failure == "" and o.get("ControlDNSLookupFailure") == ""
        if loopback and _loopback_only(o.get("DNSResolvedAddrs")):
            if _loopback_only(o.get("ControlDNSResolvedAddrs")):
                return website_down()
            return string("dns")
    return "error"
