"""Real servers on loopback for the probe's tests: a DNS server that answers, lies, says NXDOMAIN
or stays silent; web servers that serve, reset, hang or serve a blockpage, with or without TLS
from a test CA. Nothing here leaves 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, cast

import dns.message
import dns.rcode
import dns.rrset
import orjson
import trustme
from aioquic.asyncio.server import serve as quic_serve
from aioquic.quic.configuration import QuicConfiguration

from reachwatch.probe import NetConfig
from reachwatch.probe.helper import serve

LOOPBACK = "127.0.0.1"
PROBE_ADDRESS = "127.0.0.2"  # the probe connects from here; the helper from LOOPBACK
PAGE = (
    b"<html><head><title>Example Domain Page</title></head><body>" + b"x" * 800 + b"</body></html>"
)
# OONI's fingerprint ooni.it_0 (a national blockpage) matches this body
BLOCKPAGE = b"<html><head><title>Stop</title></head><body>GdF Stop Page</body></html>"


class _DNSProtocol(asyncio.DatagramProtocol):
    def __init__(self, zone: dict[str, str | list[str]], clients: list[str]) -> None:
        self.zone = zone
        self.clients = clients
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.clients.append(addr[0])
        reply = _dns_reply(data, self.zone)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


def _dns_reply(data: bytes, zone: dict[str, str | list[str]]) -> bytes | None:
    """The zone's answer to a DNS query in wire format; None to stay silent."""
    query = dns.message.from_wire(data)
    name = query.question[0].name.to_text().rstrip(".")
    rule = zone.get(name, "NXDOMAIN")
    if rule == "SILENT":
        return None
    reply = dns.message.make_response(query)
    if rule == "NXDOMAIN":
        reply.set_rcode(dns.rcode.NXDOMAIN)
    elif rule == "SERVFAIL":
        reply.set_rcode(dns.rcode.SERVFAIL)
    elif isinstance(rule, list):
        reply.answer.append(dns.rrset.from_text(name + ".", 60, "IN", "A", *rule))
    return reply.to_wire()


@asynccontextmanager
async def doh_server(zone: dict[str, str | list[str]], tls: ssl.SSLContext) -> AsyncIterator[int]:
    """A DNS-over-HTTPS resolver (POST application/dns-message) on loopback; yields its port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            reply = _dns_reply(await reader.readexactly(length), zone)
            if reply is not None:
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/dns-message\r\n"
                    + f"Content-Length: {len(reply)}\r\nConnection: close\r\n\r\n".encode()
                    + reply
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, StopIteration):
            pass
        finally:
            writer.close()

    async with _serving(handle, tls) as port:
        yield port


@asynccontextmanager
async def dns_server(
    zone: dict[str, str | list[str]], clients: list[str] | None = None
) -> AsyncIterator[str]:
    """A resolver on loopback, noting the address of each query in `clients`; yields its
    "ip:port"."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _DNSProtocol(zone, [] if clients is None else clients), local_addr=(LOOPBACK, 0)
    )
    try:
        yield f"{LOOPBACK}:{transport.get_extra_info('sockname')[1]}"
    finally:
        transport.close()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
        return b""


def _reply(status: str, body: bytes, extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nContent-Type: text/html\r\n"
    return (head + extra + "Connection: close\r\n\r\n").encode() + body


async def _handle(
    mode: str, only_for: str | None, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    if only_for is not None and writer.get_extra_info("peername")[0] != only_for:
        mode = "page"  # the censor acts only on the probe's traffic
    try:
        request = await _read_request(reader)
        if mode == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        if mode == "hang":
            await asyncio.sleep(3600)
        if mode.startswith("redirect:"):
            target = mode.split(":", 1)[1]
            writer.write(_reply("302 Found", b"", f"Location: {target}\r\n"))
        elif mode == "blockpage":
            writer.write(_reply("200 OK", BLOCKPAGE))
        elif request:
            writer.write(_reply("200 OK", PAGE))
        await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


@asynccontextmanager
async def web_server(
    mode: str = "page", tls: ssl.SSLContext | None = None, only_for: str | None = None
) -> AsyncIterator[int]:
    """An HTTP(S) server on loopback in one `mode` (for every client, or only for clients from
    `only_for`: a censor on the probe's path); yields its port."""
    async with _serving(lambda r, w: _handle(mode, only_for, r, w), tls) as port:
        yield port


@asynccontextmanager
async def _serving(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[int]:
    """A TCP (or TLS) server on loopback for as long as the block runs; yields its port."""
    server = await asyncio.start_server(
        handle, LOOPBACK, 0, ssl=tls, ssl_handshake_timeout=5 if tls else None
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy one direction of a relayed connection until it ends."""
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except ConnectionError:
        pass
    finally:
        sink.close()


@asynccontextmanager
async def tls_censor(
    upstream: int,
    mode: str,
    only_for: str,
    impostor: int | None = None,
    sni: bytes | None = None,
) -> AsyncIterator[int]:
    """A censor in front of a TLS server: for clients from `only_for` (and, if `sni` is given,
    only for ClientHellos naming it) it reads the ClientHello and then resets the connection
    (`reset`), goes silent (`silence`), or hands the connection to an `impostor` server with a
    certificate of its own (`mitm`); everything else is relayed to `upstream`. Yields the port
    the clients use."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target = upstream
        censored = writer.get_extra_info("peername")[0] == only_for
        hello = b""
        if censored and sni is not None:
            hello = await reader.read(65536)  # the ClientHello: its SNI is in the clear
            censored = sni in hello
        if censored and mode == "mitm":
            assert impostor is not None
            target = impostor
        elif censored:
            hello = hello or await reader.read(65536)
            if mode == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            else:
                await asyncio.sleep(3600)
            return
        up_reader, up_writer = await asyncio.open_connection(LOOPBACK, target)
        up_writer.write(hello)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async with _serving(handle) as port:
        yield port


@asynccontextmanager
async def h2_server(tls: ssl.SSLContext, mode: str = "page") -> AsyncIterator[int]:
    """An HTTP/2 server (TLS, ALPN h2) on loopback: serves PAGE, or resets the stream."""
    import h2.config
    import h2.connection
    import h2.events

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        server.initiate_connection()
        writer.write(server.data_to_send())
        try:
            while data := await reader.read(65536):
                for event in server.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        if mode == "reset":
                            server.reset_stream(event.stream_id)
                            continue
                        headers = [(":status", "200"), ("content-type", "text/html"),
                                   ("content-length", str(len(PAGE)))]  # fmt: skip
                        server.send_headers(event.stream_id, headers)
                        server.send_data(event.stream_id, PAGE, end_stream=True)
                writer.write(server.data_to_send())
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    tls.set_alpn_protocols(["h2", "http/1.1"])
    async with _serving(handle, tls) as port:
        yield port


class LabCA:
    """A CA of our own: server contexts for names, and the CA file a client trusts."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.ca_file = str(directory / "test-ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)

    def server_context(self, *names: str) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*names).configure_cert(context)
        context.set_alpn_protocols(["http/1.1"])
        return context


@asynccontextmanager
async def black_hole() -> AsyncIterator[int]:
    """A loopback port whose SYNs go unanswered: a listener with a full backlog that never
    accepts, which is what an IP blackhole looks like to a connecting client."""
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex((LOOPBACK, port))
        fillers.append(filler)
    await asyncio.sleep(0.05)
    try:
        yield port
    finally:
        for sock in (*fillers, listener):
            sock.close()


class Lab:
    """Servers on loopback in a thread of their own, for commands run as separate processes."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ports: dict[str, Any] = {}
        self._ready = threading.Event()
        self._stop: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),))

    async def _main(self) -> None:
        self._stop = self.loop.create_future()
        async with AsyncExitStack() as stack:
            self.ports["page"] = await stack.enter_async_context(web_server())
            self.ports["reset"] = await stack.enter_async_context(
                web_server("reset", only_for=PROBE_ADDRESS)
            )
            self.ports["stun"] = await stack.enter_async_context(stun_server())
            self.ports["stun-silent"] = await stack.enter_async_context(stun_server("silent"))
            names = {"example.test": LOOPBACK}
            self.ports["socks5-tcp"] = await stack.enter_async_context(
                socks5_server(udp=False, names=names)
            )
            zone = {"example.test": [LOOPBACK]}
            self.ports["dns"] = await stack.enter_async_context(dns_server(zone))
            self.received: list[dict[str, Any]] = []
            self.ports["collector"] = await stack.enter_async_context(
                collector_server(self.received)
            )
            started: asyncio.Future[int] = self.loop.create_future()
            net = NetConfig(resolver=self.ports["dns"], timeout=2)
            task = asyncio.create_task(serve(LOOPBACK, 0, net, started=started))
            self.ports["helper"] = f"http://{LOOPBACK}:{await started}/"
            self._ready.set()
            await self._stop
            task.cancel()

    def __enter__(self) -> Lab:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(10)


@asynccontextmanager
async def collector_server(received: list[dict[str, Any]]) -> AsyncIterator[str]:
    """A collector speaking OONI's submission flow (open a report, submit, close); what it is
    sent lands in `received`. Yields its URL."""
    reports = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal reports
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            first, *lines = head.decode().split("\r\n")
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
                received.append(body["content"])
                reply = {"measurement_uid": f"u{len(received)}"}
            data = orjson.dumps(reply)
            writer.write(
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()

    async with _serving(handle) as port:
        yield f"http://{LOOPBACK}:{port}/"


class _StunProtocol(asyncio.DatagramProtocol):
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.mode == "silent" or self.transport is None or len(data) < 20:
            return
        cookie, transaction = data[4:8], data[8:20]
        if data[:2] == b"\x00\x03":  # a TURN Allocate: ask for credentials, as relays do
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


@asynccontextmanager
async def stun_server(mode: str = "answer") -> AsyncIterator[int]:
    """A STUN server (RFC 5389 binding; a TURN Allocate gets 401 as from a real relay) on
    loopback that answers, or stays silent."""
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _StunProtocol(mode), local_addr=(LOOPBACK, 0)
    )
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


@asynccontextmanager
async def socks5_server(
    udp: bool = True, names: dict[str, str] | None = None
) -> AsyncIterator[int]:
    """A SOCKS5 proxy (RFC 1928, no auth) on loopback: CONNECT, and UDP ASSOCIATE if `udp`
    (otherwise it answers "command not supported", as many proxies do). It resolves the
    `names` it is given, as a proxy's own resolver would. Yields its port."""
    loop = asyncio.get_running_loop()
    names = names or {}

    class UDPRelay(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.transport: asyncio.DatagramTransport | None = None
            self.client: tuple[str, int] | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.DatagramTransport, transport)

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            assert self.transport is not None
            if addr == self.client or self.client is None:  # from the client: unwrap, send on
                self.client = addr
                if data[3] == 1:
                    ip, rest = socket.inet_ntoa(data[4:8]), data[8:]
                else:  # a name
                    ip, rest = names[data[5 : 5 + data[4]].decode()], data[5 + data[4] :]
                port = struct.unpack("!H", rest[:2])[0]
                self.transport.sendto(rest[2:], (ip, port))
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
                host = socket.inet_ntoa(await reader.readexactly(4))
            else:
                host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
            port = struct.unpack("!H", await reader.readexactly(2))[0]
            if command == 3 and udp:
                transport, _ = await loop.create_datagram_endpoint(
                    UDPRelay, local_addr=(LOOPBACK, 0)
                )
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
                up_reader, up_writer = await asyncio.open_connection(names.get(host, host), port)
            except OSError:
                writer.write(b"\x05\x05\x00\x01" + b"\x00" * 6)
                return
            writer.write(b"\x05\x00\x00\x01" + b"\x00" * 6)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async with _serving(handle) as port:
        yield port


@asynccontextmanager
async def http_connect_proxy() -> AsyncIterator[int]:
    """An HTTP proxy that only does CONNECT, on loopback; yields its port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, authority, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
            host, _, port = authority.decode().rpartition(":")
            if method != b"CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
            except OSError:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    async with _serving(handle) as port:
        yield port


@asynccontextmanager
async def quic_server(ca: LabCA, *names: str) -> AsyncIterator[int]:
    """A QUIC (HTTP/3 ALPN) server on loopback with a certificate for `names`; yields its port."""
    issued = ca.ca.issue_cert(*names)
    directory = Path(ca.ca_file).parent
    cert, key = directory / f"quic-{names[0]}.pem", directory / f"quic-{names[0]}.key"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    configuration = QuicConfiguration(is_client=False, alpn_protocols=["h3"])
    configuration.load_cert_chain(str(cert), str(key))
    server = await quic_serve(LOOPBACK, 0, configuration=configuration)
    try:
        yield server._transport.get_extra_info("sockname")[1]
    finally:
        server.close()
