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
from collections.abc import Callable
from typing import TypeVar

from ._failures import failure_of
from ._proxy import ProxyError, UDPAssociation
from ._trace import Trace, endpoint

T = TypeVar("T")

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111
ALLOCATE_REQUEST = 0x0003  # TURN (RFC 5766)
ALLOCATE_SUCCESS = 0x0103
ALLOCATE_ERROR = 0x0113
REQUESTED_TRANSPORT = 0x0019
ERROR_CODE = 0x0009
UDP_TRANSPORT = 17
MAPPED_ADDRESS = 0x0001
XOR_MAPPED_ADDRESS = 0x0020
STUN_TIMEOUT = 5.0
RTO = 0.5  # RFC 5389 7.2.1: the first retransmission after 500 ms, then doubling


class StunError(ValueError):
    """A datagram that is not the STUN answer we asked for."""


def binding_request(transaction: bytes) -> bytes:
    return struct.pack("!HHI", BINDING_REQUEST, 0, MAGIC_COOKIE) + transaction


def allocate_request(transaction: bytes) -> bytes:
    """A TURN Allocate for a UDP relay, without credentials: a real relay answers it (with 401
    Unauthorized and a realm), which is all reachability needs."""
    attribute = struct.pack("!HHB3x", REQUESTED_TRANSPORT, 4, UDP_TRANSPORT)
    header = struct.pack("!HHI", ALLOCATE_REQUEST, len(attribute), MAGIC_COOKIE)
    return header + transaction + attribute


def parse_allocate_response(data: bytes, transaction: bytes) -> int:
    """The answer's code: 200 for an allocation, else its ERROR-CODE (401 asks for
    credentials: the relay is there)."""
    if len(data) < 20:
        raise StunError("shorter than a STUN header")
    kind, length, cookie = struct.unpack("!HHI", data[:8])
    if cookie != MAGIC_COOKIE or data[8:20] != transaction:
        raise StunError("not an answer to our request")
    if kind == ALLOCATE_SUCCESS:
        return 200
    if kind != ALLOCATE_ERROR:
        raise StunError(f"unexpected STUN message type 0x{kind:04x}")
    body = data[20 : 20 + length]
    while len(body) >= 4:
        attribute, size = struct.unpack("!HH", body[:4])
        if attribute == ERROR_CODE and size >= 4:
            return int(body[6] & 0x07) * 100 + body[7]
        body = body[4 + size + (-size % 4) :]
    raise StunError("an allocate error without its code")


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
    source: str | None = None,
) -> tuple[tuple[str, int] | None, str | None]:
    """Send a binding request (retransmitted as RFC 5389 says) and wait for the answer,
    directly or through a SOCKS5 UDP relay; (mapped address, failure)."""
    ask = binding_request, parse_binding_response
    return await _ask(trace, ip, port, *ask, timeout=timeout, via=via, source=source)


async def turn_allocate(
    trace: Trace,
    ip: str,
    port: int,
    *,
    timeout: float = STUN_TIMEOUT,
    via: UDPAssociation | None = None,
    source: str | None = None,
) -> tuple[int | None, str | None]:
    """Ask a TURN relay for an allocation; (the answer's code, failure). 401 means reached."""
    ask = allocate_request, parse_allocate_response
    return await _ask(trace, ip, port, *ask, timeout=timeout, via=via, source=source)


async def _ask(
    trace: Trace,
    ip: str,
    port: int,
    build: Callable[[bytes], bytes],
    parse: Callable[[bytes, bytes], T],
    *,
    timeout: float,
    via: UDPAssociation | None,
    source: str | None,
) -> tuple[T | None, str | None]:
    """One request in a new transaction and its parsed answer; (answer, failure)."""
    transaction = os.urandom(12)
    data, failure = await _exchange(trace, ip, port, build(transaction), timeout, via, source)
    if failure is not None:
        return None, failure
    try:
        return parse(data, transaction), None
    except StunError as exc:
        return None, f"unknown_failure: {exc}"


async def _exchange(
    trace: Trace,
    ip: str,
    port: int,
    request: bytes,
    timeout: float,
    via: UDPAssociation | None,
    source: str | None,
) -> tuple[bytes, str | None]:
    """One STUN request and its answer over UDP, retransmitted; OONI's `connect`, `write` and
    `read` network events (proto udp) record it."""
    tid, t0 = trace.transaction(), trace.now()
    address = endpoint(ip, port)
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[bytes] = loop.create_future()
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Answer(answer),
            remote_addr=via.relay if via else (ip, port),
            local_addr=(source, 0) if source and not via else None,
        )
    except Exception as exc:
        refused = failure_of(exc)
        trace.event("connect", t0, address=address, failure=refused, proto="udp", tid=tid)
        return b"", refused
    trace.event("connect", t0, address=address, proto="udp", tid=tid)
    packet = UDPAssociation.wrap(ip, port, request) if via else request
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
        if via:
            data = UDPAssociation.unwrap(data)
    except ProxyError as exc:
        failure = exc.failure
    except Exception as exc:
        failure = failure_of(exc)
    finally:
        transport.close()
    trace.event("read", read_t0, address=address, failure=failure, proto="udp", tid=tid,
                num_bytes=len(data))  # fmt: skip
    return data, failure
