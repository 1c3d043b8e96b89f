"""Scenario files: a small censored Internet described as data, checked before the lab builds it.

A scenario names the networks (ISPs) and what their censors do and when, the web sites of the
lab's Internet, the targets to measure, the schedule of runs in simulated time and, optionally,
the verdicts the pipeline should reach. Like the app catalogue, the YAML is read node by node so
that every mistake is refused as `file: key (line N): reason` before anything is built; the
schema is in docs/lab.md.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .._errors import InputError, read_text
from ..probe.catalogue import Catalogue, default_catalogue

TECHNIQUES: tuple[str, ...] = (
    "dns.nxdomain",
    "dns.bogon",
    "dns.wrong",
    "dns.inject",
    "ip.blackhole",
    "tcp.refuse",
    "tcp.reset",
    "tls.sni-reset",
    "tls.sni-silence",
    "http.blockpage",
    "udp.drop",
    "throttle",
)

LAB_CORE = ipaddress.IPv4Network("198.18.0.0/24")  # lab DNS, test helper, proxy (reserved)
LAB_LINKS = ipaddress.IPv4Network("198.18.254.0/24")  # censor uplinks (reserved)
LAB_HOSTS = ipaddress.IPv4Network("198.19.0.0/16")  # servers of the lab Internet (reserved)
LAB_RANGE = ipaddress.IPv4Network("198.18.0.0/15")

_RESERVED = (
    (LAB_CORE, "reserved for the lab's DNS, test helper and proxy"),
    (LAB_LINKS, "reserved for the censors' uplinks"),
    (LAB_HOSTS, "reserved for the servers of the lab's Internet"),
)
_RESOLVERS = ("isp", "public")
_SITE_STATES = ("up", "down")
_VERDICTS = ("ok", "blocked", "down", "error")
_MAX_DAYS = 366
_MAX_RUNS_PER_DAY = 24
_MAX_RUNS_PER_HOUR = 12
_MAX_HOSTS = 4
_MAX_ASN = 4294967294  # 0 and 4294967295 are reserved (RFC 7607, RFC 7300)
_MAX_NETWORKS = 63  # each takes a /30 of LAB_LINKS
_MAX_SITES = 240  # the sites' addresses come from one /24 of LAB_HOSTS
_LONGEST_PREFIX = 29  # room for the probe hosts, the ISP's resolver and the censor's address
_LABEL = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")

_TOP_KEYS = (
    "name",
    "country",
    "start",
    "days",
    "runs_per_day",
    "runs_per_hour",
    "proxy",
    "networks",
    "sites",
    "targets",
    "policies",
    "expect",
)
_TOP_REQUIRED = ("name", "country", "start", "days", "networks", "targets")
_NETWORK_KEYS = ("name", "asn", "subnet", "resolver", "hosts")
_SITE_KEYS = ("url", "state")
_POLICY_KEYS = ("network", "technique", "targets", "from", "until")
_EXPECT_KEYS = ("network", "target", "verdict", "technique", "via", "from", "until", "note")


class ScenarioError(InputError):
    """A scenario that cannot be built; the message is `file: key (line N): reason`."""


@dataclass(frozen=True)
class Window:
    """When a policy is in force or an expectation holds, in simulated time; open ends are None."""

    start: datetime | None = None  # inclusive, tz-aware UTC
    end: datetime | None = None  # exclusive

    def active(self, at: datetime) -> bool:
        return (self.start is None or self.start <= at) and (self.end is None or at < self.end)


@dataclass(frozen=True)
class Network:
    """An ISP: its own LAN of probe hosts behind its own censor."""

    name: str
    asn: int
    subnet: ipaddress.IPv4Network
    resolver: str = "isp"  # where its hosts send DNS queries: the ISP's resolver or a public one
    hosts: int = 1


@dataclass(frozen=True)
class Site:
    """A web site of the lab's Internet; a `down` one resolves but nothing answers, anywhere."""

    url: str
    host: str
    state: str = "up"


@dataclass(frozen=True)
class Policy:
    """What one network's censor does to some targets, and when."""

    network: str
    technique: str
    targets: tuple[str, ...]
    window: Window = Window()


@dataclass(frozen=True)
class Expectation:
    """The verdict the pipeline should reach for a target on a network, for the accuracy check."""

    network: str
    target: str
    verdict: str
    technique: str | None = None  # the pipeline's vocabulary (e.g. udp.timeout), not TECHNIQUES
    via: str | None = None  # None: the direct path; "proxy": through the lab's outside proxy
    window: Window = Window()
    note: str | None = None


@dataclass(frozen=True)
class Scenario:
    """A loaded, checked scenario: everything the lab needs to build and run it."""

    name: str
    path: Path
    country: str
    start: datetime
    days: int
    runs_per_day: int
    proxy: bool
    networks: tuple[Network, ...]
    sites: tuple[Site, ...]
    targets: tuple[str, ...]
    policies: tuple[Policy, ...]
    expect: tuple[Expectation, ...]

    def times(self) -> list[datetime]:
        """The simulated moments of the runs, evenly spaced through each day."""
        day = timedelta(days=1)
        # each moment computed from the start, so uneven divisions do not drift
        return [
            self.start + day * k / self.runs_per_day for k in range(self.days * self.runs_per_day)
        ]

    def network(self, name: str) -> Network:
        for network in self.networks:
            if network.name == name:
                return network
        known = ", ".join(n.name for n in self.networks)
        raise ScenarioError(f"{self.path}: networks: no network named {name!r} (it has: {known})")

    def apps(self) -> list[str]:
        """The apps to measure, in the order their first feature is listed, once each."""
        return list(dict.fromkeys(t.split("/", 1)[0] for t in self.targets if not _is_url(t)))

    def urls(self) -> list[str]:
        return [t for t in self.targets if _is_url(t)]


def load_scenario(path: Path, catalogue: Catalogue | None = None) -> Scenario:
    """The scenario at `path`, its apps checked against `catalogue` (default: the shipped one)."""
    text = read_text(path, ScenarioError)
    return _Parser(path, text, catalogue or default_catalogue()).scenario()


def _is_url(target: str) -> bool:
    return "://" in target


def _join(key: str, name: object) -> str:
    return f"{key}.{name}" if key else str(name)


def _found(node: yaml.Node) -> str:
    """What the file has at `node`, as written, for 'must be X, not Y'."""
    if isinstance(node, yaml.ScalarNode):
        return "nothing" if node.value == "" and not node.style else repr(node.value)
    return "a mapping" if isinstance(node, yaml.MappingNode) else "a list"


def _problem(exc: Exception) -> str:
    """YAML's complaint without the copy of the line (the message gives the line). PyYAML's
    constructors also fail with plain exceptions on tagged text: 2017-02-30 and `!!float abc`
    raise ValueError, `!!bool x` KeyError, `!!timestamp x` AttributeError."""
    if isinstance(exc, yaml.MarkedYAMLError):
        return ", ".join(part for part in (exc.context, exc.problem) if part) or str(exc)
    if isinstance(exc, yaml.YAMLError | ValueError):
        return str(exc).partition("\n")[0] or repr(exc)
    return repr(exc)


def _error(file: Path, key: str, line: int | None, reason: str) -> ScenarioError:
    where = key if line is None else f"{key} (line {line})" if key else f"line {line}"
    return ScenarioError(f"{file}: {where}: {reason}" if where else f"{file}: {reason}")


class _Parser:
    """YAML nodes to the dataclasses, each reader told its key path for the messages."""

    def __init__(self, path: Path, text: str, catalogue: Catalogue) -> None:
        self.path = path
        self.catalogue = catalogue
        # a site must not take over a name the lab serves for an app
        self.app_hosts = {
            endpoint.host.lower(): app.key
            for app in catalogue.apps.values()
            for feature in app.features.values()
            for endpoint in feature.endpoints
            if endpoint.host
        }
        try:
            self.loader = yaml.SafeLoader(text)
            root = self.loader.get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark else None
            raise _error(path, "", line, f"not valid YAML: {_problem(exc)}") from None
        except RecursionError:  # PyYAML composes nested collections recursively
            raise _error(path, "", None, "not valid YAML: nested too deeply") from None
        if root is None:
            raise _error(path, "", None, "the file is empty")
        self.root: yaml.Node = root

    def fail(self, key: str, node: yaml.Node, reason: str) -> ScenarioError:
        return _error(self.path, key, node.start_mark.line + 1, reason)

    # readers of one node

    def value(self, node: yaml.Node, key: str) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except Exception as exc:  # not only YAMLError: see _problem
            raise self.fail(key, node, f"cannot be read: {_problem(exc)}") from None

    def mapping(
        self, node: yaml.Node, key: str, allowed: tuple[str, ...], required: tuple[str, ...]
    ) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            subject = "" if key else "the scenario "
            raise self.fail(key, node, f"{subject}must be a mapping, not {_found(node)}")
        items: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise self.fail(key, key_node, "`<<` merge keys are not supported: write the keys")
            name = self.value(key_node, key)
            if name not in allowed:
                raise self.fail(
                    _join(key, name), key_node, f"unknown key (allowed: {', '.join(allowed)})"
                )
            if name in items:
                raise self.fail(_join(key, name), key_node, "given twice")
            items[name] = value_node
        for name in required:
            if name not in items:
                raise self.fail(_join(key, name), node, "required, but missing")
        return items

    def sequence(self, node: yaml.Node, key: str, nonempty: bool = False) -> tuple[yaml.Node, ...]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(key, node, f"must be a list, not {_found(node)}")
        if nonempty and not node.value:
            raise self.fail(key, node, "must list at least one")
        return tuple(node.value)

    def text(self, node: yaml.Node, key: str) -> str:
        value = self.value(node, key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, node, f"must be a non-empty text, not {_found(node)}")
        return value

    def choice(self, node: yaml.Node, key: str, options: tuple[str, ...]) -> str:
        value = self.value(node, key)
        if not isinstance(value, str) or value not in options:
            raise self.fail(key, node, f"must be one of {', '.join(options)}, not {_found(node)}")
        return value

    def integer(self, node: yaml.Node, key: str, low: int, high: int) -> int:
        value = self.value(node, key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(key, node, f"must be a whole number {low}-{high}, not {_found(node)}")
        return value

    def flag(self, node: yaml.Node, key: str) -> bool:
        value = self.value(node, key)
        if not isinstance(value, bool):
            raise self.fail(key, node, f"must be true or false, not {_found(node)}")
        return value

    def moment(self, node: yaml.Node, key: str) -> datetime:
        """A date (midnight) or a date and time, in UTC unless it says otherwise."""
        value = self.value(node, key)
        try:
            if isinstance(value, str):  # quoted: the same ISO 8601 forms YAML reads unquoted
                value = datetime.fromisoformat(value)
            if isinstance(value, datetime):
                return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
            if isinstance(value, date):
                return datetime(value.year, value.month, value.day, tzinfo=UTC)
        except (ValueError, OverflowError):
            pass
        raise self.fail(
            key, node, f"must be a date or a date and time (ISO 8601), not {_found(node)}"
        )

    def country(self, node: yaml.Node, key: str) -> str:
        # the scalar as written: YAML reads an unquoted NO (Norway) as false
        text = node.value if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(text, str) or not re.fullmatch("[A-Z]{2}", text):
            raise self.fail(key, node, f"must be two upper-case letters, not {_found(node)}")
        return text

    def distinct(
        self, node: yaml.Node, key: str, check: Callable[[yaml.Node, str, str], None]
    ) -> tuple[str, ...]:
        """A non-empty list of texts, none twice, each passing `check(node, key, text)`."""
        out: list[str] = []
        for i, item in enumerate(self.sequence(node, key, nonempty=True)):
            where = f"{key}[{i}]"
            text = self.text(item, where)
            if text in out:
                raise self.fail(where, item, f"{text!r} is listed twice")
            check(item, where, text)
            out.append(text)
        return tuple(out)

    # the scenario and its sections

    def scenario(self) -> Scenario:
        top = self.mapping(self.root, "", _TOP_KEYS, _TOP_REQUIRED)
        name = self.text(top["name"], "name")
        country = self.country(top["country"], "country")
        start = self.moment(top["start"], "start")
        days = self.integer(top["days"], "days", 1, _MAX_DAYS)
        try:
            start + timedelta(days=days)  # so that times() cannot overflow
        except OverflowError:
            raise self.fail("days", top["days"], "the schedule runs past the year 9999") from None
        if "runs_per_day" in top and "runs_per_hour" in top:
            raise self.fail("runs_per_hour", top["runs_per_hour"],
                            "give runs_per_day or runs_per_hour, not both")  # fmt: skip
        if "runs_per_hour" in top:
            hourly = self.integer(top["runs_per_hour"], "runs_per_hour", 1, _MAX_RUNS_PER_HOUR)
            runs_per_day = 24 * hourly
        elif "runs_per_day" in top:
            runs_per_day = self.integer(top["runs_per_day"], "runs_per_day", 1, _MAX_RUNS_PER_DAY)
        else:
            runs_per_day = 1
        proxy = self.flag(top["proxy"], "proxy") if "proxy" in top else False
        networks = self.networks(top["networks"])
        sites = self.sites(top["sites"], "sites") if "sites" in top else ()
        targets = self.targets(top["targets"], sites)
        policies = self.sequence(top["policies"], "policies") if "policies" in top else ()
        expect = self.sequence(top["expect"], "expect") if "expect" in top else ()
        return Scenario(
            name=name,
            path=self.path,
            country=country,
            start=start,
            days=days,
            runs_per_day=runs_per_day,
            proxy=proxy,
            networks=networks,
            sites=sites,
            targets=targets,
            policies=tuple(
                self.policy(item, f"policies[{i}]", networks, targets)
                for i, item in enumerate(policies)
            ),
            expect=tuple(
                self.expectation(item, f"expect[{i}]", networks, targets, proxy)
                for i, item in enumerate(expect)
            ),
        )

    def networks(self, node: yaml.Node) -> tuple[Network, ...]:
        networks: list[Network] = []
        for i, item in enumerate(self.sequence(node, "networks", nonempty=True)):
            key = f"networks[{i}]"
            fields = self.mapping(item, key, _NETWORK_KEYS, ("name", "asn"))
            name = self.text(fields["name"], f"{key}.name")
            if any(other.name == name for other in networks):
                raise self.fail(f"{key}.name", fields["name"], f"another network is named {name!r}")
            if i >= _MAX_NETWORKS:
                raise self.fail(key, item, f"more than {_MAX_NETWORKS} networks (the lab's "
                                f"uplinks share {LAB_LINKS})")  # fmt: skip
            asn = self.integer(fields["asn"], f"{key}.asn", 1, _MAX_ASN)
            if any(other.asn == asn for other in networks):
                # the pipeline tells a country's networks apart by their AS number
                raise self.fail(f"{key}.asn", fields["asn"], f"another network has AS{asn}")
            networks.append(
                Network(
                    name=name,
                    asn=asn,
                    subnet=self.subnet(fields.get("subnet"), item, f"{key}.subnet", i, networks),
                    resolver=(
                        self.choice(fields["resolver"], f"{key}.resolver", _RESOLVERS)
                        if "resolver" in fields
                        else "isp"
                    ),
                    hosts=(
                        self.integer(fields["hosts"], f"{key}.hosts", 1, _MAX_HOSTS)
                        if "hosts" in fields
                        else 1
                    ),
                )
            )
        return tuple(networks)

    def subnet(
        self,
        node: yaml.Node | None,
        owner: yaml.Node,
        key: str,
        index: int,
        others: list[Network],
    ) -> ipaddress.IPv4Network:
        """The network's LAN, given or 198.18.(index+1).0/24, clear of every other range."""
        if node is None:
            address = int(LAB_RANGE.network_address) + (index + 1) * 256
            subnet = ipaddress.IPv4Network((address, 24))
            at, said, hint = owner, f"the default subnet {subnet}", "; give this network a `subnet`"
        else:
            value = self.value(node, key)
            try:
                subnet = ipaddress.IPv4Network(value if isinstance(value, str) else "", strict=True)
            except ValueError:
                raise self.fail(
                    key,
                    node,
                    f"must be an IPv4 network like 198.18.1.0/24 (no host bits set), "
                    f"not {_found(node)}",
                ) from None
            at, said, hint = node, str(subnet), ""
        if subnet.prefixlen > _LONGEST_PREFIX:
            raise self.fail(key, at, f"{said} is longer than /{_LONGEST_PREFIX}: too small")
        if not subnet.subnet_of(LAB_RANGE):
            raise self.fail(key, at, f"{said} is outside the lab's range {LAB_RANGE}")
        for reserved, why in _RESERVED:
            if subnet.overlaps(reserved):
                raise self.fail(key, at, f"{said} overlaps {reserved}, {why}{hint}")
        for other in others:
            if subnet.overlaps(other.subnet):
                raise self.fail(
                    key, at, f"{said} overlaps {other.subnet}, the subnet of {other.name!r}{hint}"
                )
        return subnet

    def sites(self, node: yaml.Node, key: str) -> tuple[Site, ...]:
        sites: list[Site] = []
        for i, item in enumerate(self.sequence(node, key)):
            where = f"{key}[{i}]"
            if i >= _MAX_SITES:
                raise self.fail(where, item, f"more than {_MAX_SITES} sites (they share one /24)")
            fields = self.mapping(item, where, _SITE_KEYS, ("url",))
            url = self.text(fields["url"], f"{where}.url")
            host = self.site_host(fields["url"], f"{where}.url", url)
            if any(other.host == host for other in sites):
                raise self.fail(f"{where}.url", fields["url"], f"another site has the host {host}")
            if host in self.app_hosts:
                raise self.fail(
                    f"{where}.url",
                    fields["url"],
                    f"{host} is a host of the app catalogue ({self.app_hosts[host]}); "
                    "a site cannot take it over",
                )
            state = (
                self.choice(fields["state"], f"{where}.state", _SITE_STATES)
                if "state" in fields
                else "up"
            )
            sites.append(Site(url=url, host=host, state=state))
        return tuple(sites)

    def site_host(self, node: yaml.Node, key: str, url: str) -> str:
        """The host name of a site's URL; the lab gives it an address, so it is not one."""
        try:
            parts = urlsplit(url)
            _ = parts.port  # raises for a port that is not a number 0-65535
        except ValueError:
            raise self.fail(key, node, f"{url!r} is not a URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self.fail(key, node, f"{url!r} is not an http:// or https:// URL with a host")
        host = parts.hostname
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if _HOSTNAME.fullmatch(host):
                return host
            raise self.fail(key, node, f"{host!r} is not a valid host name") from None
        raise self.fail(key, node, f"{url!r} names an IP address; a site is named by a host name")

    def targets(self, node: yaml.Node, sites: tuple[Site, ...]) -> tuple[str, ...]:
        urls = {site.url for site in sites}

        def check(item: yaml.Node, key: str, target: str) -> None:
            if _is_url(target):
                if target not in urls:
                    raise self.fail(key, item, f"{target!r} is not one of the sites' URLs")
                return
            app, _, feature = target.partition("/")
            if not app or not feature or "/" in feature:
                raise self.fail(key, item, f"{target!r} is neither a site's URL nor an app/feature")
            known = self.catalogue.apps.get(app)
            if known is None:
                apps = ", ".join(sorted(self.catalogue.apps))
                raise self.fail(key, item, f"the catalogue lacks the app {app!r} (it has: {apps})")
            if feature not in known.features:
                features = ", ".join(known.features)
                raise self.fail(
                    key, item, f"the catalogue lacks {target!r} ({app} has: {features})"
                )

        return self.distinct(node, "targets", check)

    def network_name(self, node: yaml.Node, key: str, networks: tuple[Network, ...]) -> str:
        name = self.text(node, key)
        if all(network.name != name for network in networks):
            known = ", ".join(network.name for network in networks)
            raise self.fail(key, node, f"no network is named {name!r} (the networks: {known})")
        return name

    def among(self, targets: tuple[str, ...], node: yaml.Node, key: str, target: str) -> None:
        """A policy or an expectation may only name what the scenario measures."""
        if target not in targets:
            raise self.fail(key, node, f"{target!r} is not one of the scenario's targets")

    def window(self, fields: dict[str, yaml.Node], key: str) -> Window:
        start = self.moment(fields["from"], f"{key}.from") if "from" in fields else None
        end = self.moment(fields["until"], f"{key}.until") if "until" in fields else None
        if start is not None and end is not None and end <= start:
            raise self.fail(
                f"{key}.until",
                fields["until"],
                f"the window ends before it starts (until {end:%Y-%m-%d %H:%M} "
                f"is not after from {start:%Y-%m-%d %H:%M})",
            )
        return Window(start, end)

    def policy(
        self, node: yaml.Node, key: str, networks: tuple[Network, ...], targets: tuple[str, ...]
    ) -> Policy:
        fields = self.mapping(node, key, _POLICY_KEYS, ("network", "technique", "targets"))
        return Policy(
            network=self.network_name(fields["network"], f"{key}.network", networks),
            technique=self.choice(fields["technique"], f"{key}.technique", TECHNIQUES),
            targets=self.distinct(
                fields["targets"], f"{key}.targets", partial(self.among, targets)
            ),
            window=self.window(fields, key),
        )

    def expectation(
        self,
        node: yaml.Node,
        key: str,
        networks: tuple[Network, ...],
        targets: tuple[str, ...],
        proxy: bool,
    ) -> Expectation:
        fields = self.mapping(node, key, _EXPECT_KEYS, ("network", "target", "verdict"))
        network = self.network_name(fields["network"], f"{key}.network", networks)
        target = self.text(fields["target"], f"{key}.target")
        self.among(targets, fields["target"], f"{key}.target", target)
        verdict = self.choice(fields["verdict"], f"{key}.verdict", _VERDICTS)
        technique = (
            self.text(fields["technique"], f"{key}.technique") if "technique" in fields else None
        )
        via = fields.get("via")
        if via is not None:
            if self.value(via, f"{key}.via") != "proxy":
                raise self.fail(
                    f"{key}.via",
                    via,
                    f"must be proxy, or left out for the direct path, not {_found(via)}",
                )
            if not proxy:
                raise self.fail(
                    f"{key}.via",
                    via,
                    "needs `proxy: true`: without it no run goes through the proxy",
                )
        return Expectation(
            network=network,
            target=target,
            verdict=verdict,
            technique=technique,
            via=None if via is None else "proxy",
            window=self.window(fields, key),
            note=self.text(fields["note"], f"{key}.note") if "note" in fields else None,
        )
