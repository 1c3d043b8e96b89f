"""Reaching a target through a proxy, to tell whether circumvention restores access: SOCKS5
(RFC 1928: CONNECT for TCP, UDP ASSOCIATE for datagrams) and HTTP CONNECT.

A proxy that cannot relay UDP answers UDP ASSOCIATE with "command not supported": that is a
result (`unsupported`), not a failure of the target.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from dataclasses import dataclass
from urllib.parse import urlsplit

from .._errors import InputError

SOCKS_VERSION = 5
CONNECT, UDP_ASSOCIATE = 1, 3
NO_AUTH = 0
# RFC 1928 reply codes, named as OONI's legacy failure strings name them (df-007)
SOCKS_FAILURES = {
    1: "socks_server_failure",
    2: "socks_connection_not_allowed",
    3: "socks_network_unreachable",
    4: "socks_host_unreachable",
    5: "socks_connection_refused",
    6: "socks_ttl_expired",
    7: "socks_command_not_supported",
    8: "socks_address_not_supported",
}


class ProxyError(Exception):
    """The proxy refused or failed; `failure` is the OONI-style string."""

    def __init__(self, failure: str) -> None:
        super().__init__(failure)
        self.failure = failure


@dataclass(frozen=True)
class Proxy:
    scheme: str  # socks5 | http
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_proxy(url: str) -> Proxy:
    """`socks5://HOST:PORT` or `http://HOST:PORT`; InputError with the reason otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InputError(f"{url!r}: not a proxy URL ({exc})") from None
    if parts.scheme not in ("socks5", "socks5h", "http") or not parts.hostname or port is None:
        raise InputError(f"{url!r}: give socks5://HOST:PORT or http://HOST:PORT")
    return Proxy("http" if parts.scheme == "http" else "socks5", parts.hostname, port)


def _address(host: str, port: int) -> bytes:
    """SOCKS5's DST.ADDR and DST.PORT: an IP as such, a name as a name."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        name = host.encode("idna")
        return bytes([3, len(name)]) + name + struct.pack("!H", port)
    kind = 1 if ip.version == 4 else 4
    return bytes([kind]) + ip.packed + struct.pack("!H", port)


async def _read_address(reader: asyncio.StreamReader) -> tuple[str, int]:
    kind = (await reader.readexactly(1))[0]
    if kind == 1:
        host = socket.inet_ntop(socket.AF_INET, await reader.readexactly(4))
    elif kind == 4:
        host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
    elif kind == 3:
        host = (await reader.readexactly((await reader.readexactly(1))[0])).decode("idna")
    else:
        raise ProxyError("socks_address_not_supported")
    return host, struct.unpack("!H", await reader.readexactly(2))[0]


async def _socks5_request(
    proxy: Proxy, command: int, host: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, tuple[str, int]]:
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    try:
        writer.write(bytes([SOCKS_VERSION, 1, NO_AUTH]))
        version, method = await reader.readexactly(2)
        if version != SOCKS_VERSION or method != NO_AUTH:
            raise ProxyError("socks_error")
        writer.write(bytes([SOCKS_VERSION, command, 0]) + _address(host, port))
        version, reply, _ = await reader.readexactly(3)
        if version != SOCKS_VERSION:
            raise ProxyError("socks_error")
        if reply != 0:
            raise ProxyError(SOCKS_FAILURES.get(reply, "socks_error"))
        bound = await _read_address(reader)
    except BaseException:
        writer.close()
        raise
    return reader, writer, bound


async def socks5_connect(
    proxy: Proxy, host: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP stream to host:port through the SOCKS5 proxy (the proxy resolves names)."""
    reader, writer, _ = await _socks5_request(proxy, CONNECT, host, port)
    return reader, writer


async def http_connect(
    proxy: Proxy, host: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP stream to host:port through an HTTP proxy's CONNECT."""
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    writer.write(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.close()
        raise ProxyError("http_request_failed") from None
    status = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
    if status != b"200":
        writer.close()
        raise ProxyError("http_request_failed")
    return reader, writer


class UDPAssociation:
    """A SOCKS5 UDP relay: datagrams to any host:port, wrapped in RFC 1928's UDP header. It
    lives as long as its control connection."""

    def __init__(self, control: asyncio.StreamWriter, relay: tuple[str, int]) -> None:
        self.control = control
        self.relay = relay

    @staticmethod
    def wrap(host: str, port: int, payload: bytes) -> bytes:
        return b"\x00\x00\x00" + _address(host, port) + payload

    @staticmethod
    def unwrap(datagram: bytes) -> bytes:
        """The payload of a datagram the relay sends back."""
        if len(datagram) < 4 or datagram[2] != 0:
            raise ProxyError("socks_error")
        kind = datagram[3]
        start = {1: 4 + 4, 4: 4 + 16}.get(kind)
        if start is None:
            start = 5 + datagram[4] if kind == 3 and len(datagram) > 4 else None
        if start is None:
            raise ProxyError("socks_address_not_supported")
        return datagram[start + 2 :]

    def close(self) -> None:
        self.control.close()


async def socks5_udp_associate(proxy: Proxy) -> UDPAssociation:
    """Ask the proxy to relay UDP; ProxyError("socks_command_not_supported") if it cannot."""
    _, writer, relay = await _socks5_request(proxy, UDP_ASSOCIATE, "0.0.0.0", 0)
    host, port = relay
    if host in ("0.0.0.0", "::"):
        host = proxy.host  # "the address the client sent the request to"
    return UDPAssociation(writer, (host, port))
