"""The record of what a measurement did, in OONI's archival format (df-001, 002, 005, 006, 008).

Every primitive appends to a Trace as it goes, success or failure, with `t0` and `t` in seconds
since the measurement started, so a measurement shows exactly which operation failed and when.
"""

from __future__ import annotations

import base64
import itertools
import time
from typing import Any

Entry = dict[str, Any]


_LISTS = (
    "queries",
    "tcp_connect",
    "tls_handshakes",
    "quic_handshakes",
    "requests",
    "network_events",
)


class Trace:
    """The archival lists of one measurement; primitives share one so transaction ids are unique."""

    def __init__(self, zero: float | None = None, ids: itertools.count[int] | None = None) -> None:
        self.zero = time.perf_counter() if zero is None else zero
        self.queries: list[Entry] = []
        self.tcp_connect: list[Entry] = []
        self.tls_handshakes: list[Entry] = []
        self.quic_handshakes: list[Entry] = []
        self.requests: list[Entry] = []
        self.network_events: list[Entry] = []
        self._ids = ids or itertools.count(1)

    def child(self) -> Trace:
        """A trace for one part of the measurement: same clock, unique transaction ids."""
        return Trace(self.zero, self._ids)

    def merge(self, child: Trace) -> set[int]:
        """Take a child's entries in; returns the transaction ids they carry."""
        ids: set[int] = set()
        for name in _LISTS:
            entries: list[Entry] = getattr(child, name)
            getattr(self, name).extend(entries)
            ids.update(e["transaction_id"] for e in entries if e.get("transaction_id"))
        return ids

    def now(self) -> float:
        return round(time.perf_counter() - self.zero, 9)

    def transaction(self) -> int:
        return next(self._ids)

    def event(
        self,
        operation: str,
        t0: float,
        *,
        address: str | None = None,
        failure: str | None = None,
        num_bytes: int | None = None,
        proto: str = "tcp",
        tid: int | None = None,
    ) -> None:
        self.network_events.append(
            {
                "address": address,
                "failure": failure,
                "num_bytes": num_bytes,
                "operation": operation,
                "proto": proto,
                "t0": t0,
                "t": self.now(),
                "transaction_id": tid,
            }
        )

    def archival(self) -> dict[str, list[Entry]]:
        """The test_keys lists, `requests` newest first as OONI orders them."""
        return {
            "queries": self.queries,
            "tcp_connect": self.tcp_connect,
            "tls_handshakes": self.tls_handshakes,
            **({"quic_handshakes": self.quic_handshakes} if self.quic_handshakes else {}),
            "requests": list(reversed(self.requests)),
            "network_events": self.network_events,
        }


def maybe_binary(data: bytes) -> str | dict[str, str]:
    """A body as OONI stores it: text if it is UTF-8, else a base64 object."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"format": "base64", "data": base64.b64encode(data).decode("ascii")}


def endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
