"""The web connectivity test helper: the control, measured from outside the probe's network.

It speaks OONI's test helper protocol (ts-017): the probe POSTs the URL and the endpoints it
resolved; the helper resolves the name itself, connects to every endpoint (TLS for https),
fetches the page, and answers with what it saw. A verdict of `down` rests on this answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import h11
import orjson

from ._conn import tcp_connect, tls_context, tls_handshake
from ._http import NetConfig, fetch, resolve
from ._trace import Trace, endpoint

MAX_REQUEST_BYTES = 64 * 1024
MAX_ENDPOINTS = 16
IP_PATH = "/ip"
TITLE = re.compile(rb"<title>([^<]{1,512})</title>", re.IGNORECASE)


class BadControlRequest(ValueError):
    """The probe's request is not one the helper can measure; the message says why."""


async def control(request: Any, net: NetConfig) -> dict[str, Any]:
    """OONI's control response for one control request."""
    if not isinstance(request, dict) or not isinstance(request.get("http_request"), str):
        raise BadControlRequest("expected an object with an http_request URL")
    url = request["http_request"]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadControlRequest(f"not an http(s) URL: {url[:200]!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BadControlRequest(f"bad port in {url[:200]!r}") from None
    asked = request.get("tcp_connect") or []
    if not isinstance(asked, list) or not all(isinstance(e, str) for e in asked):
        raise BadControlRequest("tcp_connect must be a list of 'ip:port' strings")

    addrs, failure = await resolve(Trace(), parts.hostname, net)
    endpoints = sorted({*asked, *(endpoint(ip, port) for ip in addrs)})[:MAX_ENDPOINTS]
    secure = parts.scheme == "https"
    checks = await asyncio.gather(*(_check(e, parts.hostname, secure, net) for e in endpoints))
    fetched = await fetch(Trace(), url, net)
    response = fetched.response
    got = fetched.failure is None and response is not None
    title = TITLE.search(response.body) if got and response else None
    return {
        "tcp_connect": {e: tcp for e, (tcp, _) in zip(endpoints, checks, strict=True)},
        "tls_handshake": {e: tls for e, (_, tls) in zip(endpoints, checks, strict=True) if tls},
        "quic_handshake": {},
        "http_request": {
            "body_length": len(response.body) if got and response else -1,
            "discovered_h3_endpoint": "",
            "failure": fetched.failure,
            "title": title.group(1).decode("utf-8", "replace") if title else "",
            "headers": dict(response.headers) if got and response else {},
            "status_code": response.status if got and response else -1,
        },
        "http3_request": None,
        "dns": {
            # OONI's helper names NXDOMAIN this way, and reports no answer as no addresses
            "failure": None if failure in (None, "dns_no_answer") else _th_dns(failure),
            "addrs": addrs,
        },
        "ip_info": {},
    }


def _th_dns(failure: str | None) -> str | None:
    return "dns_name_error" if failure == "dns_nxdomain_error" else failure


async def _check(
    target: str, host: str, secure: bool, net: NetConfig
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    ip, _, port = target.rpartition(":")
    trace = Trace()
    try:
        conn, failure = await tcp_connect(trace, ip.strip("[]"), int(port), timeout=net.timeout)
    except ValueError:
        return {"status": False, "failure": "unknown_failure: bad endpoint"}, None
    tcp = {"status": conn is not None, "failure": failure}
    if conn is None or not secure:
        if conn is not None:
            await conn.close()
        return tcp, None
    context = tls_context(cafile=net.ca_file)
    tls_failure = await tls_handshake(trace, conn, host, context=context, timeout=net.timeout)
    await conn.close()
    return tcp, {"server_name": host, "status": tls_failure is None, "failure": tls_failure}


Handler = Callable[[Any], Awaitable[dict[str, Any]]]


async def serve(
    host: str, port: int, net: NetConfig, *, started: asyncio.Future[int] | None = None
) -> None:
    """Serve the control over HTTP until cancelled; `started` receives the bound port."""

    async def answer(request: Any) -> dict[str, Any]:
        return await control(request, net)

    server = await asyncio.start_server(
        lambda r, w: _handle(r, w, answer), host, port, limit=MAX_REQUEST_BYTES
    )
    if started is not None:
        started.set_result(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


async def _handle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: Handler
) -> None:
    conn = h11.Connection(our_role=h11.SERVER)
    peer = str(writer.get_extra_info("peername")[0])
    try:
        status, reply = await asyncio.wait_for(_one_request(reader, conn, answer, peer), 60)
    except (TimeoutError, h11.RemoteProtocolError, ConnectionError) as exc:
        status, reply = 400, {"error": f"bad request: {type(exc).__name__}"}
    body = orjson.dumps(reply)
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    with contextlib.suppress(Exception):
        writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
        writer.write(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
        await writer.drain()
    writer.close()


async def _one_request(
    reader: asyncio.StreamReader, conn: h11.Connection, answer: Handler, peer: str
) -> tuple[int, dict[str, Any]]:
    method = target = b""
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            if not data:
                return 400, {"error": "the request ended early"}
            conn.receive_data(data)
        elif isinstance(event, h11.Request):
            method, target = event.method, event.target
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_REQUEST_BYTES:
                return 413, {"error": f"the request is over {MAX_REQUEST_BYTES} bytes"}
        elif isinstance(event, h11.EndOfMessage):
            break
    if method == b"GET" and target == IP_PATH.encode():
        # the caller's public address, for its country and network; the helper keeps nothing
        return 200, {"ip": peer}
    if method != b"POST":
        return 405, {"error": "POST a control request (OONI ts-017) as JSON"}
    try:
        return 200, await answer(orjson.loads(bytes(body)))
    except orjson.JSONDecodeError as exc:
        return 400, {"error": f"invalid JSON: {exc}"}
    except BadControlRequest as exc:
        return 400, {"error": str(exc)}
