"""The `test_keys` of every experiment reachwatch understands, one Struct per test.

Names and shapes follow OONI's specifications (ts-017 web_connectivity, ts-018 whatsapp,
ts-019 facebook_messenger, ts-020 telegram, ts-025 stunreachability, ts-029 signal, and the
circumvention tests). Keys we do not use are ignored on decode, so newer probe versions that
add keys still parse.
"""

from __future__ import annotations

import msgspec

from ._netevents import (
    NULL,
    DNSQuery,
    HTTPTransaction,
    NetworkEvent,
    Number,
    TCPConnect,
    TLSHandshake,
)

_EVENTS = msgspec.json.Decoder(list[NetworkEvent] | None)


class EndpointRecord(msgspec.Struct, kw_only=True, gc=False):
    """Which operations of a measurement tried one catalogue endpoint (reachwatch's app tests)."""

    target: str
    port: int
    protocol: str
    transactions: list[int] = []


class FeatureRecord(msgspec.Struct, kw_only=True, gc=False):
    rule: str
    endpoints: list[EndpointRecord] = []


class Primitives(msgspec.Struct, kw_only=True, gc=False):
    """The event lists most experiments share (OONI's archival format)."""

    queries: list[DNSQuery] | None = None
    # openvpn writes one tcp_connect object, every other test a list
    tcp_connect: list[TCPConnect] | TCPConnect | None = None
    tls_handshakes: list[TLSHandshake] | None = None
    quic_handshakes: list[TLSHandshake] | None = None
    requests: list[HTTPTransaction] | None = None
    # decoded on demand: web_connectivity records hundreds of these that no verdict reads
    network_events: msgspec.Raw = NULL
    failure: str | None = None
    # reachwatch's app tests: per feature, its rule and which transactions tried each endpoint
    x_features: dict[str, FeatureRecord] | None = None
    # measured through a tunnel (the proxy's URL or `interface:NAME`), and the run that pairs it
    # with its direct twin
    x_via: str | None = None
    x_run: str | None = None
    # the AS numbers of the app's real service (its catalogue `networks`)
    x_networks: list[int] | None = None

    def events(self) -> list[NetworkEvent]:
        return _EVENTS.decode(self.network_events) or []

    def tcp_connects(self) -> list[TCPConnect]:
        if self.tcp_connect is None:
            return []
        if isinstance(self.tcp_connect, TCPConnect):
            return [self.tcp_connect]
        return self.tcp_connect


# --- web_connectivity ----------------------------------------------------------------------


class ControlTCP(msgspec.Struct, kw_only=True, gc=False):
    status: bool | None = None
    failure: str | None = None


class ControlTLS(msgspec.Struct, kw_only=True, gc=False):
    server_name: str | None = None
    status: bool | None = None
    failure: str | None = None


class ControlHTTP(msgspec.Struct, kw_only=True, gc=False):
    body_length: int | None = None
    failure: str | None = None
    title: str | None = None
    headers: dict[str, str] | None = None
    status_code: int | None = None


class ControlDNS(msgspec.Struct, kw_only=True, gc=False):
    failure: str | None = None
    addrs: list[str] | None = None


class ControlIPInfo(msgspec.Struct, kw_only=True, gc=False):
    asn: int | None = None
    flags: int | None = None


class Control(msgspec.Struct, kw_only=True, gc=False):
    """What the test helper saw from outside the probe's network."""

    tcp_connect: dict[str, ControlTCP] | None = None
    tls_handshake: dict[str, ControlTLS] | None = None
    http_request: ControlHTTP | None = None
    dns: ControlDNS | None = None
    ip_info: dict[str, ControlIPInfo] | None = None


class WebConnectivityKeys(Primitives, kw_only=True):
    client_resolver: str | None = None
    control: Control | None = None
    control_failure: str | None = None
    dns_experiment_failure: str | None = None
    dns_consistency: str | None = None
    http_experiment_failure: str | None = None
    body_length_match: bool | None = None
    body_proportion: Number | None = None
    status_code_match: bool | None = None
    headers_match: bool | None = None
    title_match: bool | None = None
    # the probe's own conclusion: what our verdict is compared against, never copied
    accessible: bool | None = None
    blocking: str | bool | None = None
    x_blocking_flags: int | None = None


# --- messaging apps ------------------------------------------------------------------------


class WhatsAppKeys(Primitives, kw_only=True):
    registration_server_failure: str | None = None
    registration_server_status: str | None = None
    whatsapp_endpoints_blocked: list[str] | None = None
    whatsapp_endpoints_dns_inconsistent: list[str] | None = None
    whatsapp_endpoints_status: str | None = None
    whatsapp_web_failure: str | None = None
    whatsapp_web_status: str | None = None


class TelegramKeys(Primitives, kw_only=True):
    telegram_http_blocking: bool | None = None
    telegram_tcp_blocking: bool | None = None
    telegram_web_failure: str | None = None
    telegram_web_status: str | None = None


class SignalKeys(Primitives, kw_only=True):
    signal_backend_status: str | None = None
    signal_backend_failure: str | None = None


class FacebookMessengerKeys(Primitives, kw_only=True):
    facebook_b_api_dns_consistent: bool | None = None
    facebook_b_api_reachable: bool | None = None
    facebook_b_graph_dns_consistent: bool | None = None
    facebook_b_graph_reachable: bool | None = None
    facebook_edge_dns_consistent: bool | None = None
    facebook_edge_reachable: bool | None = None
    facebook_external_cdn_dns_consistent: bool | None = None
    facebook_external_cdn_reachable: bool | None = None
    facebook_scontent_cdn_dns_consistent: bool | None = None
    facebook_scontent_cdn_reachable: bool | None = None
    facebook_star_dns_consistent: bool | None = None
    facebook_star_reachable: bool | None = None
    facebook_stun_dns_consistent: bool | None = None
    facebook_stun_reachable: bool | None = None
    facebook_dns_blocking: bool | None = None
    facebook_tcp_blocking: bool | None = None


class StunReachabilityKeys(Primitives, kw_only=True):
    endpoint: str | None = None


# --- DNS and generic ------------------------------------------------------------------------


class DNSCheckLookup(Primitives, kw_only=True):
    pass


class DNSCheckKeys(msgspec.Struct, kw_only=True, gc=False):
    domain: str | None = None
    bootstrap: DNSCheckLookup | None = None
    bootstrap_failure: str | None = None
    lookups: dict[str, DNSCheckLookup] | None = None


class URLGetterKeys(Primitives, kw_only=True):
    failed_operation: str | None = None


# --- circumvention --------------------------------------------------------------------------


class TorTarget(Primitives, kw_only=True):
    target_address: str | None = None
    target_name: str | None = None
    target_protocol: str | None = None
    target_source: str | None = None


class TorKeys(msgspec.Struct, kw_only=True, gc=False):
    # the earliest tor experiments wrote a list of targets without names
    targets: dict[str, TorTarget] | list[TorTarget] | None = None
    failure: str | None = None


class TorBootstrapKeys(msgspec.Struct, kw_only=True, gc=False):
    """vanilla_tor and torsf: one tor bootstrap, with or without a pluggable transport."""

    bootstrap_time: Number | None = None
    error: str | None = None
    failure: str | None = None
    success: bool | None = None
    tor_progress: int | None = None
    tor_progress_tag: str | None = None
    transport_name: str | None = None


class PsiphonKeys(msgspec.Struct, kw_only=True, gc=False):
    bootstrap_time: Number | None = None
    failure: str | None = None


class RiseupVPNKeys(Primitives, kw_only=True):
    api_failure: str | list[str] | None = None
    api_status: str | None = None
    ca_cert_status: bool | None = None


class OpenVPNKeys(Primitives, kw_only=True):
    provider: str | None = None
    remote: str | None = None
    transport: str | None = None
    success: bool | None = None
    bootstrap_time: Number | None = None


class CatalogueAppKeys(Primitives, kw_only=True):
    """An app reachwatch measures from its catalogue and OONI has no test for."""


TestKeys = (
    WebConnectivityKeys
    | WhatsAppKeys
    | TelegramKeys
    | SignalKeys
    | FacebookMessengerKeys
    | StunReachabilityKeys
    | DNSCheckKeys
    | URLGetterKeys
    | TorKeys
    | TorBootstrapKeys
    | PsiphonKeys
    | RiseupVPNKeys
    | OpenVPNKeys
    | CatalogueAppKeys
)

TEST_KEYS: dict[str, type[TestKeys]] = {
    "web_connectivity": WebConnectivityKeys,
    "whatsapp": WhatsAppKeys,
    "telegram": TelegramKeys,
    "signal": SignalKeys,
    "facebook_messenger": FacebookMessengerKeys,
    "stunreachability": StunReachabilityKeys,
    "dnscheck": DNSCheckKeys,
    "urlgetter": URLGetterKeys,
    "tor": TorKeys,
    "vanilla_tor": TorBootstrapKeys,
    "torsf": TorBootstrapKeys,
    "psiphon": PsiphonKeys,
    "riseupvpn": RiseupVPNKeys,
    "openvpn": OpenVPNKeys,
    "skype": CatalogueAppKeys,
    "teams": CatalogueAppKeys,
    "viber": CatalogueAppKeys,
    "zoom": CatalogueAppKeys,
}
"""Experiments whose test_keys reachwatch parses; any other test name is stored, marked unknown."""
