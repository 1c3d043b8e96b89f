"""QUIC handshakes (aioquic): how an app reaches its servers over UDP 443, which a censor can
drop while TCP 443 works. Recorded like OONI's `quic_handshakes` (a TLS handshake whose
network is udp)."""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted, QuicEvent
from cryptography.hazmat.primitives.serialization import Encoding

from ._failures import failure_of
from ._trace import Trace, endpoint

QUIC_TIMEOUT = 10.0
# aioquic logs every failed handshake; the measurement records it instead
logging.getLogger("quic").addHandler(logging.NullHandler())
logging.getLogger("quic").propagate = False


class _Recorder(QuicConnectionProtocol):
    """Keeps what the handshake negotiated and why the connection ended."""

    alpn: str | None = None
    closed: str | None = None

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, HandshakeCompleted):
            self.alpn = event.alpn_protocol
        elif isinstance(event, ConnectionTerminated):
            self.closed = f"quic closed: {event.error_code:#x} {event.reason_phrase}".strip()
        super().quic_event_received(event)


async def quic_handshake(
    trace: Trace,
    ip: str,
    port: int,
    server_name: str,
    *,
    alpn: tuple[str, ...] = ("h3",),
    cafile: str | None = None,
    timeout: float = QUIC_TIMEOUT,
) -> str | None:
    """A QUIC handshake with this SNI to ip:port; returns the failure, None on success."""
    # aioquic's own idle timeout ends a silent handshake cleanly (cancelling it from outside
    # leaves a future nobody reads); wait_for stays as the backstop
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=list(alpn), server_name=server_name, idle_timeout=timeout
    )
    if cafile:
        configuration.load_verify_locations(cafile)
    tid = trace.transaction()
    t0 = trace.now()
    failure = negotiated = version = None
    chain: list[bytes] = []
    made: list[_Recorder] = []

    def recorder(*args: Any, **kwargs: Any) -> _Recorder:
        made.append(_Recorder(*args, **kwargs))
        return made[-1]

    async def handshake() -> None:
        nonlocal negotiated, version
        async with connect(ip, port, configuration=configuration, create_protocol=recorder):
            negotiated = made[0].alpn
            version = "TLSv1.3"  # QUIC carries TLS 1.3 only (RFC 9001)
            # aioquic keeps the server's certificate only here
            certificate = made[0]._quic.tls._peer_certificate
            if certificate is not None:
                chain.append(certificate.public_bytes(Encoding.DER))

    try:
        await asyncio.wait_for(handshake(), timeout + 1)
    except ConnectionError as exc:
        failure = _handshake_failure((made[0].closed if made else None) or str(exc))
    except Exception as exc:
        failure = failure_of(exc)
    trace.quic_handshakes.append(
        {
            "network": "udp",
            "address": endpoint(ip, port),
            "server_name": server_name,
            "alpn": list(alpn),
            "failure": failure,
            "negotiated_protocol": negotiated,
            "no_tls_verify": False,
            "peer_certificates": [
                {"format": "base64", "data": base64.b64encode(der).decode()} for der in chain
            ]
            or None,
            "tls_version": version,
            "t0": t0,
            "t": trace.now(),
            "transaction_id": tid,
        }
    )
    return failure


def _handshake_failure(reason: str) -> str:
    """OONI's names where the reason says which; the reason itself otherwise."""
    lowered = reason.lower()
    if "idle timeout" in lowered or not reason:
        return "generic_timeout_error"
    if "hostname" in lowered and "match" in lowered:
        return "ssl_invalid_hostname"
    if "certificate" in lowered or "issuer" in lowered:
        return "ssl_unknown_authority"
    return f"ssl_failed_handshake: {reason}"[:200]
