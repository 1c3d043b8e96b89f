"""Observations: a row per DNS query, TCP connect, TLS handshake, HTTP transaction, UDP exchange."""

from __future__ import annotations

from collections import Counter

from reachwatch.model import WebConnectivityKeys, parse_measurement
from reachwatch.pipeline import observations_of

from .conftest import dumps, measurement, sample, scenario


def test_one_row_per_operation_with_failures_as_recorded() -> None:
    pm = parse_measurement(scenario("tlsBlockingConnectionResetWithConsistentDNS"))
    keys = pm.keys
    assert isinstance(keys, WebConnectivityKeys)
    rows = observations_of(pm)
    kinds = Counter(r.kind for r in rows)
    assert kinds["dns"] == len(keys.queries or [])
    assert kinds["tcp"] == len(keys.tcp_connects())
    assert kinds["tls"] == len(keys.tls_handshakes or [])
    assert kinds["http"] == len(keys.requests or [])
    assert [r.idx for r in rows] == list(range(len(rows)))
    tls_failures = {r.failure for r in rows if r.kind == "tls"}
    assert "connection_reset" in tls_failures  # OONI's string, untouched
    dns = next(r for r in rows if r.kind == "dns" and r.engine == "getaddrinfo")
    assert dns.answers == ["93.184.216.34"]


def test_tor_targets_are_scoped() -> None:
    rows = observations_of(parse_measurement(sample("tor.json")))
    assert rows and all(r.scope for r in rows)
    assert {r.kind for r in rows} >= {"tcp"}


def test_stun_exchange_is_one_udp_row() -> None:
    keys = {
        "endpoint": "stun.l.google.com:19302",
        "failure": "generic_timeout_error",
        "network_events": [
            {"operation": "resolve_start", "t": 0.0},
            {"operation": "connect", "proto": "udp", "address": "74.125.250.129:19302", "t": 0.1},
            {"operation": "write", "num_bytes": 20, "failure": None, "t": 0.2},
            {"operation": "read", "failure": "generic_timeout_error", "t": 5.2},
        ],
    }
    rows = observations_of(parse_measurement(dumps(measurement("stunreachability", keys))))
    (udp,) = [r for r in rows if r.kind == "udp"]
    assert (udp.ip, udp.port, udp.failure) == ("74.125.250.129", 19302, "generic_timeout_error")


def test_an_address_whose_port_is_no_port_keeps_it_as_written() -> None:
    """A 32-bit port column cannot hold 99999999999: the row must still be storable."""
    from reachwatch.pipeline._observations import split_address

    assert split_address("1.2.3.4:443") == ("1.2.3.4", 443)
    assert split_address("[::1]:8443") == ("::1", 8443)
    assert split_address("1.2.3.4:99999999999") == ("1.2.3.4:99999999999", None)
    assert split_address("1.2.3.4:65536") == ("1.2.3.4:65536", None)
    assert split_address("example.org") == ("example.org", None)
