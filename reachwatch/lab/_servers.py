"""The servers of the lab's Internet, small and real: an authoritative DNS answer, a STUN/TURN
responder, a SOCKS5 proxy (CONNECT and UDP ASSOCIATE), a web page, and the lab's own CA. A
collector too. The lab runs them inside its namespaces; the probe's unit tests run the same
code on loopback."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import dns.message
import dns.rcode
import dns.rrset
import orjson
import trustme

Zone = dict[str, "str | list[str]"]
"""name -> a list of IPv4 answers, or NXDOMAIN / SERVFAIL / SILENT."""

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

PAGE_SIZE = 512 * 1024
"""A lab site's page is large enough that throttling stalls it within the probe's timeout."""


class LabCA:
    """A CA of our own: server contexts for names, and the CA file clients trust."""

    def __init__(self, directory: Path) -> None:
        """The CA kept in `directory` (made there the first time), so that every process of
        a lab run issues certificates from the same one."""
        cert, key = directory / "lab-ca.pem", directory / "lab-ca.key"
        if cert.exists() and key.exists():
            self.ca = trustme.CA.from_pem(cert.read_bytes(), key.read_bytes())
        else:
            self.ca = trustme.CA(organization_name="reachwatch lab")
            self.ca.cert_pem.write_to_path(str(cert))
            self.ca.private_key_pem.write_to_path(str(key))
        self.ca_file = str(cert)

    def server_context(self, *names: str) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*names).configure_cert(context)
        context.set_alpn_protocols(["http/1.1"])
        return context

    def write_pair(self, directory: Path, *names: str) -> tuple[str, str]:
        """A certificate and key file for `names` (for servers that load files, like QUIC's)."""
        issued = self.ca.issue_cert(*names)
        cert, key = directory / f"{names[0]}.pem", directory / f"{names[0]}.key"
        issued.cert_chain_pems[0].write_to_path(str(cert))
        issued.private_key_pem.write_to_path(str(key))
        return str(cert), str(key)


def dns_answer(data: bytes, zone: Zone) -> bytes | None:
    """The zone's answer to a DNS query in wire format; None to stay silent."""
    query = dns.message.from_wire(data)
    name = query.question[0].name.to_text().rstrip(".").lower()
    rule = zone.get(name, "NXDOMAIN")
    if rule == "SILENT":
        return None
    reply = dns.message.make_response(query)
    if rule == "NXDOMAIN":
        reply.set_rcode(dns.rcode.NXDOMAIN)
    elif rule == "SERVFAIL":
        reply.set_rcode(dns.rcode.SERVFAIL)
    elif isinstance(rule, list) and query.question[0].rdtype == 1:  # A; AAAA gets no answer
        reply.answer.append(dns.rrset.from_text(name + ".", 60, "IN", "A", *rule))
    return reply.to_wire()


class StunResponder(asyncio.DatagramProtocol):
    """RFC 5389 Binding answered with XOR-MAPPED-ADDRESS; a TURN Allocate gets 401 with a realm,
    as from a real relay; `silent` answers nothing."""

    def __init__(self, mode: str = "answer") -> None:
        self.mode = mode
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.mode == "silent" or self.transport is None or len(data) < 20:
            return
        cookie, transaction = data[4:8], data[8:20]
        if data[:2] == b"\x00\x03":
            code = struct.pack("!HBB", 0, 4, 1) + b"Unauthorized"
            realm = b"lab"
            attributes = (
                struct.pack("!HH", 0x0009, len(code)) + code + b"\x00" * (-len(code) % 4)
                + struct.pack("!HH", 0x0014, len(realm)) + realm + b"\x00" * (-len(realm) % 4)
            )  # fmt: skip
            self.transport.sendto(
                struct.pack("!HH", 0x0113, len(attributes)) + cookie + transaction + attributes,
                addr,
            )
            return
        ip, port = addr
        value = struct.pack("!BBH", 0, 1, port ^ 0x2112) + bytes(
            a ^ b for a, b in zip(socket.inet_aton(ip), cookie, strict=True)
        )
        attribute = struct.pack("!HH", 0x0020, len(value)) + value
        self.transport.sendto(
            struct.pack("!HH", 0x0101, len(attribute)) + cookie + transaction + attribute, addr
        )


DNS_BUFFER = 4 * 1024 * 1024
"""A lab resolver's receive buffer: room for thousands of queries. With the default (about 280
datagrams) a batch's burst of lookups overflowed it: the lab's DNS, then in the process that
serves the sites, lost 1,464 queries in one accuracy run, each a lookup that timed out where
the scenario blocks nothing."""
SO_RCVBUFFORCE = 33  # Linux socket(7); Python's socket module does not name it


async def dns_endpoint(
    protocol: Callable[[], asyncio.DatagramProtocol], address: str, port: int = 53
) -> asyncio.DatagramTransport:
    """A UDP server for DNS at `address`, its receive buffer DNS_BUFFER (forced: the lab
    runs as root, and the sysctl cap is the whole machine's)."""
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        protocol, local_addr=(address, port)
    )
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, DNS_BUFFER)
    return transport


async def stdin_closed() -> None:
    """Returns when the lab closes our stdin, its signal to go: a lab daemon never outlives the
    run that started it."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()


@asynccontextmanager
async def serving(
    handle: Handler, host: str, port: int = 0, tls: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    """A TCP (or TLS) server for as long as the block runs; yields its port."""
    server = await asyncio.start_server(
        handle, host, port, ssl=tls, ssl_handshake_timeout=5 if tls else None
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy one direction of a relayed connection until it ends."""
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except ConnectionError:
        pass
    finally:
        sink.close()


async def read_head(reader: asyncio.StreamReader, limit: float = 5) -> bytes:
    """An HTTP request's head, or b"" if none came in time."""
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), limit)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
        return b""


def http_reply(status: str, body: bytes, extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nContent-Type: text/html\r\n"
    return (head + extra + "Connection: close\r\n\r\n").encode() + body


def site_page(host: str) -> bytes:
    """A lab site's page: its name in the title, padded to PAGE_SIZE."""
    head = f"<html><head><title>{host}: lab site</title></head><body><p>".encode()
    tail = b"</p></body></html>"
    return head + b"x" * (PAGE_SIZE - len(head) - len(tail)) + tail


@asynccontextmanager
async def socks5_server(
    host: str = "127.0.0.1", port: int = 0, udp: bool = True, names: dict[str, str] | None = None
) -> AsyncIterator[int]:
    """A SOCKS5 proxy (RFC 1928, no auth): CONNECT, and UDP ASSOCIATE if `udp` (otherwise it
    answers "command not supported", as many proxies do). It resolves the `names` it is given,
    as a proxy's own resolver would, others through the system's. Yields its port."""
    loop = asyncio.get_running_loop()
    known: dict[str, str] = names or {}

    class UDPRelay(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.transport: asyncio.DatagramTransport | None = None
            self.client: tuple[str, int] | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.DatagramTransport, transport)

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            if self.transport is None or len(data) < 10:
                return
            if addr == self.client or self.client is None:  # from the client: unwrap, send on
                self.client = addr
                if data[3] == 1:
                    ip, rest = socket.inet_ntoa(data[4:8]), data[8:]
                else:  # a name
                    name = data[5 : 5 + data[4]].decode(errors="replace")
                    ip, rest = known.get(name, ""), data[5 + data[4] :]
                    if not ip:
                        return
                target_port = struct.unpack("!H", rest[:2])[0]
                self.transport.sendto(rest[2:], (ip, target_port))
            else:  # from the target: wrap, send back
                header = b"\x00\x00\x00\x01" + socket.inet_aton(addr[0])
                self.transport.sendto(header + struct.pack("!H", addr[1]) + data, self.client)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            _, count = await reader.readexactly(2)
            await reader.readexactly(count)
            writer.write(b"\x05\x00")
            _, command, _, kind = await reader.readexactly(4)
            if kind == 1:
                target = socket.inet_ntoa(await reader.readexactly(4))
            else:
                target = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
            target_port = struct.unpack("!H", await reader.readexactly(2))[0]
            if command == 3 and udp:
                transport, _ = await loop.create_datagram_endpoint(UDPRelay, local_addr=(host, 0))
                bound = transport.get_extra_info("sockname")
                writer.write(b"\x05\x00\x00\x01" + socket.inet_aton(bound[0])
                             + struct.pack("!H", bound[1]))  # fmt: skip
                await reader.read()  # the association lasts as long as this connection
                transport.close()
                return
            if command != 1:
                writer.write(b"\x05\x07\x00\x01" + b"\x00" * 6)
                return
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(known.get(target, target), target_port), 10
                )
            except (OSError, TimeoutError):
                writer.write(b"\x05\x05\x00\x01" + b"\x00" * 6)
                return
            writer.write(b"\x05\x00\x00\x01" + b"\x00" * 6)
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError, UnicodeDecodeError):
            pass
        finally:
            writer.close()

    async with serving(handle, host, port) as bound_port:
        yield bound_port


@asynccontextmanager
async def collector_server(
    host: str, port: int, keep: Callable[[dict[str, Any]], None]
) -> AsyncIterator[int]:
    """A collector speaking OONI's submission flow (open a report, submit, close): each
    measurement goes to `keep` before it is acknowledged (so `keep` decides what durable
    means). It takes what it is sent: checking measurements is the real collector's job.
    Yields its port."""
    reports = 0
    taken = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal reports, taken
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            first, *lines = head.decode("latin-1").split("\r\n")
            path = first.split(" ")[1]
            length = next(
                (int(v) for k, _, v in (h.partition(":") for h in lines)
                 if k.lower() == "content-length"), 0,
            )  # fmt: skip
            body = orjson.loads(await reader.readexactly(length)) if length else {}
            if path == "/report":
                reports += 1
                reply: dict[str, Any] = {"report_id": f"r{reports}", "supported_formats": ["json"]}
            elif path.endswith("/close"):
                reply = {}
            else:
                keep(body["content"])
                taken += 1
                reply = {"measurement_uid": f"u{taken}"}
            data = orjson.dumps(reply)
            writer.write(
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, ValueError, KeyError):
            pass
        finally:
            writer.close()

    async with serving(handle, host, port) as bound:
        yield bound
