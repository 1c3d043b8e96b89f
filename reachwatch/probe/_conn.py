"""TCP connect and TLS handshake, each bounded by a timeout and recorded in OONI's format."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import socket
import ssl
import struct
from dataclasses import dataclass

from .._errors import InputError
from ._failures import failure_of
from ._proxy import Proxy, ProxyError, http_connect, socks5_connect
from ._trace import Trace, endpoint

CONNECT_TIMEOUT = 10.0
TLS_TIMEOUT = 10.0


@dataclass
class Conn:
    """An open connection and the transaction its operations are recorded under."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    ip: str
    port: int
    tid: int
    secure: bool = False
    alpn: str | None = None  # the protocol TLS negotiated (h2, http/1.1)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)


async def tcp_connect(
    trace: Trace,
    ip: str,
    port: int,
    *,
    timeout: float = CONNECT_TIMEOUT,
    source: str | None = None,
    via: Proxy | None = None,
) -> tuple[Conn | None, str | None]:
    """Connect to ip:port, from the `source` address if given (an interface's, a tunnel's), or
    through the proxy `via` (then `ip` may be a name: the proxy resolves it, past local DNS)."""
    tid, t0 = trace.transaction(), trace.now()
    failure = None
    conn = None
    local = (source, 0) if source else None
    if via is None:
        opening = asyncio.open_connection(ip, port, local_addr=local)
    else:
        opening = (socks5_connect if via.scheme == "socks5" else http_connect)(via, ip, port)
    try:
        reader, writer = await asyncio.wait_for(opening, timeout)
        conn = Conn(reader, writer, ip, port, tid)
    except ProxyError as exc:
        failure = exc.failure
    except Exception as exc:
        failure = failure_of(exc)
    trace.tcp_connect.append(
        {
            "ip": ip,
            "port": port,
            "status": {"blocked": None, "failure": failure, "success": failure is None},
            "t0": t0,
            "t": trace.now(),
            "transaction_id": tid,
        }
    )
    trace.event("connect", t0, address=endpoint(ip, port), failure=failure, tid=tid)
    return conn, failure


def peer_chain(tls: ssl.SSLObject) -> list[bytes]:
    """The certificates the server sent, leaf first (DER). Python 3.13 makes this public;
    3.11 and 3.12 have it on the private `_sslobj`; without it, the leaf alone."""
    getter = getattr(tls, "get_unverified_chain", None) or getattr(
        getattr(tls, "_sslobj", None), "get_unverified_chain", None
    )
    if getter is None:
        leaf = tls.getpeercert(binary_form=True)
        return [leaf] if leaf else []
    der = getattr(getattr(ssl, "_ssl", None), "ENCODING_DER", 2)
    return [item if isinstance(item, bytes) else item.public_bytes(der) for item in getter()]


def tls_context(*, verify: bool = True, cafile: str | None = None) -> ssl.SSLContext:
    """The client context: the system's roots (or `cafile`, e.g. a lab CA), or no checks."""
    context = ssl.create_default_context(cafile=cafile)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def tls_handshake(
    trace: Trace,
    conn: Conn,
    server_name: str,
    *,
    alpn: list[str] | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float = TLS_TIMEOUT,
) -> str | None:
    """Upgrade `conn` to TLS with this SNI; returns the failure, None on success."""
    context = context or tls_context()
    alpn = alpn or ["http/1.1"]
    context.set_alpn_protocols(alpn)
    t0 = trace.now()
    failure = None
    chain: list[bytes] = []
    try:
        await asyncio.wait_for(conn.writer.start_tls(context, server_hostname=server_name), timeout)
        conn.secure = True
    except ssl.SSLCertVerificationError as exc:
        failure = failure_of(exc)
        # the certificates are the evidence of an interception: fetch them once more without
        # checking them, as the failed handshake does not keep them
        chain = await _unverified_chain(conn, server_name, alpn, timeout)
    except Exception as exc:
        failure = failure_of(exc)
    version = cipher = negotiated = None
    tls = conn.writer.get_extra_info("ssl_object") if failure is None else None
    if isinstance(tls, ssl.SSLObject):
        chain = peer_chain(tls)
        version = tls.version()
        cipher = (tls.cipher() or (None,))[0]
        negotiated = tls.selected_alpn_protocol()
        conn.alpn = negotiated
    trace.tls_handshakes.append(
        {
            "network": "tcp",
            "address": endpoint(conn.ip, conn.port),
            "server_name": server_name,
            "alpn": alpn,
            "failure": failure,
            "negotiated_protocol": negotiated,
            "no_tls_verify": context.verify_mode == ssl.CERT_NONE,
            "peer_certificates": [
                {"format": "base64", "data": base64.b64encode(der).decode()} for der in chain
            ]
            or None,
            "tls_version": version,
            "cipher_suite": cipher,
            "t0": t0,
            "t": trace.now(),
            "transaction_id": conn.tid,
        }
    )
    return failure


async def _unverified_chain(
    conn: Conn, server_name: str, alpn: list[str], timeout: float
) -> list[bytes]:
    """The chain the server at conn's address presents for this SNI, unchecked."""
    context = tls_context(verify=False)
    context.set_alpn_protocols(alpn)
    local = conn.writer.get_extra_info("sockname")
    source = (local[0], 0) if local else None
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(
                conn.ip, conn.port, ssl=context, server_hostname=server_name, local_addr=source
            ),
            timeout,
        )
    except Exception:
        return []
    tls = writer.get_extra_info("ssl_object")
    chain = peer_chain(tls) if isinstance(tls, ssl.SSLObject) else []
    writer.close()
    return chain


def interface_address(name: str) -> str:
    """The IPv4 address of interface `name` (a VPN's tunnel): binding to it sends the probe's
    connections through that interface. InputError when there is no such address."""
    siocgifaddr = 0x8915
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            request = struct.pack("256s", name.encode()[:15])
            reply = fcntl.ioctl(probe.fileno(), siocgifaddr, request)
        except OSError as exc:
            raise InputError(f"interface {name!r}: no IPv4 address ({exc.strerror})") from None
    return socket.inet_ntoa(reply[20:24])
