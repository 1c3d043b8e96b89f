"""Scenario files: a good one loads into the dataclasses; every mistake is refused before the lab
builds anything, with the file, the key, the line and the reason."""

from __future__ import annotations

import copy
import re
from datetime import UTC, date, datetime, timedelta
from ipaddress import IPv4Network
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reachwatch.lab.scenario import (
    TECHNIQUES,
    Expectation,
    Network,
    Policy,
    Scenario,
    ScenarioError,
    Site,
    Window,
    load_scenario,
)
from reachwatch.probe.catalogue import load_catalogue

DOCS = Path(__file__).resolve().parents[1] / "docs" / "lab.md"

VALID: dict[str, Any] = {
    "name": "az-2017",
    "country": "AZ",
    "start": datetime(2017, 4, 3, tzinfo=UTC),
    "days": 42,
    "runs_per_day": 2,
    "proxy": True,
    "networks": [
        {"name": "Delta Telecom", "asn": 29049},
        {
            "name": "Azercell",
            "asn": 28707,
            "subnet": "198.18.2.0/24",
            "resolver": "public",
            "hosts": 2,
        },
    ],
    "sites": [
        {"url": "http://news.lab.example/"},
        {"url": "https://Secure.lab.example/login"},
        {"url": "https://gone.lab.example/", "state": "down"},
    ],
    "targets": [
        "http://news.lab.example/",
        "https://Secure.lab.example/login",
        "whatsapp/messaging",
        "whatsapp/calls",
        "skype/calls",
        "telegram/web",
    ],
    "policies": [
        {
            "network": "Delta Telecom",
            "technique": "udp.drop",
            "targets": ["whatsapp/calls", "skype/calls"],
            "from": date(2017, 5, 8),
            "until": date(2017, 5, 22),
        },
        {"network": "Azercell", "technique": "tls.sni-reset", "targets": ["telegram/web"]},
        {
            "network": "Delta Telecom",
            "technique": "http.blockpage",
            "targets": ["http://news.lab.example/"],
            "from": datetime(2017, 4, 17, 12, 0),
        },
    ],
    "expect": [
        {
            "network": "Delta Telecom",
            "target": "whatsapp/calls",
            "verdict": "blocked",
            "technique": "udp.timeout",
            "from": date(2017, 5, 8),
            "until": date(2017, 5, 22),
        },
        {
            "network": "Delta Telecom",
            "target": "whatsapp/calls",
            "via": "proxy",
            "verdict": "ok",
            "note": "the proxy is outside the censor",
        },
    ],
}
DROP = object()  # a change that removes the key or list item


def changed(changes: dict[tuple[str | int, ...], Any]) -> dict[str, Any]:
    """VALID with each path set to its value (an index one past a list's end appends)."""
    doc = copy.deepcopy(VALID)
    for path, value in changes.items():
        parent: Any = doc
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        if value is DROP:
            del parent[last]
        elif isinstance(parent, list) and last == len(parent):
            parent.append(value)
        else:
            parent[last] = value
    return doc


def write(tmp_path: Path, doc: dict[str, Any] | str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return str(info.value)


# a valid scenario


def test_a_full_scenario_loads_into_the_dataclasses(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    scenario = load_scenario(path)
    start = datetime(2017, 4, 3, tzinfo=UTC)
    may8, may22 = datetime(2017, 5, 8, tzinfo=UTC), datetime(2017, 5, 22, tzinfo=UTC)
    assert scenario == Scenario(
        name="az-2017",
        path=path,
        country="AZ",
        start=start,
        days=42,
        runs_per_day=2,
        proxy=True,
        networks=(
            Network("Delta Telecom", 29049, IPv4Network("198.18.1.0/24")),
            Network("Azercell", 28707, IPv4Network("198.18.2.0/24"), "public", 2),
        ),
        sites=(
            Site("http://news.lab.example/", "news.lab.example"),
            Site("https://Secure.lab.example/login", "secure.lab.example"),
            Site("https://gone.lab.example/", "gone.lab.example", "down"),
        ),
        targets=tuple(VALID["targets"]),
        policies=(
            Policy(
                "Delta Telecom", "udp.drop", ("whatsapp/calls", "skype/calls"), Window(may8, may22)
            ),
            Policy("Azercell", "tls.sni-reset", ("telegram/web",)),
            Policy(
                "Delta Telecom",
                "http.blockpage",
                ("http://news.lab.example/",),
                Window(datetime(2017, 4, 17, 12, tzinfo=UTC)),  # naive: UTC
            ),
        ),
        expect=(
            Expectation(
                "Delta Telecom",
                "whatsapp/calls",
                "blocked",
                "udp.timeout",
                None,
                Window(may8, may22),
            ),
            Expectation(
                "Delta Telecom",
                "whatsapp/calls",
                "ok",
                via="proxy",
                note="the proxy is outside the censor",
            ),
        ),
    )
    assert scenario.apps() == ["whatsapp", "skype", "telegram"]
    assert scenario.urls() == ["http://news.lab.example/", "https://Secure.lab.example/login"]
    assert scenario.network("Azercell").resolver == "public"


def test_the_schedule_spaces_the_runs_evenly_from_the_start(tmp_path: Path) -> None:
    times = load_scenario(write(tmp_path, VALID)).times()
    start = datetime(2017, 4, 3, tzinfo=UTC)
    assert len(times) == 42 * 2
    assert times[0] == start
    assert {later - earlier for earlier, later in pairwise(times)} == {timedelta(hours=12)}
    assert times[-1] == start + timedelta(days=42) - timedelta(hours=12)


def test_an_uneven_schedule_does_not_drift(tmp_path: Path) -> None:
    times = load_scenario(write(tmp_path, changed({("runs_per_day",): 7}))).times()
    assert len(times) == 42 * 7
    assert [times[7 * day] for day in range(42)] == [
        datetime(2017, 4, 3, tzinfo=UTC) + timedelta(days=day) for day in range(42)
    ]


def test_a_window_includes_its_start_and_excludes_its_end() -> None:
    may8, may22 = datetime(2017, 5, 8, tzinfo=UTC), datetime(2017, 5, 22, tzinfo=UTC)
    window = Window(may8, may22)
    assert window.active(may8)
    assert not window.active(may8 - timedelta(microseconds=1))
    assert window.active(may22 - timedelta(microseconds=1))
    assert not window.active(may22)
    assert Window(start=may8).active(datetime(2099, 1, 1, tzinfo=UTC))
    assert Window(end=may22).active(datetime(1999, 1, 1, tzinfo=UTC))
    assert Window().active(may22)


def test_only_the_required_keys_give_the_defaults(tmp_path: Path) -> None:
    minimal = {
        "name": "minimal",
        "country": "IR",
        "start": date(2024, 1, 1),
        "days": 1,
        "networks": [{"name": "A", "asn": 64500}, {"name": "B", "asn": 64501}],
        "targets": ["signal/messaging"],
    }
    scenario = load_scenario(write(tmp_path, minimal))
    assert scenario.start == datetime(2024, 1, 1, tzinfo=UTC)
    assert (scenario.runs_per_day, scenario.proxy) == (1, False)
    assert (scenario.sites, scenario.policies, scenario.expect) == ((), (), ())
    assert scenario.networks == (
        Network("A", 64500, IPv4Network("198.18.1.0/24"), "isp", 1),
        Network("B", 64501, IPv4Network("198.18.2.0/24"), "isp", 1),
    )
    assert scenario.times() == [datetime(2024, 1, 1, tzinfo=UTC)]


@pytest.mark.parametrize(
    ("written", "moment"),
    [
        ("2017-04-03", datetime(2017, 4, 3, tzinfo=UTC)),
        ("2017-04-03 10:30:00", datetime(2017, 4, 3, 10, 30, tzinfo=UTC)),
        ("2017-04-03T03:00:00+03:00", datetime(2017, 4, 3, tzinfo=UTC)),
        ("'2017-04-03T03:00:00+03:00'", datetime(2017, 4, 3, tzinfo=UTC)),
        ('"2017-04-03"', datetime(2017, 4, 3, tzinfo=UTC)),
    ],
)
def test_dates_and_times_are_read_as_utc(tmp_path: Path, written: str, moment: datetime) -> None:
    text = yaml.safe_dump(changed({("start",): "START"}), sort_keys=False)
    scenario = load_scenario(write(tmp_path, text.replace("START", written)))
    assert scenario.start == moment
    assert scenario.start.utcoffset() == timedelta(0)


def test_an_unquoted_norway_is_a_country_not_false(tmp_path: Path) -> None:
    text = yaml.safe_dump(VALID, sort_keys=False).replace("country: AZ", "country: NO")
    assert load_scenario(write(tmp_path, text)).country == "NO"


def test_a_slash_29_subnet_is_small_enough(tmp_path: Path) -> None:
    doc = changed({("networks", 1, "subnet"): "198.18.2.8/29", ("networks", 1, "hosts"): 4})
    assert load_scenario(write(tmp_path, doc)).networks[1].subnet == IPv4Network("198.18.2.8/29")


def test_the_documented_example_loads(tmp_path: Path) -> None:
    example = re.search(r"## Scenario files.*?```yaml\n(.*?)```", DOCS.read_text(), re.S)
    assert example, "docs/lab.md has a yaml example under 'Scenario files'"
    scenario = load_scenario(write(tmp_path, example.group(1)))
    assert scenario.name == "az-2017"
    assert scenario.policies and scenario.expect


def test_asking_for_a_network_the_scenario_lacks_names_the_ones_it_has(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, VALID))
    with pytest.raises(ScenarioError, match=r"no network named 'Bakcell' \(it has: Delta Telecom"):
        scenario.network("Bakcell")


def test_app_targets_are_checked_against_the_catalogue_given(tmp_path: Path) -> None:
    apps = tmp_path / "apps.yaml"
    apps.write_text(
        "version: 1\napps:\n  chat:\n    networks: [64500]\n    features:\n      messaging:\n"
        "        rule: any\n        endpoints:\n"
        "          - {host: a.chat.example, port: 443, protocol: tcp, source: tests}\n"
    )
    catalogue = load_catalogue(apps)
    doc = {k: v for k, v in VALID.items() if k not in ("policies", "expect")}
    path = write(tmp_path, doc | {"targets": ["chat/messaging"]})
    assert load_scenario(path, catalogue).apps() == ["chat"]
    path = write(tmp_path, doc | {"targets": ["whatsapp/messaging"]})
    with pytest.raises(
        ScenarioError, match=r"the catalogue lacks the app 'whatsapp' \(it has: chat"
    ):
        load_scenario(path, catalogue)


# mistakes in the file as a whole


@pytest.mark.parametrize(
    ("text", "start", "reason"),
    [
        ("name: [unclosed\n", ": line 2: ", "not valid YAML"),
        ("name: a\n---\nname: b\n", ": line 2: ", "not valid YAML"),
        ("", ": ", "the file is empty"),
        ("# nothing but a comment\n", ": ", "the file is empty"),
        ("- a\n- b\n", ": line 1: ", "the scenario must be a mapping, not a list"),
        ("just words\n", ": line 1: ", "the scenario must be a mapping, not 'just words'"),
        ("name: \x07\n", ": ", "not valid YAML: unacceptable character #x0007"),
        ("name: " + "[" * 5000 + "]" * 5000, ": ", "not valid YAML: nested too deeply"),
    ],
)
def test_a_file_that_is_not_a_scenario_is_refused(
    tmp_path: Path, text: str, start: str, reason: str
) -> None:
    path = write(tmp_path, text)
    message = refusal(path)
    assert message.startswith(f"{path}{start}"), message
    assert reason in message


def test_a_file_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path / "missing.yaml").startswith(
        f"{tmp_path / 'missing.yaml'}: cannot read"
    )
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("name: Bak\xfc\n".encode("latin-1"))
    assert refusal(latin1) == f"{latin1}: not UTF-8 text"


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        ("start: 2017-04-03 00:00:00+00:00", "start: 2017-02-30", "start", "day is out of range"),
        ("days: 42", "days: !!int nope", "days", "cannot be read: invalid literal for int()"),
        ("proxy: true", "proxy: !!bool maybe", "proxy", "cannot be read: KeyError('maybe')"),
        ("name: az-2017", "name: !!timestamp soon", "name", "cannot be read"),
        ("name: az-2017", "name: !!python/name:os.system ''", "name", "could not determine"),
        ("days: 42", "days: 42\ndays: 43", "days", "given twice"),
        ("  asn: 29049", "  <<: {asn: 29049}", "networks[0]", "`<<` merge keys are not supported"),
    ],
)
def test_a_value_yaml_cannot_construct_is_refused(
    tmp_path: Path, old: str, new: str, key: str, reason: str
) -> None:
    text = yaml.safe_dump(VALID, sort_keys=False)
    assert old in text
    path = write(tmp_path, text.replace(old, new))
    message = refusal(path)
    assert message.startswith(f"{path}: {key} (line "), message
    assert reason in message


def test_the_line_is_the_line_of_the_mistake(tmp_path: Path) -> None:
    text = """\
name: lines
country: AZ
start: 2024-01-01
days: 1
networks:
  - name: A
    asn: 64500
    subnet: 198.18.1.1/24
targets: [signal/messaging]
"""
    path = write(tmp_path, text)
    assert refusal(path).startswith(f"{path}: networks[0].subnet (line 8): must be an IPv4 network")


# mistakes in one key: the message names the file, the key (and its line) and the reason

TOP_KEYS = (
    "name, country, start, days, runs_per_day, runs_per_hour, proxy, networks, sites, targets, "
    "policies, expect"
)
CASES = [
    # the top level
    ({("colour",): "red"}, "colour", f"unknown key (allowed: {TOP_KEYS})"),
    *[
        ({(key,): DROP}, key, "required, but missing")
        for key in ("name", "country", "start", "days", "networks", "targets")
    ],
    ({("name",): ""}, "name", "must be a non-empty text, not ''"),
    ({("name",): ["az"]}, "name", "must be a non-empty text, not a list"),
    ({("country",): "Azerbaijan"}, "country", "must be two upper-case letters, not 'Azerbaijan'"),
    ({("country",): "az"}, "country", "must be two upper-case letters"),
    ({("country",): 31}, "country", "must be two upper-case letters, not '31'"),
    ({("start",): "soon"}, "start", "must be a date or a date and time"),
    ({("start",): 2017}, "start", "must be a date or a date and time"),
    ({("start",): date(9999, 12, 1)}, "days", "the schedule runs past the year 9999"),
    ({("days",): 0}, "days", "must be a whole number 1-366, not '0'"),
    ({("days",): 367}, "days", "must be a whole number 1-366"),
    ({("days",): "42"}, "days", "must be a whole number 1-366, not '42'"),
    ({("days",): True}, "days", "must be a whole number 1-366, not 'true'"),
    ({("days",): 4.5}, "days", "must be a whole number 1-366"),
    ({("runs_per_day",): 0}, "runs_per_day", "must be a whole number 1-24"),
    ({("runs_per_day",): 25}, "runs_per_day", "must be a whole number 1-24"),
    ({("runs_per_day",): False}, "runs_per_day", "must be a whole number 1-24"),
    ({("proxy",): "yes"}, "proxy", "must be true or false, not 'yes'"),
    ({("proxy",): 1}, "proxy", "must be true or false"),
    # networks
    ({("networks",): []}, "networks", "must list at least one"),
    ({("networks",): {"name": "A"}}, "networks", "must be a list, not a mapping"),
    ({("networks", 0): "Delta"}, "networks[0]", "must be a mapping, not 'Delta'"),
    (
        {("networks", 0, "subnt"): "198.18.1.0/24"},
        "networks[0].subnt",
        "unknown key (allowed: name, asn, subnet, resolver, hosts)",
    ),
    ({("networks", 1, "asn"): DROP}, "networks[1].asn", "required, but missing"),
    (
        {("networks", 1, "name"): "Delta Telecom"},
        "networks[1].name",
        "another network is named 'Delta Telecom'",
    ),
    ({("networks", 1, "asn"): 0}, "networks[1].asn", "must be a whole number 1-4294967294"),
    ({("networks", 1, "asn"): 2**32 - 1}, "networks[1].asn", "must be a whole number 1-4294967294"),
    ({("networks", 1, "asn"): True}, "networks[1].asn", "must be a whole number"),
    ({("networks", 1, "asn"): "AS28707"}, "networks[1].asn", "must be a whole number"),
    ({("networks", 1, "hosts"): 0}, "networks[1].hosts", "must be a whole number 1-4"),
    ({("networks", 1, "hosts"): 5}, "networks[1].hosts", "must be a whole number 1-4"),
    ({("networks", 1, "hosts"): True}, "networks[1].hosts", "must be a whole number 1-4"),
    ({("networks", 1, "resolver"): "google"}, "networks[1].resolver", "must be one of isp, public"),
    ({("networks", 1, "subnet"): "198.18.2.1/24"}, "networks[1].subnet", "must be an IPv4 network"),
    ({("networks", 1, "subnet"): "2001:db8::/64"}, "networks[1].subnet", "must be an IPv4 network"),
    ({("networks", 1, "subnet"): 3323068928}, "networks[1].subnet", "must be an IPv4 network"),
    ({("networks", 1, "subnet"): "198.18.2.0/30"}, "networks[1].subnet", "is longer than /29"),
    (
        {("networks", 1, "subnet"): "10.0.0.0/24"},
        "networks[1].subnet",
        "10.0.0.0/24 is outside the lab's range 198.18.0.0/15",
    ),
    (
        {("networks", 1, "subnet"): "198.18.0.128/25"},
        "networks[1].subnet",
        "198.18.0.128/25 overlaps 198.18.0.0/24, reserved for the lab's DNS, test helper and proxy",
    ),
    (
        {("networks", 1, "subnet"): "198.18.254.0/29"},
        "networks[1].subnet",
        "overlaps 198.18.254.0/24, reserved for the censors' uplinks",
    ),
    (
        {("networks", 1, "subnet"): "198.18.0.0/15"},
        "networks[1].subnet",
        "overlaps 198.18.0.0/24",
    ),
    (
        {("networks", 1, "subnet"): "198.19.7.0/24"},
        "networks[1].subnet",
        "overlaps 198.19.0.0/16, reserved for the servers of the lab's Internet",
    ),
    (  # a given subnet against the first network's default 198.18.1.0/24
        {("networks", 1, "subnet"): "198.18.1.128/25"},
        "networks[1].subnet",
        "198.18.1.128/25 overlaps 198.18.1.0/24, the subnet of 'Delta Telecom'",
    ),
    (  # the third network's default 198.18.3.0/24 against a given one
        {
            ("networks", 1, "subnet"): "198.18.3.0/24",
            ("networks", 2): {"name": "Bakcell", "asn": 25289},
        },
        "networks[2].subnet",
        "the default subnet 198.18.3.0/24 overlaps 198.18.3.0/24, the subnet of 'Azercell'; "
        "give this network a `subnet`",
    ),
    # sites
    ({("sites", 0, "url"): DROP}, "sites[0].url", "required, but missing"),
    ({("sites", 0, "colour"): "red"}, "sites[0].colour", "unknown key (allowed: url, state)"),
    (
        {("sites", 2, "url"): "ftp://gone.lab.example/"},
        "sites[2].url",
        "'ftp://gone.lab.example/' is not an http:// or https:// URL with a host",
    ),
    ({("sites", 2, "url"): "http:///gone"}, "sites[2].url", "not an http:// or https:// URL"),
    ({("sites", 2, "url"): "gone.lab.example"}, "sites[2].url", "not an http:// or https:// URL"),
    ({("sites", 2, "url"): "http://198.19.0.9/"}, "sites[2].url", "names an IP address"),
    ({("sites", 2, "url"): "http://[2001:db8::1]/"}, "sites[2].url", "names an IP address"),
    ({("sites", 2, "url"): "http://gone_lab.example/"}, "sites[2].url", "not a valid host name"),
    ({("sites", 2, "url"): "http://gone.lab.example:99999/"}, "sites[2].url", "is not a URL"),
    (
        {("sites", 2, "url"): "https://NEWS.lab.example/other"},
        "sites[2].url",
        "another site has the host news.lab.example",
    ),
    ({("sites", 2, "state"): "gone"}, "sites[2].state", "must be one of up, down, not 'gone'"),
    (
        {("sites", 3): {"url": "https://web.whatsapp.com/"}},
        "sites[3].url",
        "web.whatsapp.com is a host of the app catalogue (whatsapp)",
    ),
    # targets
    ({("targets",): []}, "targets", "must list at least one"),
    ({("targets",): "whatsapp/calls"}, "targets", "must be a list, not 'whatsapp/calls'"),
    ({("targets", 6): "whatsapp/calls"}, "targets[6]", "'whatsapp/calls' is listed twice"),
    ({("targets", 6): 42}, "targets[6]", "must be a non-empty text, not '42'"),
    (
        {("targets", 6): "http://other.lab.example/"},
        "targets[6]",
        "'http://other.lab.example/' is not one of the sites' URLs",
    ),
    (
        {("targets", 6): "https://news.lab.example/"},
        "targets[6]",
        "is not one of the sites' URLs",
    ),
    (
        {("targets", 6): "whatsapp/fax"},
        "targets[6]",
        "the catalogue lacks 'whatsapp/fax' (whatsapp has: messaging, registration, web, media, "
        "calls)",
    ),
    ({("targets", 6): "myspace/web"}, "targets[6]", "the catalogue lacks the app 'myspace'"),
    ({("targets", 6): "whatsapp"}, "targets[6]", "is neither a site's URL nor an app/feature"),
    ({("targets", 6): "whatsapp/web/x"}, "targets[6]", "neither a site's URL nor an app/feature"),
    # policies
    ({("policies",): {}}, "policies", "must be a list, not a mapping"),
    ({("policies", 0, "technique"): DROP}, "policies[0].technique", "required, but missing"),
    (
        {("policies", 0, "window"): {"from": date(2017, 5, 8)}},
        "policies[0].window",
        "unknown key (allowed: network, technique, targets, from, until)",
    ),
    (
        {("policies", 0, "network"): "Bakcell"},
        "policies[0].network",
        "no network is named 'Bakcell' (the networks: Delta Telecom, Azercell)",
    ),
    (
        {("policies", 0, "technique"): "dns.poison"},
        "policies[0].technique",
        f"must be one of {', '.join(TECHNIQUES)}, not 'dns.poison'",
    ),
    ({("policies", 0, "targets"): []}, "policies[0].targets", "must list at least one"),
    (
        {("policies", 0, "targets", 2): "whatsapp/calls"},
        "policies[0].targets[2]",
        "'whatsapp/calls' is listed twice",
    ),
    (
        {("policies", 0, "targets", 2): "whatsapp/web"},
        "policies[0].targets[2]",
        "'whatsapp/web' is not one of the scenario's targets",
    ),
    (
        {("policies", 0, "until"): date(2017, 5, 1)},
        "policies[0].until",
        "the window ends before it starts",
    ),
    (
        {("policies", 0, "until"): date(2017, 5, 8)},
        "policies[0].until",
        "the window ends before it starts",
    ),
    ({("policies", 1, "from"): "next week"}, "policies[1].from", "must be a date"),
    # expectations
    ({("expect", 0, "verdict"): DROP}, "expect[0].verdict", "required, but missing"),
    ({("expect", 0, "tecnique"): "dns"}, "expect[0].tecnique", "unknown key (allowed: network,"),
    ({("expect", 0, "network"): "Bakcell"}, "expect[0].network", "no network is named 'Bakcell'"),
    (
        {("expect", 0, "target"): "whatsapp/web"},
        "expect[0].target",
        "'whatsapp/web' is not one of the scenario's targets",
    ),
    (
        {("expect", 0, "verdict"): "censored"},
        "expect[0].verdict",
        "must be one of ok, blocked, down, error, not 'censored'",
    ),
    ({("expect", 0, "technique"): 5}, "expect[0].technique", "must be a non-empty text"),
    ({("expect", 1, "note"): ["a"]}, "expect[1].note", "must be a non-empty text, not a list"),
    (
        {("expect", 1, "via"): "tor"},
        "expect[1].via",
        "must be proxy, or left out for the direct path, not 'tor'",
    ),
    ({("proxy",): False}, "expect[1].via", "needs `proxy: true`"),
    ({("proxy",): DROP}, "expect[1].via", "needs `proxy: true`"),
    (
        {("expect", 0, "from"): datetime(2017, 5, 22, 1)},
        "expect[0].until",
        "the window ends before it starts",
    ),
]


@pytest.mark.parametrize(
    ("changes", "key", "reason"),
    [pytest.param(*case, id=f"{case[1]}: {case[2]}"[:70]) for case in CASES],
)
def test_a_mistake_is_refused_with_file_key_line_and_reason(
    tmp_path: Path, changes: dict[tuple[str | int, ...], Any], key: str, reason: str
) -> None:
    path = write(tmp_path, changed(changes))
    message = refusal(path)
    assert message.startswith(f"{path}: {key} (line "), message
    assert reason in message


# anything else: loaded or refused, never a crash

_KEYS = ["name", "asn", "subnet", "url", "state", "network", "technique", "targets", "from"]
_MEANINGFUL = [
    "Delta Telecom",
    "Azercell",
    "whatsapp/calls",
    "telegram/web",
    "http://news.lab.example/",
    "udp.drop",
    "proxy",
    "public",
    "down",
    "blocked",
    "198.18.9.0/24",
    "198.18.1.0/24",
    "NO",
    "2017-05-08",
]
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(st.characters(codec="utf-8"), max_size=20),
    st.dates(),
    st.datetimes(timezones=st.none() | st.just(UTC)),
    st.sampled_from(_MEANINGFUL),
    st.integers(min_value=-1, max_value=400),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the document, the root included."""
    places = [prefix]
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    )
    for step, value in items:
        places.extend(_paths(value, (*prefix, step)))
    return places


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_mutation_of_a_scenario_loads_or_is_refused(
    tmp_path: Path, data: st.DataObject
) -> None:
    doc: Any = copy.deepcopy(VALID)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        place = data.draw(st.sampled_from(_paths(doc)))
        if not place:
            doc = data.draw(_VALUES)
            continue
        *parents, last = place
        parent = doc
        for step in parents:
            parent = parent[step]
        if data.draw(st.booleans()):
            del parent[last]
        else:
            parent[last] = data.draw(_VALUES)
    path = write(tmp_path, yaml.safe_dump(doc, sort_keys=False))
    try:
        load_scenario(path)
    except ScenarioError as exc:
        assert str(exc).startswith(f"{path}: ")


def test_two_networks_with_one_as_number_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: x\ncountry: AZ\nstart: 2017-05-01\ndays: 1\n"
        "networks:\n  - {name: A, asn: 29049}\n  - {name: B, asn: 29049}\n"
        "targets: [whatsapp/calls]\n"
    )
    with pytest.raises(
        ScenarioError, match=r"s\.yaml: networks\[1\]\.asn .*another network has AS29049"
    ):
        load_scenario(path)


def test_runs_per_hour_is_a_schedule_too(tmp_path: Path) -> None:
    path = tmp_path / "hourly.yaml"
    head = "name: x\ncountry: AZ\nstart: 2017-05-01\ndays: 1\n"
    rest = "networks:\n  - {name: A, asn: 29049}\ntargets: [whatsapp/calls]\n"
    path.write_text(head + "runs_per_hour: 4\n" + rest)
    times = load_scenario(path).times()
    assert len(times) == 96 and times[1] - times[0] == timedelta(minutes=15)
    path.write_text(head + "runs_per_hour: 4\nruns_per_day: 2\n" + rest)
    with pytest.raises(ScenarioError, match=r"hourly\.yaml: runs_per_hour .*not both"):
        load_scenario(path)
