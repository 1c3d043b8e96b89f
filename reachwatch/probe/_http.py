"""HTTP/1.1 GET over a connection (h11), and a fetch that resolves, connects and follows redirects
the way a browser does, recording every step."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import h11

from ._conn import Conn, tcp_connect, tls_context, tls_handshake
from ._dns import lookup_getaddrinfo
from ._failures import failure_of
from ._trace import Trace, endpoint, maybe_binary

HTTP_TIMEOUT = 15.0
BODY_LIMIT = 1 << 24  # OONI's probes keep at most 16 MiB of a body
MAX_REDIRECTS = 10
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36"
)
REQUEST_HEADERS = [
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("Accept-Language", "en-US,en;q=0.9"),
    ("User-Agent", USER_AGENT),
]


@dataclass
class Response:
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    truncated: bool = False

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)


@dataclass
class Fetch:
    """Where a fetch ended: the final response, or the failure that stopped it."""

    url: str
    response: Response | None = None
    failure: str | None = None


async def http_get(
    trace: Trace,
    conn: Conn,
    url: str,
    *,
    body_limit: int = BODY_LIMIT,
    timeout: float = HTTP_TIMEOUT,
) -> tuple[Response, str | None]:
    """One GET on `conn`; the response so far and the failure, if the exchange broke."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.netloc.rsplit("@", 1)[-1]
    headers = [("Host", host), *REQUEST_HEADERS]
    t0 = trace.now()
    response = Response()
    failure = None
    try:
        await asyncio.wait_for(_exchange(conn, target, headers, response, body_limit), timeout)
    except Exception as exc:
        failure = failure_of(exc)
    trace.requests.append(
        {
            "network": "tcp",
            "address": endpoint(conn.ip, conn.port),
            "alpn": "http/1.1",
            "failure": failure,
            "request": {
                "body": "",
                "body_is_truncated": False,
                "headers_list": [list(h) for h in headers],
                "headers": dict(headers),
                "method": "GET",
                "tor": {"exit_ip": None, "exit_name": None, "is_tor": False},
                "x_transport": "tcp",
                "url": url,
            },
            "response": {
                "body": maybe_binary(response.body),
                "body_is_truncated": response.truncated,
                "code": response.status,
                "headers_list": [list(h) for h in response.headers],
                "headers": dict(response.headers),
            },
            "t0": t0,
            "t": trace.now(),
            "transaction_id": conn.tid,
        }
    )
    return response, failure


async def _exchange(
    conn: Conn,
    target: str,
    headers: list[tuple[str, str]],
    response: Response,
    body_limit: int,
) -> None:
    client = h11.Connection(our_role=h11.CLIENT)
    request = h11.Request(method="GET", target=target, headers=headers)
    conn.writer.write(client.send(request) + client.send(h11.EndOfMessage()))
    await conn.writer.drain()
    chunks: list[bytes] = []
    size = 0
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA:
            data = await conn.reader.read(65536)
            if not data and client.their_state is h11.SEND_RESPONSE:
                raise EOFError("the connection closed before a response")
            client.receive_data(data)
            continue
        if isinstance(event, h11.Response):
            response.status = event.status_code
            response.headers = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers
            ]
        elif isinstance(event, h11.Data):
            keep = max(0, body_limit - size)
            chunks.append(bytes(event.data[:keep]))
            size += len(event.data)
            if size > body_limit:
                response.truncated = True
                break
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    response.body = b"".join(chunks)


async def fetch(
    trace: Trace,
    url: str,
    *,
    ca_file: str | None = None,
    max_redirects: int = MAX_REDIRECTS,
    body_limit: int = BODY_LIMIT,
    timeout: float = HTTP_TIMEOUT,
) -> Fetch:
    """GET `url` as a browser would: system DNS, the first address that connects, TLS for
    https, and redirects (at most `max_redirects`)."""
    for _hop in range(max_redirects + 1):
        parts = urlsplit(url)
        host = parts.hostname or ""
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        addrs, failure = await _resolve(trace, host)
        if failure is not None:
            return Fetch(url, failure=failure)
        conn = None
        for ip in addrs:
            conn, failure = await tcp_connect(trace, ip, port, timeout=timeout)
            if conn is not None:
                break
        if conn is None:
            return Fetch(url, failure=failure or "generic_timeout_error")
        try:
            if secure:
                failure = await tls_handshake(
                    trace, conn, host, context=tls_context(cafile=ca_file), timeout=timeout
                )
                if failure is not None:
                    return Fetch(url, failure=failure)
            response, failure = await http_get(
                trace, conn, url, body_limit=body_limit, timeout=timeout
            )
        finally:
            await conn.close()
        if failure is not None:
            return Fetch(url, response, failure)
        location = response.header("location")
        if not (300 <= response.status < 400 and location):
            return Fetch(url, response)
        url = urljoin(url, location)
        if not urlsplit(url).hostname:
            return Fetch(url, response, "http_invalid_redirect_location_host")
    return Fetch(url, failure="unknown_failure: stopped after too many redirects")


async def _resolve(trace: Trace, host: str) -> tuple[list[str], str | None]:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return await lookup_getaddrinfo(trace, host)
    return [host], None
