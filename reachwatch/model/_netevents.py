"""OONI's measurement primitives (df-001 httpt, df-002 dnst, df-005 tcpconnect, df-006 tls).

Typed permissively: ten years of probes wrote these keys with small variations (numbers as
floats or ints, bodies as text or base64 objects, headers as maps or pair lists), and a
measurement that a real probe uploaded must parse. Only shapes that no probe ever wrote are
refused.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

import msgspec

from ._jsontext import utf8_length

Number = float
"""Times and ratios; a JSON integer is read as a float. Like the ports and codes below, what
the store's columns (DOUBLE, INTEGER) cannot hold is refused here, with the key that holds it,
instead of failing the write of every measurement ingested with it."""
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]


class BinaryData(msgspec.Struct, kw_only=True, gc=False):
    """A body or header value that was not valid UTF-8, as OONI encodes it."""

    format: str = "base64"
    data: str = ""

    def to_bytes(self) -> bytes:
        """Decode leniently: some old probes wrote base64 without padding."""
        raw = self.data.encode("ascii", "replace")
        try:
            return base64.b64decode(raw + b"=" * (-len(raw) % 4))
        except (binascii.Error, ValueError):
            return b""


MaybeBinary = str | BinaryData


def text_of(value: MaybeBinary | None) -> str:
    """The value as text, decoding base64 objects (invalid bytes replaced)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return value.to_bytes().decode("utf-8", "replace")


class DNSAnswer(msgspec.Struct, kw_only=True, gc=False):
    answer_type: str | None = None
    ipv4: str | None = None
    ipv6: str | None = None
    hostname: str | None = None
    asn: int | None = None


class DNSQuery(msgspec.Struct, kw_only=True, gc=False):
    hostname: str | None = None
    query_type: str | None = None
    engine: str | None = None
    resolver_address: str | None = None
    resolver_hostname: str | None = None
    resolver_port: str | int | None = None
    failure: str | None = None
    answers: list[DNSAnswer] | None = None
    t0: Number | None = None
    t: Number | None = None
    transaction_id: int | None = None
    tags: list[str] | None = None


class TCPStatus(msgspec.Struct, kw_only=True, gc=False):
    success: bool | None = None
    failure: str | None = None
    blocked: bool | None = None


class TCPConnect(msgspec.Struct, kw_only=True, gc=False):
    ip: str | None = None
    port: Port | None = None
    status: TCPStatus | None = None
    t0: Number | None = None
    t: Number | None = None
    transaction_id: int | None = None
    tags: list[str] | None = None


class TLSHandshake(msgspec.Struct, kw_only=True, gc=False):
    network: str | None = None
    address: str | None = None
    server_name: str | None = None
    alpn: list[str] | None = None
    failure: str | None = None
    no_tls_verify: bool | None = None
    tls_version: str | None = None
    t0: Number | None = None
    t: Number | None = None
    transaction_id: int | None = None
    tags: list[str] | None = None


NULL = msgspec.Raw(b"null")
"""A key the probe left out, as the raw JSON kept for a field decoded only on demand."""
HeaderMap = dict[str, MaybeBinary | list[MaybeBinary]]
HeaderList = list[tuple[str, MaybeBinary]]
_HEADER_LIST = msgspec.json.Decoder(HeaderList | None)


class HTTPRequest(msgspec.Struct, kw_only=True, gc=False):
    url: str | None = None
    method: str | None = None


class HTTPResponse(msgspec.Struct, kw_only=True, gc=False):
    code: Int32 | None = None
    headers: HeaderMap | None = None
    # the same headers as pairs (repeated names kept): decoded only if `headers` is missing
    headers_list: msgspec.Raw = NULL
    # the body as the probe wrote it (text, a base64 object, or null), decoded only where its
    # text is read: most pages are only measured, and measuring a 500 kB page on its JSON
    # costs 0.2 ms against 1.2 to decode it and encode it again
    body: msgspec.Raw = NULL
    body_is_truncated: bool | None = None

    def __post_init__(self) -> None:
        """Refuse a body no probe writes, as decoding it would (msgspec reports it with its
        place in the measurement)."""
        first = memoryview(self.body)[:1].tobytes()
        if first == b"{":
            try:
                _BINARY.decode(self.body)
            except msgspec.ValidationError as exc:  # its place is this response's, not `$`
                raise ValueError(f"{str(exc).split(' - at ')[0]} in the body") from None
        elif first not in (b'"', b"n"):
            raise ValueError("Expected `str | object | null` for the body")

    def text(self) -> str:
        """The body as text (a base64 body decoded, invalid bytes replaced)."""
        return text_of(_BODY.decode(self.body))

    def body_length(self) -> int:
        """Length in bytes of the body as the probe saw it."""
        first = memoryview(self.body)[:1].tobytes()
        if first == b'"':
            return utf8_length(self.body)
        if first == b"{":
            return len(_BINARY.decode(self.body).to_bytes())
        return 0

    def header_map(self) -> dict[str, str]:
        """Lowercase name -> first value, from whichever encoding the probe wrote."""
        headers: dict[str, str] = {}
        if self.headers is not None:
            for name, value in self.headers.items():
                if isinstance(value, list):
                    value = value[0] if value else ""
                headers.setdefault(name.lower(), text_of(value))
        else:
            for name, pair_value in _HEADER_LIST.decode(self.headers_list) or ():
                headers.setdefault(name.lower(), text_of(pair_value))
        return headers

    def header(self, name: str) -> str | None:
        """First value of a header, case-insensitively."""
        return self.header_map().get(name.lower())


_BINARY = msgspec.json.Decoder(BinaryData)
_BODY = msgspec.json.Decoder(MaybeBinary | None)


class HTTPTransaction(msgspec.Struct, kw_only=True, gc=False):
    request: HTTPRequest | None = None
    response: HTTPResponse | None = None
    failure: str | None = None
    t0: Number | None = None
    t: Number | None = None
    transaction_id: int | None = None
    tags: list[str] | None = None


class NetworkEvent(msgspec.Struct, kw_only=True, gc=False):
    operation: str | None = None
    address: str | None = None
    failure: str | None = None
    num_bytes: int | None = None
    proto: str | None = None
    t0: Number | None = None
    t: Number | None = None
    transaction_id: int | None = None
    tags: list[str] | None = None
