"""The target catalogue: which endpoints make up each feature of each app, as data.

Adding or fixing an app is editing `apps.yaml` (its schema is in docs/catalogue.md); the file is
checked when it loads, and every mistake is reported with its file, line and reason. Each
endpoint names its source, so a reader can see where a hostname or port comes from.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .._errors import InputError

FEATURES = ("messaging", "calls", "web", "registration", "media")
PROTOCOLS = ("tcp", "http", "tls", "https", "udp-stun", "turn", "quic")
METHODS = ("GET", "POST", "HEAD")
RULES = ("any", "each")
_APP_KEYS = {"name", "networks", "features"}
_FEATURE_KEYS = {"rule", "endpoints"}
_ENDPOINT_KEYS = {"host", "ip", "port", "protocol", "path", "method", "pins", "source", "note"}


class CatalogueError(InputError):
    """A catalogue that cannot be used; the message starts with `file:line:`."""


@dataclass(frozen=True)
class Endpoint:
    """One thing to reach: a name or an address, a port, a protocol."""

    port: int
    protocol: str
    source: str
    host: str | None = None
    ip: str | None = None
    path: str = "/"
    method: str = "GET"  # http and https endpoints: OONI's telegram test POSTs to the DCs
    pins: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        return self.host or self.ip or ""


@dataclass(frozen=True)
class Feature:
    """A feature works if `each` of its endpoints is reached, or `any` one of them."""

    rule: str
    endpoints: tuple[Endpoint, ...]


@dataclass(frozen=True)
class App:
    key: str
    name: str
    networks: tuple[int, ...]  # AS numbers of the real service: answers elsewhere are suspect
    features: dict[str, Feature] = field(default_factory=dict)


@dataclass(frozen=True)
class Catalogue:
    apps: dict[str, App]

    def app(self, key: str) -> App:
        try:
            return self.apps[key]
        except KeyError:
            known = ", ".join(sorted(self.apps))
            raise CatalogueError(f"no app {key!r} in the catalogue; it knows: {known}") from None


def load_catalogue(path: Path | None = None) -> Catalogue:
    """The catalogue at `path`, or the one shipped with reachwatch."""
    if path is None:
        return default_catalogue()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return _Parser(str(path), text).catalogue()


@cache
def default_catalogue() -> Catalogue:
    text = resources.files(__package__).joinpath("apps.yaml").read_text(encoding="utf-8")
    return _Parser("reachwatch/probe/apps.yaml", text).catalogue()


class _Parser:
    """YAML to typed records, keeping every node's line for the error messages."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.loader = yaml.SafeLoader(text)
        try:
            root = self.loader.get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark else 1
            raise CatalogueError(f"{name}:{line}: not valid YAML: {exc}") from None
        if root is None:
            raise CatalogueError(f"{name}:1: the catalogue is empty")
        self.root: yaml.Node = root

    def fail(self, node: yaml.Node, reason: str) -> CatalogueError:
        return CatalogueError(f"{self.name}:{node.start_mark.line + 1}: {reason}")

    def mapping(self, node: yaml.Node | None, what: str) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node or self.root, f"{what} must be a mapping")
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = str(self.value(key_node))
            if key in out:
                raise self.fail(key_node, f"{what}: {key!r} is given twice")
            out[key] = value_node
        return out

    def value(self, node: yaml.Node) -> Any:
        return self.loader.construct_object(node, deep=True)

    def only(self, items: dict[str, yaml.Node], allowed: set[str]) -> None:
        for key, node in items.items():
            if key not in allowed:
                raise self.fail(node, f"unknown key {key!r} (expected one of {sorted(allowed)})")

    def catalogue(self) -> Catalogue:
        top = self.mapping(self.root, "the catalogue")
        if self.value(top.get("version", self.root)) != 1:
            raise self.fail(top.get("version", self.root), "expected `version: 1`")
        apps = {
            key: self.app(key, node) for key, node in self.mapping(top.get("apps"), "apps").items()
        }
        if not apps:
            raise self.fail(self.root, "the catalogue lists no app")
        return Catalogue(apps)

    def app(self, key: str, node: yaml.Node) -> App:
        items = self.mapping(node, f"app {key!r}")
        self.only(items, _APP_KEYS)
        networks = self.value(items["networks"]) if "networks" in items else []
        if not isinstance(networks, list) or not all(isinstance(n, int) for n in networks):
            raise self.fail(items.get("networks", node), f"{key}: networks is a list of AS numbers")
        features = {
            name: self.feature(key, name, feature_node)
            for name, feature_node in self.mapping(
                items.get("features"), f"{key}: features"
            ).items()
        }
        if not features:
            raise self.fail(node, f"{key}: no feature")
        return App(key, str(self.value(items.get("name", node)) or key), tuple(networks), features)

    def feature(self, app: str, name: str, node: yaml.Node) -> Feature:
        where = f"{app}/{name}"
        if name not in FEATURES:
            raise self.fail(node, f"{where}: unknown feature (expected one of {list(FEATURES)})")
        items = self.mapping(node, where)
        self.only(items, _FEATURE_KEYS)
        if "rule" not in items:
            raise self.fail(node, f"{where}: no rule (`rule: any` or `rule: each`)")
        rule = self.value(items["rule"])
        if rule not in RULES:
            raise self.fail(items["rule"], f"{where}: rule {rule!r} is not `any` or `each`")
        listed = items.get("endpoints")
        if not isinstance(listed, yaml.SequenceNode) or not listed.value:
            raise self.fail(listed or node, f"{where}: endpoints must be a non-empty list")
        return Feature(rule, tuple(self.endpoint(where, item) for item in listed.value))

    def endpoint(self, where: str, node: yaml.Node) -> Endpoint:
        items = self.mapping(node, f"{where}: endpoint")
        self.only(items, _ENDPOINT_KEYS)
        fields = {key: self.value(value) for key, value in items.items()}
        protocol = fields.get("protocol")
        if protocol not in PROTOCOLS:
            raise self.fail(
                items.get("protocol", node),
                f"{where}: protocol {protocol!r} unknown (expected one of {list(PROTOCOLS)})",
            )
        port = fields.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise self.fail(items.get("port", node), f"{where}: port {port!r} is not 1-65535")
        host, ip = fields.get("host"), fields.get("ip")
        if (host is None) == (ip is None):
            raise self.fail(node, f"{where}: give either `host` or `ip`")
        if ip is not None:
            try:
                ipaddress.ip_address(str(ip))
            except ValueError:
                raise self.fail(items["ip"], f"{where}: {ip!r} is not an IP address") from None
        if not fields.get("source"):
            raise self.fail(node, f"{where}: every endpoint names its `source`")
        method = fields.get("method", "GET")
        if method not in METHODS:
            raise self.fail(items["method"], f"{where}: method {method!r} is not one of {METHODS}")
        pins = fields.get("pins") or []
        if not isinstance(pins, list) or not all(str(p).startswith("sha256/") for p in pins):
            raise self.fail(items.get("pins", node), f"{where}: pins are 'sha256/BASE64' strings")
        return Endpoint(
            port=port,
            protocol=str(protocol),
            source=str(fields["source"]),
            host=str(host) if host is not None else None,
            ip=str(ip) if ip is not None else None,
            path=str(fields.get("path") or "/"),
            method=str(method),
            pins=tuple(str(p) for p in pins),
        )
