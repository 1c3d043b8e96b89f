"""HTTP/1.1 GET over a connection (h11), and a fetch that resolves, connects and follows redirects
the way a browser does, recording every step."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import h2.config
import h2.connection
import h2.events
import h11
import orjson

from ._conn import Conn, tcp_connect, tls_context, tls_handshake
from ._dns import lookup_getaddrinfo, lookup_udp
from ._failures import failure_of
from ._proxy import Proxy
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


async def http_request(
    trace: Trace,
    conn: Conn,
    url: str,
    *,
    method: str = "GET",
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
    body_limit: int = BODY_LIMIT,
    timeout: float = HTTP_TIMEOUT,
) -> tuple[Response, str | None]:
    """One HTTP/1.1 exchange on `conn`; the response so far and the failure, if it broke."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent = [("Host", parts.netloc.rsplit("@", 1)[-1]), *(headers or REQUEST_HEADERS)]
    if method != "GET":
        sent.append(("Content-Length", str(len(body))))
    t0 = trace.now()
    response = Response()
    failure = None
    try:
        await asyncio.wait_for(
            _exchange(trace, conn, method, target, sent, body, response, body_limit), timeout
        )
    except Exception as exc:
        failure = failure_of(exc)
    _record(trace, conn, url, method, body, sent, response, failure, t0, "http/1.1")
    return response, failure


def _record(
    trace: Trace,
    conn: Conn,
    url: str,
    method: str,
    body: bytes,
    sent: list[tuple[str, str]],
    response: Response,
    failure: str | None,
    t0: float,
    alpn: str,
) -> None:
    trace.requests.append(
        {
            "network": "tcp",
            "address": endpoint(conn.ip, conn.port),
            "alpn": alpn,
            "failure": failure,
            "request": {
                "body": maybe_binary(body),
                "body_is_truncated": False,
                "headers_list": [list(h) for h in sent],
                "headers": dict(sent),
                "method": method,
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


async def http2_request(
    trace: Trace,
    conn: Conn,
    url: str,
    *,
    body_limit: int = BODY_LIMIT,
    timeout: float = HTTP_TIMEOUT,
) -> tuple[Response, str | None]:
    """One HTTP/2 GET on a TLS connection that negotiated h2."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent = [
        (":method", "GET"),
        (":authority", parts.netloc.rsplit("@", 1)[-1]),
        (":scheme", parts.scheme),
        (":path", target),
        *((name.lower(), value) for name, value in REQUEST_HEADERS),
    ]
    t0 = trace.now()
    response = Response()
    failure = None
    try:
        await asyncio.wait_for(_exchange_h2(trace, conn, sent, response, body_limit), timeout)
    except Exception as exc:
        failure = failure_of(exc)
    _record(trace, conn, url, "GET", b"", sent, response, failure, t0, "h2")
    return response, failure


async def _exchange_h2(
    trace: Trace, conn: Conn, headers: list[tuple[str, str]], response: Response, body_limit: int
) -> None:
    config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    client = h2.connection.H2Connection(config=config)
    client.initiate_connection()
    stream = client.get_next_available_stream_id()
    client.send_headers(stream, headers, end_stream=True)
    await _write(trace, conn, client.data_to_send())
    chunks: list[bytes] = []
    size = 0
    while True:
        data = await _read(trace, conn)
        if not data:
            raise EOFError("the connection closed before the response ended")
        for event in client.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream:
                for raw_name, raw_value in event.headers or ():
                    name, value = _text(raw_name), _text(raw_value)
                    if name == ":status":
                        response.status = int(value)
                    else:
                        response.headers.append((name, value))
            elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream:
                client.acknowledge_received_data(event.flow_controlled_length, stream)
                keep = max(0, body_limit - size)
                chunks.append(bytes(event.data[:keep]))
                size += len(event.data)
                if size > body_limit:
                    response.truncated = True
                    response.body = b"".join(chunks)
                    return
            elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream:
                raise ConnectionResetError("the server reset the stream")
            elif isinstance(event, h2.events.ConnectionTerminated):
                raise EOFError("the server ended the connection")
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                response.body = b"".join(chunks)
                return
        await _write(trace, conn, client.data_to_send())


@contextlib.contextmanager
def _event(trace: Trace, conn: Conn, operation: str) -> Iterator[dict[str, Any]]:
    """Record one OONI network event around an I/O operation, with its failure if it broke."""
    record: dict[str, Any] = {"failure": None, "num_bytes": 0}
    t0 = trace.now()
    try:
        yield record
    except asyncio.CancelledError:
        record["failure"] = "generic_timeout_error"  # the operation's timeout cut it short
        raise
    except Exception as exc:
        record["failure"] = failure_of(exc)
        raise
    finally:
        trace.event(operation, t0, address=endpoint(conn.ip, conn.port), tid=conn.tid, **record)


async def _write(trace: Trace, conn: Conn, data: bytes) -> None:
    with _event(trace, conn, "write") as record:
        record["num_bytes"] = len(data)
        conn.writer.write(data)
        await conn.writer.drain()


async def _read(trace: Trace, conn: Conn) -> bytes:
    with _event(trace, conn, "read") as record:
        data = await conn.reader.read(65536)
        record["num_bytes"] = len(data)
        return data


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


async def _exchange(
    trace: Trace,
    conn: Conn,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    response: Response,
    body_limit: int,
) -> None:
    client = h11.Connection(our_role=h11.CLIENT)
    request = h11.Request(method=method, target=target, headers=headers)
    payload = client.send(request) or b""
    if body:
        payload += client.send(h11.Data(data=body)) or b""
    await _write(trace, conn, payload + (client.send(h11.EndOfMessage()) or b""))
    chunks: list[bytes] = []
    size = 0
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA:
            data = await _read(trace, conn)
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


@dataclass(frozen=True)
class NetConfig:
    """How a probe or helper reaches the network: which resolver ("ip:port" over UDP, or the
    system's), which source address, which CA file (the system's roots when None)."""

    resolver: str | None = None
    source: str | None = None
    ca_file: str | None = None
    timeout: float = HTTP_TIMEOUT
    via: Proxy | None = None  # measure through this proxy (the app experiment)
    interface: str | None = None  # the tunnel interface whose address `source` is

    @property
    def via_label(self) -> str | None:
        """What a measurement made through a tunnel names it by."""
        if self.via is not None:
            return str(self.via)
        return f"interface:{self.interface}" if self.interface else None


async def resolve(trace: Trace, host: str, net: NetConfig) -> tuple[list[str], str | None]:
    """Addresses for `host` through the configured resolver (an IP needs none; through a
    proxy the name itself, for the proxy to resolve past local DNS)."""
    if net.via is not None:
        return [host], None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if net.resolver:
            return await lookup_udp(
                trace, host, net.resolver, timeout=net.timeout, source=net.source
            )
        return await lookup_getaddrinfo(trace, host, timeout=net.timeout)
    return [host], None


async def connect(
    trace: Trace, url: str, net: NetConfig, *, alpn: list[str] | None = None
) -> tuple[Conn | None, str | None]:
    """Resolve the URL's host, connect to the first address that answers, TLS for https
    (offering `alpn`, HTTP/1.1 alone by default)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    addrs, failure = await resolve(trace, host, net)
    if failure is not None:
        return None, failure
    conn = None
    for ip in addrs:
        conn, failure = await tcp_connect(
            trace, ip, port, timeout=net.timeout, source=net.source, via=net.via
        )
        if conn is not None:
            break
    if conn is None:
        return None, failure or "generic_timeout_error"
    if secure:
        context = tls_context(cafile=net.ca_file)
        failure = await tls_handshake(
            trace, conn, host, alpn=alpn, context=context, timeout=net.timeout
        )
        if failure is not None:
            await conn.close()
            return None, failure
    return conn, None


async def fetch(
    trace: Trace,
    url: str,
    net: NetConfig | None = None,
    *,
    max_redirects: int = MAX_REDIRECTS,
    body_limit: int = BODY_LIMIT,
) -> Fetch:
    """GET `url` as a browser would: DNS, the first address that connects, TLS for https, and
    redirects (at most `max_redirects`)."""
    net = net or NetConfig()
    for _hop in range(max_redirects + 1):
        conn, failure = await connect(trace, url, net, alpn=["h2", "http/1.1"])
        if conn is None:
            _record_unsent(trace, url, failure)
            return Fetch(url, failure=failure)
        exchange = http2_request if conn.alpn == "h2" else http_request
        try:
            response, failure = await exchange(
                trace, conn, url, body_limit=body_limit, timeout=net.timeout
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


def _record_unsent(trace: Trace, url: str, failure: str | None) -> None:
    """A request that never went out because DNS, TCP or TLS failed first: OONI records it
    with that failure, so the fetch's end is in `requests` whatever step broke."""
    trace.requests.append(
        {
            "failure": failure,
            "request": {"method": "GET", "url": url, "headers": dict(REQUEST_HEADERS)},
            "response": {"body": None, "code": 0, "headers": {}},
            "t0": trace.now(),
            "t": trace.now(),
            "transaction_id": None,
        }
    )


async def request_json(
    url: str, payload: Any = None, net: NetConfig | None = None
) -> tuple[Any, str | None]:
    """POST a JSON document (GET when there is none) to a test helper and decode the JSON
    reply; (reply, failure). The exchange is not part of any measurement."""
    net = net or NetConfig()
    trace = Trace()
    conn, failure = await connect(trace, url, net)
    if conn is None:
        return None, failure
    try:
        response, failure = await http_request(
            trace,
            conn,
            url,
            method="GET" if payload is None else "POST",
            body=b"" if payload is None else orjson.dumps(payload),
            headers=[("Content-Type", "application/json"), ("User-Agent", "reachwatch")],
            timeout=net.timeout,
        )
    finally:
        await conn.close()
    if failure is not None:
        return None, failure
    if response.status != 200:
        return None, f"unknown_failure: the helper answered HTTP {response.status}"
    try:
        return orjson.loads(response.body), None
    except orjson.JSONDecodeError:
        return None, "json_parse_error"
