"""STUN binding requests (what calls need first) against a loopback STUN server."""

from __future__ import annotations

import asyncio
import socket

import pytest

from reachwatch.model import parse_measurement
from reachwatch.pipeline import observations_of, verdicts_of
from reachwatch.probe import Trace, stun_binding, turn_allocate
from reachwatch.probe._stun import StunError, binding_request, parse_binding_response

from .conftest import dumps, measurement
from .netlab import LOOPBACK, stun_server


def as_stunreachability(trace: Trace, port: int, failure: str | None) -> list[object]:
    keys = {"endpoint": f"{LOOPBACK}:{port}", "failure": failure, **trace.archival()}
    pm = parse_measurement(dumps(measurement("stunreachability", keys,
                                             input=f"stun://{LOOPBACK}:{port}")))  # fmt: skip
    return [observations_of(pm), verdicts_of(pm)]


def test_binding_gets_our_mapped_address_and_reads_back_ok() -> None:
    async def go() -> tuple[Trace, object, str | None, int]:
        trace = Trace()
        async with stun_server() as port:
            mapped, failure = await stun_binding(trace, LOOPBACK, port, timeout=2)
        return trace, mapped, failure, port

    trace, mapped, failure, port = asyncio.run(go())
    assert failure is None
    assert isinstance(mapped, tuple) and mapped[0] == LOOPBACK
    assert [e["operation"] for e in trace.network_events] == ["connect", "write", "read"]
    assert all(e["proto"] == "udp" for e in trace.network_events)
    observations, verdicts = as_stunreachability(trace, port, failure)
    assert [(o.kind, o.failure) for o in observations] == [("udp", None)]  # type: ignore[attr-defined]
    assert [(v.verdict, v.technique) for v in verdicts] == [("ok", None)]  # type: ignore[attr-defined]


def test_a_dropped_binding_is_retransmitted_then_times_out_as_udp_timeout() -> None:
    async def go() -> tuple[Trace, str | None, int]:
        trace = Trace()
        async with stun_server("silent") as port:
            _, failure = await stun_binding(trace, LOOPBACK, port, timeout=1.6)
        return trace, failure, port

    trace, failure, port = asyncio.run(go())
    assert failure == "generic_timeout_error"
    writes = [e for e in trace.network_events if e["operation"] == "write"]
    assert len(writes) >= 2  # RFC 5389 retransmission (500 ms, then 1 s)
    _, verdicts = as_stunreachability(trace, port, failure)
    assert [(v.verdict, v.technique) for v in verdicts] == [("blocked", "udp.timeout")]  # type: ignore[attr-defined]


def test_a_closed_port_is_refused() -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind((LOOPBACK, 0))
    port = closed.getsockname()[1]
    closed.close()
    _, failure = asyncio.run(stun_binding(Trace(), LOOPBACK, port, timeout=1.5))
    assert failure == "connection_refused"  # the ICMP port unreachable, as OONI names it


def test_codec_refuses_what_is_not_our_answer() -> None:
    transaction = b"x" * 12
    assert binding_request(transaction)[:2] == b"\x00\x01"
    with pytest.raises(StunError, match="shorter"):
        parse_binding_response(b"\x01\x01", transaction)
    with pytest.raises(StunError, match="not an answer"):
        parse_binding_response(b"\x01\x01\x00\x00" + b"\x00" * 16, transaction)


def test_turn_allocate_reaches_a_relay_that_asks_for_credentials() -> None:
    async def go() -> tuple[tuple[int | None, str | None], tuple[int | None, str | None]]:
        async with stun_server() as relay:
            answered = await turn_allocate(Trace(), LOOPBACK, relay, timeout=2)
        async with stun_server("silent") as silent:
            dropped = await turn_allocate(Trace(), LOOPBACK, silent, timeout=1)
        return answered, dropped

    answered, dropped = asyncio.run(go())
    assert answered == (401, None)  # Unauthorized: the relay is there
    assert dropped == (None, "generic_timeout_error")
