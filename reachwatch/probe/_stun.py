"""STUN (RFC 5389) binding requests over UDP: how calling apps find a path for their media, and
so the first thing a censor that blocks calls (but not messages) drops.

A small codec of our own: a binding request is 20 bytes, and the answer we need is one
attribute (XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from older servers).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import struct

from ._failures import failure_of
from ._proxy import ProxyError, UDPAssociation
from ._trace import Trace, endpoint

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111
MAPPED_ADDRESS = 0x0001
XOR_MAPPED_ADDRESS = 0x0020
STUN_TIMEOUT = 5.0
RTO = 0.5  # RFC 5389 7.2.1: the first retransmission after 500 ms, then doubling


class StunError(ValueError):
    """A datagram that is not the STUN answer we asked for."""


def binding_request(transaction: bytes) -> bytes:
    return struct.pack("!HHI", BINDING_REQUEST, 0, MAGIC_COOKIE) + transaction


def parse_binding_response(data: bytes, transaction: bytes) -> tuple[str, int]:
    """The mapped (public) address and port a binding success carries."""
    if len(data) < 20:
        raise StunError("shorter than a STUN header")
    kind, length, cookie = struct.unpack("!HHI", data[:8])
    if cookie != MAGIC_COOKIE or data[8:20] != transaction:
        raise StunError("not an answer to our request")
    if kind == BINDING_ERROR:
        raise StunError("the server answered with a binding error")
    if kind != BINDING_SUCCESS:
        raise StunError(f"unexpected STUN message type 0x{kind:04x}")
    body = data[20 : 20 + length]
    mapped = None
    while len(body) >= 4:
        attribute, size = struct.unpack("!HH", body[:4])
        value = body[4 : 4 + size]
        if attribute == XOR_MAPPED_ADDRESS:
            return _address(value, xor=transaction)
        if attribute == MAPPED_ADDRESS:
            mapped = _address(value, xor=None)
        body = body[4 + size + (-size % 4) :]
    if mapped is None:
        raise StunError("no mapped address in the answer")
    return mapped


def _address(value: bytes, xor: bytes | None) -> tuple[str, int]:
    if len(value) < 8:
        raise StunError("a truncated address attribute")
    family, port = value[1], struct.unpack("!H", value[2:4])[0]
    raw = value[4:8] if family == 1 else value[4:20]
    if xor is not None:
        port ^= MAGIC_COOKIE >> 16
        key = struct.pack("!I", MAGIC_COOKIE) + xor
        raw = bytes(a ^ b for a, b in zip(raw, key, strict=False))
    return str(ipaddress.ip_address(raw)), port


class _Answer(asyncio.DatagramProtocol):
    def __init__(self, future: asyncio.Future[bytes]) -> None:
        self.future = future

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.future.done():
            self.future.set_result(data)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable and the like
        if not self.future.done():
            self.future.set_exception(exc)


async def stun_binding(
    trace: Trace,
    ip: str,
    port: int,
    *,
    timeout: float = STUN_TIMEOUT,
    via: UDPAssociation | None = None,
) -> tuple[tuple[str, int] | None, str | None]:
    """Send a binding request (retransmitted as RFC 5389 says) and wait for the answer,
    directly or through a SOCKS5 UDP relay. Records OONI's `connect`, `write` and `read`
    network events with proto udp."""
    tid, t0 = trace.transaction(), trace.now()
    address = endpoint(ip, port)
    transaction = os.urandom(12)
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[bytes] = loop.create_future()
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Answer(answer), remote_addr=via.relay if via else (ip, port)
        )
    except Exception as exc:
        refused = failure_of(exc)
        trace.event("connect", t0, address=address, failure=refused, proto="udp", tid=tid)
        return None, refused
    trace.event("connect", t0, address=address, proto="udp", tid=tid)
    request = binding_request(transaction)
    packet = UDPAssociation.wrap(ip, port, request) if via else request
    mapped: tuple[str, int] | None = None
    failure: str | None = None
    data = b""
    deadline = loop.time() + timeout
    wait = RTO
    read_t0 = trace.now()
    try:
        while True:
            sent_t0 = trace.now()
            transport.sendto(packet)
            trace.event("write", sent_t0, address=address, num_bytes=len(request),
                        proto="udp", tid=tid)  # fmt: skip
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError
            try:
                data = await asyncio.wait_for(asyncio.shield(answer), min(wait, left))
                break
            except TimeoutError:
                wait *= 2
        mapped = parse_binding_response(UDPAssociation.unwrap(data) if via else data, transaction)
    except ProxyError as exc:
        failure = exc.failure
    except Exception as exc:
        failure = failure_of(exc) if not isinstance(exc, StunError) else f"unknown_failure: {exc}"
    finally:
        transport.close()
    trace.event("read", read_t0, address=address, failure=failure, proto="udp", tid=tid,
                num_bytes=len(data))  # fmt: skip
    return mapped, failure
