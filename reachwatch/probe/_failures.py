"""Exceptions -> OONI's failure strings (df-007), so our measurements read like OONI's."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

import dns.exception
import dns.rcode
import dns.resolver

_ERRNO = {
    errno.ECONNREFUSED: "connection_refused",
    errno.ECONNRESET: "connection_reset",
    errno.ECONNABORTED: "connection_aborted",
    errno.EHOSTUNREACH: "host_unreachable",
    errno.ENETUNREACH: "network_unreachable",
    errno.ENETDOWN: "network_down",
    errno.ENETRESET: "network_reset",
    errno.ETIMEDOUT: "generic_timeout_error",
    errno.EPIPE: "connection_reset",
}

_GAI = {
    socket.EAI_NONAME: "dns_nxdomain_error",
    socket.EAI_AGAIN: "dns_temporary_failure",
    socket.EAI_FAIL: "dns_non_recoverable_failure",
}
if hasattr(socket, "EAI_NODATA"):
    _GAI[socket.EAI_NODATA] = "dns_no_answer"

# OpenSSL's X509_V_ERR_* codes that OONI distinguishes
_HOSTNAME_MISMATCH = 62
_UNKNOWN_AUTHORITY = {2, 18, 19, 20, 21, 27}


def failure_of(exc: BaseException) -> str:
    """OONI's string for what went wrong; `unknown_failure: ...` when there is none."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | dns.exception.Timeout):
        return "generic_timeout_error"
    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code == _HOSTNAME_MISMATCH:
            return "ssl_invalid_hostname"
        if exc.verify_code in _UNKNOWN_AUTHORITY:
            return "ssl_unknown_authority"
        return "ssl_invalid_certificate"
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | asyncio.IncompleteReadError):
        return "eof_error"
    if isinstance(exc, ssl.SSLError):
        return "connection_reset" if "reset" in str(exc).lower() else "ssl_failed_handshake"
    if isinstance(exc, socket.gaierror):
        return _GAI.get(exc.errno or 0, "dns_server_misbehaving")
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return "dns_nxdomain_error"
    if isinstance(exc, dns.resolver.NoAnswer):
        return "dns_no_answer"
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "connection_reset"
    if isinstance(exc, OSError) and exc.errno in _ERRNO:
        return _ERRNO[exc.errno]
    if isinstance(exc, EOFError):
        return "eof_error"
    return f"unknown_failure: {type(exc).__name__}: {exc}"[:200]


_RCODES: dict[int, str | None] = {
    dns.rcode.NOERROR: None,
    dns.rcode.NXDOMAIN: "dns_nxdomain_error",
    dns.rcode.SERVFAIL: "dns_servfail_error",
    dns.rcode.REFUSED: "dns_refused_error",
}


def rcode_failure(rcode: int) -> str | None:
    """A DNS response code as OONI names it; None for NOERROR."""
    return _RCODES.get(int(rcode), "dns_server_misbehaving")
