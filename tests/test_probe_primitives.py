"""The probe's primitives against real servers on loopback: what each records, and OONI's
failure string for each way a censor (or a broken server) can stop it."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from reachwatch.probe import (
    NetConfig,
    Trace,
    fetch,
    http_request,
    lookup_getaddrinfo,
    lookup_udp,
    tcp_connect,
    tls_context,
    tls_handshake,
)

from .netlab import (
    BLOCKPAGE,
    LOOPBACK,
    PAGE,
    PROBE_ADDRESS,
    LabCA,
    black_hole,
    dns_server,
    doh_server,
    h2_server,
    web_server,
)

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LabCA:
    return LabCA(tmp_path_factory.mktemp("ca"))


ZONE: dict[str, str | list[str]] = {
    "example.test": ["93.184.216.34"],
    "lied.test": ["10.10.34.36"],
    "gone.test": "NXDOMAIN",
    "broken.test": "SERVFAIL",
    "silent.test": "SILENT",
}


@pytest.mark.parametrize(
    ("name", "addrs", "failure"),
    [
        ("example.test", ["93.184.216.34"], None),
        ("lied.test", ["10.10.34.36"], None),
        ("gone.test", [], "dns_nxdomain_error"),
        ("broken.test", [], "dns_servfail_error"),
        ("silent.test", [], "generic_timeout_error"),
    ],
)
def test_dns_over_udp(name: str, addrs: list[str], failure: str | None) -> None:
    async def go() -> tuple[Trace, list[str], str | None]:
        trace = Trace()
        async with dns_server(ZONE) as resolver:
            found, why = await lookup_udp(trace, name, resolver, timeout=0.5)
        return trace, found, why

    trace, found, why = run(go())
    assert (found, why) == (addrs, failure)
    (query,) = trace.queries
    assert query["engine"] == "udp" and query["hostname"] == name and query["failure"] == failure
    assert 0 <= query["t0"] <= query["t"]
    if failure == "generic_timeout_error":
        assert query["t"] - query["t0"] < 2  # bounded by the timeout, not the resolver


def test_getaddrinfo_uses_the_system_resolver() -> None:
    trace = Trace()
    addrs, failure = run(lookup_getaddrinfo(trace, "localhost", timeout=5))
    assert failure is None and "127.0.0.1" in addrs
    assert trace.queries[0]["engine"] == "getaddrinfo"


def test_a_lookup_waiting_for_a_thread_is_not_timed_as_the_networks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """System lookups block a thread each; when more are asked than there are threads, the
    wait for one is the probe's own delay. It must not count against the lookup's timeout (a
    busy probe would report DNS timeouts a user's resolver never had) nor show in its t0..t."""
    from concurrent.futures import ThreadPoolExecutor

    import reachwatch.probe._dns as probe_dns

    def slow_resolver(host: str, *_: Any, **__: Any) -> list[Any]:
        time.sleep(0.2)
        return [(2, 1, 6, "", ("198.19.1.10", 0))]

    one_thread = ThreadPoolExecutor(1)
    monkeypatch.setattr(probe_dns, "_threads", one_thread)
    monkeypatch.setattr(probe_dns.socket, "getaddrinfo", slow_resolver)

    async def five() -> list[tuple[list[str], str | None]]:
        return await asyncio.gather(
            *(lookup_getaddrinfo(trace, f"h{i}.example.org", timeout=0.5) for i in range(5))
        )

    trace = Trace()
    try:
        results = run(five())  # a second in all: the last waits 0.8 s for the thread
    finally:
        one_thread.shutdown()
    assert results == [(["198.19.1.10"], None)] * 5
    for query in trace.queries:
        assert 0.15 < query["t"] - query["t0"] < 0.45
    t0s = sorted(query["t0"] for query in trace.queries)
    assert t0s[-1] - t0s[0] > 0.6  # each started when its thread did


def test_tcp_connect_success_refused_and_timeout() -> None:
    async def go() -> Trace:
        trace = Trace()
        async with web_server() as port:
            conn, failure = await tcp_connect(trace, LOOPBACK, port)
            assert failure is None and conn is not None
            await conn.close()
        closed = port  # the server is gone: its port now refuses
        _, failure = await tcp_connect(trace, LOOPBACK, closed)
        assert failure == "connection_refused"
        async with black_hole() as silent:  # SYNs dropped: bounded by the timeout
            started = time.perf_counter()
            _, failure = await tcp_connect(trace, LOOPBACK, silent, timeout=0.5)
            assert failure == "generic_timeout_error"
            assert time.perf_counter() - started < 2
        return trace

    trace = run(go())
    statuses = [(e["status"]["success"], e["status"]["failure"]) for e in trace.tcp_connect]
    assert statuses[0] == (True, None)
    assert statuses[1] == (False, "connection_refused")
    assert [e["operation"] for e in trace.network_events] == ["connect"] * 3


@pytest.mark.parametrize(
    ("sni", "trusted", "failure"),
    [
        ("example.test", True, None),
        ("wrong.test", True, "ssl_invalid_hostname"),
        ("example.test", False, "ssl_unknown_authority"),
    ],
)
def test_tls_handshake(ca: LabCA, sni: str, trusted: bool, failure: str | None) -> None:
    async def go() -> Trace:
        trace = Trace()
        async with web_server(tls=ca.server_context("example.test")) as port:
            conn, _ = await tcp_connect(trace, LOOPBACK, port)
            assert conn is not None
            context = tls_context(cafile=ca.ca_file if trusted else None)
            assert await tls_handshake(trace, conn, sni, context=context) == failure
            await conn.close()
        return trace

    (handshake,) = run(go()).tls_handshakes
    assert handshake["failure"] == failure and handshake["server_name"] == sni
    # the chain is kept whether or not it verified: a failure's chain is the evidence
    assert [c["format"] for c in handshake["peer_certificates"]] == ["base64"]
    if failure is None:
        assert handshake["tls_version"].startswith("TLS")
        assert handshake["negotiated_protocol"] == "http/1.1"
        chain = handshake["peer_certificates"]
        assert [c["format"] for c in chain] == ["base64"]  # trustme's leaf, issued by the root
        from cryptography import x509

        leaf = x509.load_der_x509_certificate(base64.b64decode(chain[0]["data"]))
        assert "example.test" in str(leaf.extensions)


def test_tls_to_a_server_that_resets(ca: LabCA) -> None:
    async def go() -> str | None:
        trace = Trace()
        async with web_server("reset") as port:  # plain TCP that resets: no ServerHello
            conn, _ = await tcp_connect(trace, LOOPBACK, port)
            assert conn is not None
            conn.writer.write(b"GET / HTTP/1.1\r\n\r\n")  # the server resets after a request
            return await tls_handshake(trace, conn, "example.test", timeout=3)

    assert run(go()) in ("connection_reset", "eof_error")


@pytest.mark.parametrize(
    ("mode", "status", "body", "failure"),
    [
        ("page", 200, PAGE, None),
        ("blockpage", 200, BLOCKPAGE, None),
        ("reset", 0, b"", "connection_reset"),
        ("hang", 0, b"", "generic_timeout_error"),
    ],
)
def test_http_request(mode: str, status: int, body: bytes, failure: str | None) -> None:
    async def go() -> tuple[Trace, Any, str | None, float]:
        trace = Trace()
        async with web_server(mode) as port:
            conn, _ = await tcp_connect(trace, LOOPBACK, port)
            assert conn is not None
            started = time.perf_counter()
            response, why = await http_request(
                trace, conn, f"http://{LOOPBACK}:{port}/", timeout=0.5
            )
            await conn.close()
            return trace, response, why, time.perf_counter() - started

    trace, response, why, took = run(go())
    assert (response.status, response.body, why) == (status, body, failure)
    operations = [e["operation"] for e in trace.network_events]
    assert operations[:2] == ["connect", "write"] and "read" in operations
    if failure is not None:
        assert trace.network_events[-1]["failure"] == failure  # the read that broke
    (request,) = trace.requests
    assert request["failure"] == failure and request["response"]["code"] == status
    assert request["request"]["method"] == "GET"
    assert took < 10  # a hanging server costs the timeout (0.5 s), not forever


def test_http_request_truncates_at_the_body_limit() -> None:
    async def go() -> Any:
        trace = Trace()
        async with web_server() as port:
            conn, _ = await tcp_connect(trace, LOOPBACK, port)
            assert conn is not None
            response, _ = await http_request(
                trace, conn, f"http://{LOOPBACK}:{port}/", body_limit=100
            )
            await conn.close()
            return response

    response = run(go())
    assert response.truncated and len(response.body) == 100


def test_fetch_follows_redirects_and_stops_after_ten(tmp_path: Path) -> None:
    async def go() -> tuple[Any, Any, Trace]:
        trace = Trace()
        async with web_server() as final, web_server(f"redirect:http://{LOOPBACK}:{final}/") as hop:
            followed = await fetch(trace, f"http://{LOOPBACK}:{hop}/", NetConfig(timeout=3))
        async with web_server("redirect:/again") as loop_port:
            endless = await fetch(Trace(), f"http://{LOOPBACK}:{loop_port}/", NetConfig(timeout=3))
        return followed, endless, trace

    followed, endless, trace = run(go())
    assert followed.failure is None and followed.response.status == 200
    assert followed.response.body == PAGE
    assert len(trace.archival()["requests"]) == 2
    assert trace.archival()["requests"][0]["response"]["code"] == 200  # newest first, as OONI
    assert endless.failure == "unknown_failure: stopped after too many redirects"


def test_what_the_primitives_record_reads_back_as_an_ooni_measurement(ca: LabCA) -> None:
    async def go() -> Trace:
        trace = Trace()
        async with dns_server(ZONE) as resolver:
            await lookup_udp(trace, "example.test", resolver, timeout=0.5)
        async with web_server(tls=ca.server_context("example.test")) as port:
            conn, _ = await tcp_connect(trace, LOOPBACK, port)
            assert conn is not None
            await tls_handshake(trace, conn, "example.test", context=tls_context(cafile=ca.ca_file))
            await http_request(trace, conn, f"https://example.test:{port}/")
            await conn.close()
        return trace

    from reachwatch.model import parse_measurement
    from reachwatch.pipeline import observations_of

    from .conftest import dumps, measurement

    keys = run(go()).archival()
    pm = parse_measurement(dumps(measurement("urlgetter", {**keys, "failure": None})))
    kinds = [row.kind for row in observations_of(pm)]
    assert kinds == ["dns", "tcp", "tls", "http"]
    http = observations_of(pm)[-1]
    assert (http.http_status, http.http_body_length) == (200, len(PAGE))


@pytest.mark.parametrize(
    ("name", "addrs", "failure"),
    [("example.test", ["93.184.216.34"], None), ("gone.test", [], "dns_nxdomain_error")],
)
def test_dns_over_https(ca: LabCA, name: str, addrs: list[str], failure: str | None) -> None:
    from reachwatch.probe import lookup_doh

    async def go() -> tuple[Trace, list[str], str | None]:
        trace = Trace()
        async with (
            doh_server(ZONE, ca.server_context("doh.test")) as port,
            dns_server({"doh.test": [LOOPBACK]}) as resolver,
        ):
            net = NetConfig(resolver=resolver, ca_file=ca.ca_file, timeout=2)
            found, why = await lookup_doh(trace, name, f"https://doh.test:{port}/dns-query", net)
        return trace, found, why

    trace, found, why = run(go())
    assert (found, why) == (addrs, failure)
    (query,) = trace.queries  # the HTTPS exchange that carried it is not a site's fetch
    assert query["engine"] == "doh" and query["resolver_address"].startswith("https://doh.test")
    assert trace.requests == [] and trace.tcp_connect == []


@pytest.mark.parametrize(
    ("mode", "status", "failure"), [("page", 200, None), ("reset", 0, "connection_reset")]
)
def test_http2_when_the_server_speaks_it(
    ca: LabCA, mode: str, status: int, failure: str | None
) -> None:
    async def go() -> tuple[Any, Trace]:
        trace = Trace()
        async with (
            h2_server(ca.server_context("example.test"), mode) as port,
            dns_server({"example.test": [LOOPBACK]}) as resolver,
        ):
            net = NetConfig(resolver=resolver, ca_file=ca.ca_file, timeout=2)
            return await fetch(trace, f"https://example.test:{port}/", net), trace

    result, trace = run(go())
    assert result.failure == failure
    assert trace.tls_handshakes[0]["negotiated_protocol"] == "h2"
    (request,) = trace.requests
    assert request["alpn"] == "h2" and request["response"]["code"] == status
    if status == 200:
        assert result.response.body == PAGE


def test_udp_lookups_leave_from_the_source_address() -> None:
    """`--source-address` (and `--interface`) bind DNS queries too, not only connections."""
    clients: list[str] = []

    async def go() -> list[str]:
        async with dns_server({"example.test": [LOOPBACK]}, clients) as resolver:
            found, _ = await lookup_udp(Trace(), "example.test", resolver, timeout=1,
                                        source=PROBE_ADDRESS)  # fmt: skip
        return found

    assert asyncio.run(go()) == [LOOPBACK]
    assert clients == [PROBE_ADDRESS]
