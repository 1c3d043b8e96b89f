"""Real servers on loopback for the probe's tests: a DNS server that answers, lies, says NXDOMAIN
or stays silent; web servers that serve, reset, hang or serve a blockpage, with or without TLS
from a test CA. Nothing here leaves 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import threading
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, cast

from aioquic.asyncio.server import serve as quic_serve
from aioquic.quic.configuration import QuicConfiguration

from reachwatch.lab._servers import (
    LabCA,
    StunResponder,
    dns_answer,
    http_reply,
    pipe,
    read_head,
    serving,
)
from reachwatch.lab._servers import collector_server as lab_collector
from reachwatch.lab._servers import socks5_server as lab_socks5
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
        reply = dns_answer(data, self.zone)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


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
            reply = dns_answer(await reader.readexactly(length), zone)
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

    async with serving(handle, LOOPBACK, tls=tls) as port:
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


async def _handle(
    mode: str, only_for: str | None, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    if only_for is not None and writer.get_extra_info("peername")[0] != only_for:
        mode = "page"  # the censor acts only on the probe's traffic
    try:
        request = await read_head(reader)
        if mode == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        if mode == "hang":
            await asyncio.sleep(3600)
        if mode == "stall":  # the head and a little of the body, then nothing: a throttler
            head, _, body = http_reply("200 OK", PAGE).partition(b"\r\n\r\n")
            writer.write(head + b"\r\n\r\n" + body[:100])
            await writer.drain()
            await asyncio.sleep(3600)
        if mode.startswith("redirect:"):
            target = mode.split(":", 1)[1]
            writer.write(http_reply("302 Found", b"", f"Location: {target}\r\n"))
        elif mode == "blockpage":
            writer.write(http_reply("200 OK", BLOCKPAGE))
        elif request:
            writer.write(http_reply("200 OK", PAGE))
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
    async with serving(lambda r, w: _handle(mode, only_for, r, w), LOOPBACK, tls=tls) as port:
        yield port


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
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async with serving(handle, LOOPBACK) as port:
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
    async with serving(handle, LOOPBACK, tls=tls) as port:
        yield port


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
    """The lab's collector on loopback; what it is sent lands in `received`. Yields its URL."""
    async with lab_collector(LOOPBACK, 0, received.append) as port:
        yield f"http://{LOOPBACK}:{port}/"


@asynccontextmanager
async def stun_server(mode: str = "answer") -> AsyncIterator[int]:
    """A STUN server (RFC 5389 binding; a TURN Allocate gets 401 as from a real relay) on
    loopback that answers, or stays silent."""
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: StunResponder(mode), local_addr=(LOOPBACK, 0)
    )
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


@asynccontextmanager
async def socks5_server(
    udp: bool = True, names: dict[str, str] | None = None
) -> AsyncIterator[int]:
    """The lab's SOCKS5 proxy on loopback; yields its port."""
    async with lab_socks5(LOOPBACK, udp=udp, names=names) as port:
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
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    async with serving(handle, LOOPBACK) as port:
        yield port


@asynccontextmanager
async def quic_server(ca: LabCA, *names: str) -> AsyncIterator[int]:
    """A QUIC (HTTP/3 ALPN) server on loopback with a certificate for `names`; yields its port."""
    cert, key = ca.write_pair(Path(ca.ca_file).parent, *names)
    configuration = QuicConfiguration(is_client=False, alpn_protocols=["h3"])
    configuration.load_cert_chain(cert, key)
    server = await quic_serve(LOOPBACK, 0, configuration=configuration)
    try:
        yield server._transport.get_extra_info("sockname")[1]
    finally:
        server.close()
