"""From a scenario to the lab's concrete Internet: an address for every site and app endpoint
(all inside 198.19.0.0/16), the servers that answer there, the zone of the lab's DNS, the
lab's copy of the catalogue (real names, lab addresses), the IP database that tells the probe
whose network an address is in, and what each target's traffic looks like to a censor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from ..probe.catalogue import Catalogue
from .scenario import LAB_CORE, LAB_HOSTS, LAB_LINKS, Network, Policy, Scenario

DNS_ADDRESS = str(LAB_CORE[53])  # the lab's DNS: authoritative, and the "public" resolver
PROXY_ADDRESS, PROXY_PORT = str(LAB_CORE[10]), 1080  # outside every censor
HELPER_ADDRESS = str(LAB_CORE[80])  # the web_connectivity test helper
COLLECTOR_ADDRESS = str(LAB_CORE[25])  # where the probes submit, on port 80
BOGON = "10.10.34.35"  # what dns.bogon answers (the address real censors used in Iran)
SITES_ASN, SITES_ORG = 64500, "Lab Hosting"  # a documentation AS number (RFC 5398)
PRIVATE_ASN = 4200000000
_SITES_BLOCK = 200  # sites live in 198.19.200.0/24
UDP_PROTOCOLS = ("udp-stun", "turn", "quic")
TLS_PROTOCOLS = ("tls", "https")


@dataclass(frozen=True)
class Endpoint:
    """One thing a target's traffic goes to, as a censor on the path sees it."""

    host: str | None
    address: str
    port: int
    protocol: str  # the catalogue's protocols, and `http` for plaintext sites


@dataclass(frozen=True)
class Service:
    """A server of the lab's Internet: `kind` is site or site-tls (a web site), or an app
    endpoint's tcp, tls, https, stun, turn or quic."""

    address: str
    port: int
    kind: str
    name: str  # the certificate's name (a host, or the address itself)


@dataclass(frozen=True)
class Isp:
    """One ISP of the scenario, with the lab's addresses for it."""

    index: int
    network: Network
    gateway: str  # the censor router on the ISP's LAN; also its resolver
    blockpage: str  # the ISP's own blockpage server (what dns.wrong points to)
    uplink: str  # the router's end of its link to the lab's Internet
    peer: str  # the Internet's end of that link
    probes: tuple[str, ...]  # the probe hosts' addresses

    @property
    def resolver(self) -> str:
        return self.gateway if self.network.resolver == "isp" else DNS_ADDRESS


@dataclass
class Plan:
    scenario: Scenario
    zone: dict[str, list[str]] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)
    endpoints: dict[str, list[Endpoint]] = field(default_factory=dict)  # per target
    isps: list[Isp] = field(default_factory=list)
    catalogue: dict[str, Any] = field(default_factory=dict)  # the lab's catalogue, as YAML data
    ipdb: list[tuple[int, int, int, str, str]] = field(default_factory=list)  # start,end,asn,org,cc

    def internet_config(self, work: str) -> dict[str, Any]:
        """What the lab's Internet serves; the CA and the collected measurements in `work`."""
        return {
            "zone": self.zone,
            "services": [asdict(s) for s in self.services],
            "dns": DNS_ADDRESS,
            "proxy": [PROXY_ADDRESS, PROXY_PORT],
            "helper": HELPER_ADDRESS,
            "collector": [COLLECTOR_ADDRESS, 80],
            "collected": f"{work}/collected.jsonl",
            "ca_dir": work,
        }

    def censor_rules(self, policies: list[Policy]) -> dict[str, Any]:
        """What a censor must do while `policies` are active, in the terms its
        daemon applies: names for DNS and SNI and Host, addresses and ports for packets."""
        rules: dict[str, Any] = {
            "dns.nxdomain": [], "dns.bogon": [], "dns.wrong": [], "dns.inject": [],
            "ip.blackhole": [], "tcp.refuse": [], "tcp.reset": [], "tls.sni-reset": [],
            "tls.sni-silence": [], "http.blockpage": [], "udp.drop": [], "throttle": [],
        }  # fmt: skip
        dpi: dict[str, set[int]] = {"tls": set(), "http": set()}
        for policy in policies:
            for target in policy.targets:
                for endpoint in self.endpoints[target]:
                    item = _rule_item(policy.technique, endpoint)
                    if item is None:
                        continue
                    if item not in rules[policy.technique]:
                        rules[policy.technique].append(item)
                    if policy.technique.startswith(("tls.sni", "http.")):
                        dpi[policy.technique.split(".")[0]].add(endpoint.port)
        # the DPI box sees every connection to the ports of what it looks for, to any address
        return {"rules": rules, "tls_ports": sorted(dpi["tls"]), "http_ports": sorted(dpi["http"])}


def _rule_item(technique: str, endpoint: Endpoint) -> Any:
    """What of `endpoint` a technique acts on; None when it cannot touch it (a DNS lie does
    nothing to an endpoint given by address, an SNI filter nothing to plain TCP)."""
    stage = technique.split(".")[0]
    udp = endpoint.protocol in UDP_PROTOCOLS
    if stage == "dns" or technique in ("tls.sni-reset", "tls.sni-silence"):
        if stage == "tls" and endpoint.protocol not in TLS_PROTOCOLS:
            return None
        return endpoint.host
    if technique == "http.blockpage":  # by Host: a site's name, or an app's plaintext endpoint
        return endpoint.host if endpoint.protocol == "http" and endpoint.host else None
    if technique in ("ip.blackhole", "throttle"):
        return endpoint.address
    if technique in ("tcp.refuse", "tcp.reset"):
        return None if udp else [endpoint.address, endpoint.port]
    if technique == "udp.drop":
        return [endpoint.address, endpoint.port] if udp else None
    raise ValueError(technique)


class _Addresses:
    """Hands out the addresses of one /24 in order, the same one for the same key."""

    def __init__(self, block: int) -> None:
        self.base = LAB_HOSTS[block * 256]
        self.given: dict[str, str] = {}

    def of(self, key: str) -> str:
        if key not in self.given:
            if len(self.given) >= 240:
                raise ValueError(f"more than 240 addresses in {self.base}/24")
            self.given[key] = str(self.base + 10 + len(self.given))
        return self.given[key]

    def range(self) -> tuple[int, int]:
        return int(self.base), int(self.base) + 255


def make_plan(scenario: Scenario, catalogue: Catalogue) -> Plan:
    """The lab's Internet for `scenario`; addresses depend only on the scenario and the
    catalogue, so the same scenario builds the same lab."""
    plan = Plan(scenario)
    sites = _Addresses(_SITES_BLOCK)
    for site in scenario.sites:
        address = sites.of(site.host)
        plan.zone[site.host] = [address]
        parts = urlsplit(site.url)
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        if site.state == "up":
            plan.services.append(
                Service(address, port, "site-tls" if secure else "site", site.host)
            )
        plan.endpoints[site.url] = [
            Endpoint(site.host, address, port, "https" if secure else "http")
        ]
    start, end = sites.range()
    plan.ipdb.append((start, end, SITES_ASN, SITES_ORG, "ZZ"))

    apps = scenario.apps()
    lab_apps: dict[str, Any] = {}
    by_host: dict[str, str] = {}  # one address per name, whichever app lists it first
    for block, key in enumerate(apps, start=1):
        app = catalogue.app(key)
        addresses = _Addresses(block)
        features: dict[str, Any] = {}
        for name, feature in app.features.items():
            listed = []
            for endpoint in feature.endpoints:
                address = by_host.get(endpoint.host or "") or addresses.of(endpoint.target)
                if endpoint.host:
                    by_host[endpoint.host] = address
                    plan.zone[endpoint.host] = [address]
                kind = {"udp-stun": "stun"}.get(endpoint.protocol, endpoint.protocol)
                service = Service(address, endpoint.port, kind, endpoint.host or address)
                if service not in plan.services:
                    plan.services.append(service)
                row: dict[str, Any] = {"port": endpoint.port, "protocol": endpoint.protocol,
                                       "source": f"lab copy of: {endpoint.source}"}  # fmt: skip
                row["host" if endpoint.host else "ip"] = endpoint.host or address
                if endpoint.path != "/":
                    row["path"] = endpoint.path
                listed.append(row)
                target = f"{key}/{name}"
                plan.endpoints.setdefault(target, []).append(
                    Endpoint(endpoint.host, address, endpoint.port, endpoint.protocol)
                )
            features[name] = {"rule": feature.rule, "endpoints": listed}
        lab_apps[key] = {"name": app.name, "networks": list(app.networks), "features": features}
        start, end = addresses.range()
        # an app the catalogue names no network for still has its servers in one: a private
        # AS number (RFC 6996), so its lab addresses are not read as unannounced bogons
        asn = app.networks[0] if app.networks else PRIVATE_ASN + block
        plan.ipdb.append((start, end, asn, app.name, "US"))
    plan.catalogue = {"version": 1, "apps": lab_apps}

    for index, network in enumerate(scenario.networks):
        hosts = list(network.subnet.hosts())
        link = LAB_LINKS[4 * index]
        plan.isps.append(Isp(
            index=index, network=network, gateway=str(hosts[0]), blockpage=str(hosts[1]),
            uplink=str(link + 2), peer=str(link + 1),
            probes=tuple(str(hosts[2 + h]) for h in range(network.hosts)),
        ))  # fmt: skip
        subnet = network.subnet
        plan.ipdb.append((int(subnet[0]), int(subnet[-1]), network.asn, network.name,
                          scenario.country))  # fmt: skip
    plan.ipdb.sort()
    return plan


def catalogue_yaml(plan: Plan) -> str:
    return yaml.safe_dump(plan.catalogue, sort_keys=False)


def ipdb_files(plan: Plan) -> Iterator[tuple[str, str]]:
    """The lab's IP database in ip-location-db's layout (what the probe reads)."""
    asn = "".join(f"{s},{e},{a},{org}\n" for s, e, a, org, _ in plan.ipdb)
    geo = "".join(f"{s},{e},{cc}\n" for s, e, _, _, cc in plan.ipdb)
    yield "asn/asn-ipv4-num.csv", asn
    yield "asn/asn-ipv6-num.csv", ""
    yield "geo-whois-asn-country/geo-whois-asn-country-ipv4-num.csv", geo
    yield "geo-whois-asn-country/geo-whois-asn-country-ipv6-num.csv", ""
