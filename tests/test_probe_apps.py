"""The catalogue-driven app experiment against loopback servers: every feature judged by its own
rule, so "web works, calls blocked" comes out as exactly that."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from reachwatch.model import WhatsAppKeys, parse_measurement
from reachwatch.pipeline import verdicts_of
from reachwatch.probe import NetConfig
from reachwatch.probe._geo import IPDatabase
from reachwatch.probe.apps import measure_app
from reachwatch.probe.catalogue import CatalogueError, load_catalogue
from reachwatch.probe.web_connectivity import ProbeContext

from .conftest import dumps, write_catalogue
from .netlab import (
    LOOPBACK,
    LabCA,
    dns_server,
    quic_server,
    stun_server,
    tls_censor,
    web_server,
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _catalogue(tmp_path: Path, web: list[tuple[str, int]], calls: list[int], web_rule: str) -> Path:
    return write_catalogue(tmp_path / "apps.yaml", {"teams": {
        "web": (web_rule, [{"host": "teams.test", "port": port, "protocol": proto}
                           for proto, port in web]),
        "calls": ("any", [{"ip": LOOPBACK, "port": port, "protocol": "udp-stun"}
                          for port in calls]),
    }})  # fmt: skip


def _run(tmp_path: Path, stun_modes: list[str], web: list[str], web_rule: str = "each") -> Any:
    """Measure the lab app: `web` lists "https", "tls" or "closed" endpoints; `stun_modes` one
    STUN server per mode. Returns the measurement and {feature: (verdict, technique)}."""
    ca = LabCA(tmp_path)

    async def go() -> dict[str, Any]:
        async with (
            web_server(tls=ca.server_context("teams.test")) as site,
            dns_server({"teams.test": [LOOPBACK]}) as resolver,
            stun_server(stun_modes[0]) as first,
            stun_server(stun_modes[-1]) as last,
        ):
            ports = {"https": site, "tls": site, "closed": _closed_port()}
            endpoints = [("tcp" if kind == "closed" else kind, ports[kind]) for kind in web]
            stun = [first, last][: len(stun_modes)]
            catalogue = load_catalogue(_catalogue(tmp_path, endpoints, stun, web_rule))
            net = NetConfig(resolver=resolver, ca_file=ca.ca_file, timeout=1.6)
            return await measure_app("teams", ProbeContext(net=net), catalogue)

    measurement = asyncio.run(go())
    verdicts = verdicts_of(parse_measurement(dumps(measurement)))
    return measurement, {v.target: (v.verdict, v.technique) for v in verdicts}


def test_every_feature_reached(tmp_path: Path) -> None:
    measurement, verdicts = _run(tmp_path, ["answer"], ["https"])
    assert verdicts == {"teams/web": ("ok", None), "teams/calls": ("ok", None)}
    keys = measurement["test_keys"]
    assert measurement["test_name"] == "teams"
    assert keys["x_reachwatch"]["calls"]["verdict"] == "ok"  # the probe's own reading agrees
    assert [q["hostname"] for q in keys["queries"]] == ["teams.test"]
    assert keys["requests"][0]["response"]["code"] == 200
    web = keys["x_features"]["web"]["endpoints"][0]
    assert web["transactions"] and web["protocol"] == "https"
    assert measurement["probe_ip"] == "127.0.0.1"  # never the probe's own address


def test_calls_blocked_while_web_works(tmp_path: Path) -> None:
    _, verdicts = _run(tmp_path, ["silent"], ["https"])
    assert verdicts == {"teams/web": ("ok", None), "teams/calls": ("blocked", "udp.timeout")}


def test_any_rule_needs_one_relay(tmp_path: Path) -> None:
    _, verdicts = _run(tmp_path, ["silent", "answer"], ["tls"])
    assert verdicts["teams/calls"] == ("ok", None)
    assert verdicts["teams/web"] == ("ok", None)


def test_each_rule_needs_every_endpoint(tmp_path: Path) -> None:
    _, each = _run(tmp_path, ["answer"], ["https", "closed"])
    assert each["teams/web"] == ("blocked", "tcp.refused")
    _, any_ = _run(tmp_path, ["answer"], ["https", "closed"], web_rule="any")
    assert any_["teams/web"] == ("ok", None)


def test_unknown_app_lists_the_known_ones() -> None:
    with pytest.raises(CatalogueError, match="whatsapp"):
        asyncio.run(measure_app("skipe", ProbeContext()))


def test_quic_reached_dropped_and_impersonated(tmp_path: Path) -> None:
    """A QUIC endpoint: reached; dropped (UDP silence, while TCP would work); answered by a
    server with another name's certificate."""
    ca = LabCA(tmp_path)

    async def go() -> dict[str, Any]:
        async with (
            quic_server(ca, "teams.test") as real,
            quic_server(ca, "impostor.test") as impostor,
            stun_server("silent") as dropped,
            dns_server({"teams.test": [LOOPBACK]}) as resolver,
        ):
            features = {
                name: ("each", [{"host": "teams.test", "port": port, "protocol": "quic"}])
                for name, port in (("web", real), ("calls", dropped), ("media", impostor))
            }
            catalogue = load_catalogue(
                write_catalogue(tmp_path / "apps.yaml", {"teams": features})
            )  # fmt: skip
            net = NetConfig(resolver=resolver, ca_file=ca.ca_file, timeout=1.5)
            return await measure_app("teams", ProbeContext(net=net), catalogue)

    measurement = asyncio.run(go())
    verdicts = {v.target: (v.verdict, v.technique)
                for v in verdicts_of(parse_measurement(dumps(measurement)))}  # fmt: skip
    assert verdicts == {
        "teams/web": ("ok", None),
        "teams/calls": ("blocked", "udp.timeout"),
        "teams/media": ("blocked", "tls.mitm"),
    }
    handshakes = measurement["test_keys"]["quic_handshakes"]
    assert [h["negotiated_protocol"] for h in handshakes] == ["h3", None, None]
    assert handshakes[0]["peer_certificates"] and handshakes[0]["network"] == "udp"
    assert handshakes[2]["failure"] == "ssl_invalid_hostname"


def test_apps_ooni_has_a_test_for_get_oonis_summary_keys(tmp_path: Path) -> None:
    """A reachwatch whatsapp measurement carries OONI's whatsapp keys (read by OONI's tools
    and by our model's WhatsAppKeys): one chat endpoint refused of two, registration and web
    reached, then web refused."""
    ca = LabCA(tmp_path)
    closed = _closed_port()

    async def go(web_port: int | None) -> dict[str, Any]:
        async with (
            web_server(tls=ca.server_context("wa.test")) as site,
            dns_server({"wa.test": [LOOPBACK]}) as resolver,
        ):
            https = "https"
            features = {
                "messaging": ("any", [{"host": "wa.test", "port": p, "protocol": "tcp"}
                                      for p in (site, closed)]),
                "registration": ("each", [{"host": "wa.test", "port": site, "protocol": https}]),
                "web": ("each", [{"host": "wa.test", "port": web_port or site, "protocol": https}]),
            }  # fmt: skip
            net = NetConfig(resolver=resolver, ca_file=ca.ca_file, timeout=1.5)
            catalogue = load_catalogue(
                write_catalogue(tmp_path / "apps.yaml", {"whatsapp": features})
            )
            return await measure_app("whatsapp", ProbeContext(net=net), catalogue)

    keys = asyncio.run(go(None))["test_keys"]
    assert keys["whatsapp_endpoints_status"] == "ok"  # one chat endpoint is enough
    assert keys["whatsapp_endpoints_blocked"] == [f"wa.test:{closed}"]
    assert (keys["registration_server_status"], keys["whatsapp_web_status"]) == ("ok", "ok")
    measurement = asyncio.run(go(closed))
    keys = measurement["test_keys"]
    assert (keys["whatsapp_web_status"], keys["whatsapp_web_failure"]) == (
        "blocked", "connection_refused",
    )  # fmt: skip
    parsed = parse_measurement(dumps(measurement))
    assert isinstance(parsed.keys, WhatsAppKeys)
    assert parsed.keys.whatsapp_web_failure == "connection_refused"
    verdicts = {v.target: (v.verdict, v.technique) for v in verdicts_of(parsed)}
    assert verdicts["whatsapp/web"] == ("blocked", "tcp.refused")
    assert verdicts["whatsapp/messaging"] == ("ok", None)


def test_an_sni_filter_resets_one_app_and_spares_another_on_the_same_server(
    tmp_path: Path,
) -> None:
    ca = LabCA(tmp_path)

    async def go() -> list[dict[str, Any]]:
        async with (
            web_server(tls=ca.server_context("teams.test", "viber.test")) as site,
            tls_censor(site, "reset", only_for=LOOPBACK, sni=b"teams.test") as censor,
            dns_server({"teams.test": [LOOPBACK], "viber.test": [LOOPBACK]}) as resolver,
        ):
            apps = {app: {"web": ("each", [{"host": f"{app}.test", "port": censor,
                                            "protocol": "https"}])}
                    for app in ("teams", "viber")}  # fmt: skip
            catalogue = load_catalogue(write_catalogue(tmp_path / "apps.yaml", apps))
            context = ProbeContext(net=NetConfig(resolver=resolver, ca_file=ca.ca_file,
                                                 timeout=1.5))  # fmt: skip
            return [await measure_app(app, context, catalogue) for app in ("teams", "viber")]

    found = {
        v.target: (v.verdict, v.technique)
        for m in asyncio.run(go())
        for v in verdicts_of(parse_measurement(dumps(m)))
    }
    assert found == {"teams/web": ("blocked", "tls.reset"), "viber/web": ("ok", None)}


def _pin(pem: bytes) -> str:
    leaf = x509.load_pem_x509_certificate(pem)
    spki = leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


def test_pinned_endpoints_are_told_by_their_key(tmp_path: Path) -> None:
    """An address has no name to check: its pin tells the real server (ok) from another one
    (an interception: tls.mitm), whichever CA signed it."""
    ca = LabCA(tmp_path)
    real = ca.ca.issue_cert("real.test")
    other = ca.ca.issue_cert("other.test")

    async def go(pin_of: Any) -> dict[str, Any]:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        real.configure_cert(context)
        async with web_server(tls=context) as site:
            pin = _pin(pin_of.cert_chain_pems[0].bytes())
            endpoint = {"ip": LOOPBACK, "port": site, "protocol": "tls", "pins": [pin]}
            apps = {"telegram": {"messaging": ("any", [endpoint])}}
            catalogue = load_catalogue(write_catalogue(tmp_path / "apps.yaml", apps))
            return await measure_app("telegram", ProbeContext(), catalogue)

    def verdict(measurement: dict[str, Any]) -> tuple[str, str | None]:
        (only,) = verdicts_of(parse_measurement(dumps(measurement)))
        return only.verdict, only.technique

    assert verdict(asyncio.run(go(real))) == ("ok", None)
    impostor = asyncio.run(go(other))
    assert verdict(impostor) == ("blocked", "tls.mitm")
    assert impostor["test_keys"]["tls_handshakes"][0]["x_pin_mismatch"] is True
    # OONI's meaning: the connection worked (not TCP-blocked), nothing good came back
    assert impostor["test_keys"]["telegram_tcp_blocking"] is False
    assert impostor["test_keys"]["telegram_http_blocking"] is True


def test_an_http_endpoint_must_answer_not_just_accept(tmp_path: Path) -> None:
    """`http` with `method: POST`, as OONI's telegram test reaches the data centres: a server
    that answers is reached; one that accepts the connection and resets the request is
    blocked at the HTTP stage (a connect-only test would have said ok)."""

    async def go(mode: str) -> dict[str, Any]:
        async with web_server(mode) as server:
            endpoint = {"ip": LOOPBACK, "port": server, "protocol": "http", "method": "POST"}
            apps = {"telegram": {"messaging": ("any", [endpoint])}}
            catalogue = load_catalogue(write_catalogue(tmp_path / "apps.yaml", apps))
            return await measure_app("telegram", ProbeContext(net=NetConfig(timeout=1.5)),
                                     catalogue)  # fmt: skip

    answered = asyncio.run(go("page"))
    assert answered["test_keys"]["requests"][0]["request"]["method"] == "POST"
    (verdict,) = verdicts_of(parse_measurement(dumps(answered)))
    assert (verdict.verdict, verdict.technique) == ("ok", None)
    reset = asyncio.run(go("reset"))
    (verdict,) = verdicts_of(parse_measurement(dumps(reset)))
    assert (verdict.verdict, verdict.technique) == ("blocked", "http.reset")
    keys = reset["test_keys"]
    assert keys["telegram_tcp_blocking"] is False and keys["telegram_http_blocking"] is True


def test_answers_outside_the_apps_networks_are_not_the_app(tmp_path: Path) -> None:
    """With an IP database that places the lab's address in AS64500: an app whose networks
    exclude it gets dns.inconsistent though the connection worked; one that includes it, ok."""
    for family, rows in (("asn", "2130706432,2147483647,64500,Lab Net\n"),
                         ("geo-whois-asn-country", "2130706432,2147483647,ZZ\n")):  # fmt: skip
        (tmp_path / "ipdb" / family).mkdir(parents=True)
        (tmp_path / "ipdb" / family / f"{family}-ipv4-num.csv").write_text(rows)
        (tmp_path / "ipdb" / family / f"{family}-ipv6-num.csv").write_text("")
    ipdb = IPDatabase(tmp_path / "ipdb")

    async def go(networks: list[int]) -> dict[str, Any]:
        async with web_server() as site, dns_server({"app.test": [LOOPBACK]}) as resolver:
            endpoint = {"host": "app.test", "port": site, "protocol": "tcp"}
            apps = {"zoom": {"web": ("each", [endpoint])}}
            path = write_catalogue(tmp_path / "apps.yaml", apps, {"zoom": networks})
            net = NetConfig(resolver=resolver, timeout=1.5)
            return await measure_app("zoom", ProbeContext(net=net), load_catalogue(path),
                                     ipdb=ipdb)  # fmt: skip

    elsewhere = asyncio.run(go([32934]))
    assert elsewhere["test_keys"]["queries"][0]["answers"][0]["asn"] == 64500
    (verdict,) = verdicts_of(parse_measurement(dumps(elsewhere)))
    assert (verdict.verdict, verdict.technique) == ("blocked", "dns.inconsistent")
    (verdict,) = verdicts_of(parse_measurement(dumps(asyncio.run(go([64500])))))
    assert verdict.verdict == "ok"


def test_a_bogon_no_network_announces_is_dns_bogon(tmp_path: Path) -> None:
    """An answer in private or reserved space that the IP database places in no network is
    a lie (a censor's bogon), however the connection to it went; the same address inside a
    network the database knows (a lab's) is judged as any other."""

    def database(rows: str) -> IPDatabase:
        root = tmp_path / f"ipdb{len(rows)}"
        for family in ("asn", "geo-whois-asn-country"):
            (root / family).mkdir(parents=True)
            (root / family / f"{family}-ipv4-num.csv").write_text(rows)
            (root / family / f"{family}-ipv6-num.csv").write_text("")
        return IPDatabase(root)

    async def go(ipdb: IPDatabase) -> dict[str, Any]:
        async with web_server() as site, dns_server({"app.test": [LOOPBACK]}) as resolver:
            endpoint = {"host": "app.test", "port": site, "protocol": "tcp"}
            path = write_catalogue(tmp_path / "apps.yaml", {"viber": {"web": ("each", [endpoint])}})
            net = NetConfig(resolver=resolver, timeout=1.5)
            return await measure_app("viber", ProbeContext(net=net), load_catalogue(path),
                                     ipdb=ipdb)  # fmt: skip

    for rows, expected in (("", ("blocked", "dns.bogon")),
                           ("2130706432,2147483647,64500,Lab Net\n", ("ok", None))):  # fmt: skip
        (verdict,) = verdicts_of(parse_measurement(dumps(asyncio.run(go(database(rows))))))
        assert (verdict.verdict, verdict.technique) == expected


def test_turn_relays_count_as_reached_when_they_ask_for_credentials(tmp_path: Path) -> None:
    """A TURN Allocate without credentials: the relay's 401 shows it is reachable; silence is
    udp.timeout. Two relays under `each`: one silent one is enough to block the feature."""

    async def go() -> dict[str, Any]:
        async with stun_server() as relay, stun_server("silent") as dropped:
            endpoints = [{"ip": LOOPBACK, "port": port, "protocol": "turn"}
                         for port in (relay, dropped)]  # fmt: skip
            apps = {"zoom": {"calls": ("each", endpoints), "media": ("each", endpoints[:1])}}
            catalogue = load_catalogue(write_catalogue(tmp_path / "apps.yaml", apps))
            context = ProbeContext(net=NetConfig(timeout=1.5))
            return await measure_app("zoom", context, catalogue)

    found = {v.target: (v.verdict, v.technique)
             for v in verdicts_of(parse_measurement(dumps(asyncio.run(go()))))}  # fmt: skip
    assert found == {"zoom/calls": ("blocked", "udp.timeout"), "zoom/media": ("ok", None)}
