"""Circumvention's plumbing: SOCKS5 CONNECT and UDP ASSOCIATE, HTTP CONNECT, against loopback
proxies (one that relays UDP, one that does not)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reachwatch import InputError
from reachwatch.probe import Trace, stun_binding
from reachwatch.probe._proxy import (
    Proxy,
    ProxyError,
    http_connect,
    parse_proxy,
    socks5_connect,
    socks5_udp_associate,
)

from .netlab import (
    LOOPBACK,
    PAGE,
    http_connect_proxy,
    socks5_server,
    stun_server,
    web_server,
)


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


def test_socks5_connect_carries_a_fetch() -> None:
    async def go() -> bytes:
        async with web_server() as site, socks5_server() as proxy_port:
            proxy = Proxy("socks5", LOOPBACK, proxy_port)
            return await _get(*await socks5_connect(proxy, LOOPBACK, site))

    reply = asyncio.run(go())
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(PAGE)


def test_socks5_reports_the_proxy_side_failure() -> None:
    async def go() -> str:
        async with web_server() as closing:
            closed = closing  # a port nothing listens on once the server is gone
        async with socks5_server() as proxy_port:
            try:
                await socks5_connect(Proxy("socks5", LOOPBACK, proxy_port), LOOPBACK, closed)
            except ProxyError as exc:
                return exc.failure
        return "no failure"

    assert asyncio.run(go()) == "socks_connection_refused"


def test_stun_through_a_udp_relay_and_a_proxy_without_udp() -> None:
    async def go() -> tuple[Any, str]:
        async with stun_server() as stun, socks5_server(udp=True) as relaying:
            association = await socks5_udp_associate(Proxy("socks5", LOOPBACK, relaying))
            try:
                mapped, failure = await stun_binding(
                    Trace(), LOOPBACK, stun, timeout=2, via=association
                )
            finally:
                association.close()
            assert failure is None
        async with socks5_server(udp=False) as tcp_only:
            try:
                await socks5_udp_associate(Proxy("socks5", LOOPBACK, tcp_only))
            except ProxyError as exc:
                return mapped, exc.failure
        return mapped, "no failure"

    mapped, unsupported = asyncio.run(go())
    assert mapped is not None and mapped[0] == LOOPBACK  # the relay's address, as STUN saw it
    assert unsupported == "socks_command_not_supported"


def test_http_connect_carries_a_fetch_and_reports_a_refusal() -> None:
    async def go() -> tuple[bytes, str]:
        async with web_server() as site, http_connect_proxy() as proxy_port:
            proxy = Proxy("http", LOOPBACK, proxy_port)
            reply = await _get(*await http_connect(proxy, LOOPBACK, site))
            try:
                await http_connect(proxy, LOOPBACK, 9)  # discard port: nothing listens
            except ProxyError as exc:
                return reply, exc.failure
        return reply, "no failure"

    reply, failure = asyncio.run(go())
    assert reply.endswith(PAGE)
    assert failure == "http_request_failed"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("socks5://127.0.0.1:1080", Proxy("socks5", "127.0.0.1", 1080)),
        ("socks5h://proxy.example:9050", Proxy("socks5", "proxy.example", 9050)),
        ("http://127.0.0.1:3128", Proxy("http", "127.0.0.1", 3128)),
    ],
)
def test_parse_proxy(url: str, expected: Proxy) -> None:
    assert parse_proxy(url) == expected


@pytest.mark.parametrize("url", ["ftp://x:1", "socks5://nohost", "socks5://h:99999", "x"])
def test_bad_proxy_urls_are_refused(url: str) -> None:
    with pytest.raises(InputError):
        parse_proxy(url)
