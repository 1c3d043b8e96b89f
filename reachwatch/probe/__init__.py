"""The probe: measurement primitives that record what happened the way OONI's probes do.

Each primitive takes a `Trace` and appends OONI's archival entries to it (`queries`,
`tcp_connect`, `tls_handshakes`, `requests`, `network_events`), with timings and df-007 failure
strings; every one is bounded by a timeout. Experiments are built from them.
"""

from ._conn import Conn, tcp_connect, tls_context, tls_handshake
from ._dns import lookup_getaddrinfo, lookup_udp
from ._doh import lookup_doh
from ._failures import failure_of
from ._http import Fetch, NetConfig, Response, fetch, http_request, resolve
from ._stun import stun_binding, turn_allocate
from ._trace import Trace

__all__ = [
    "Conn",
    "Fetch",
    "NetConfig",
    "Response",
    "Trace",
    "failure_of",
    "fetch",
    "http_request",
    "lookup_doh",
    "lookup_getaddrinfo",
    "lookup_udp",
    "resolve",
    "stun_binding",
    "tcp_connect",
    "tls_context",
    "tls_handshake",
    "turn_allocate",
]
