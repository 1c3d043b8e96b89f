"""App, circumvention and generic verdicts: each feature follows its app's rule."""

from __future__ import annotations

from typing import Any

import pytest

from reachwatch.model import parse_measurement
from reachwatch.pipeline.verdicts import Verdict, verdicts_of

from .conftest import dumps, measurement, sample


def query(host: str, ips: list[str], failure: str | None = None, asn: int = 0) -> dict[str, Any]:
    answers = [{"answer_type": "A", "ipv4": ip, "asn": asn} for ip in ips]
    return {
        "hostname": host,
        "query_type": "A",
        "engine": "system",
        "failure": failure,
        "answers": answers or None,
    }


def tcp(ip: str, port: int, failure: str | None = None) -> dict[str, Any]:
    return {"ip": ip, "port": port, "status": {"success": failure is None, "failure": failure}}


def tls(address: str, sni: str, failure: str | None = None) -> dict[str, Any]:
    return {"address": address, "server_name": sni, "failure": failure, "no_tls_verify": False}


def request(url: str, failure: str | None = None, code: int = 200) -> dict[str, Any]:
    return {
        "request": {"url": url, "method": "GET"},
        "failure": failure,
        "response": {"code": 0 if failure else code, "body": ""},
    }


def judge(test_name: str, keys: dict[str, Any] | None, **base: Any) -> dict[str, Verdict]:
    pm = parse_measurement(dumps(measurement(test_name, keys, **base)))
    return {v.target: v for v in verdicts_of(pm)}


def pair(v: Verdict) -> tuple[str, str | None]:
    return v.verdict, v.technique


WA_DNS = [
    query("e1.whatsapp.net", ["157.240.1.1"]),
    query("e2.whatsapp.net", ["157.240.1.2"]),
    query("v.whatsapp.net", ["157.240.9.9"]),
    query("web.whatsapp.com", ["157.240.8.8"]),
]


def whatsapp_keys(
    chat: list[dict[str, Any]], reg: str | None = None, web: str | None = None
) -> dict[str, Any]:
    return {
        "queries": WA_DNS,
        "tcp_connect": chat,
        "tls_handshakes": [
            tls("157.240.9.9:443", "v.whatsapp.net", reg),
            tls("157.240.8.8:443", "web.whatsapp.com", web),
        ],
        "requests": [
            request("https://v.whatsapp.net/v2/register", reg),
            request("https://web.whatsapp.com/", web),
        ],
    }


def test_whatsapp_messaging_needs_any_one_endpoint() -> None:
    chat = [tcp("157.240.1.1", 5222, "generic_timeout_error"), tcp("157.240.1.2", 443)]
    verdicts = judge("whatsapp", whatsapp_keys(chat))
    assert pair(verdicts["whatsapp/messaging"]) == ("ok", None)
    assert pair(verdicts["whatsapp/registration"]) == ("ok", None)
    assert pair(verdicts["whatsapp/web"]) == ("ok", None)


def test_whatsapp_messaging_blocked_when_every_endpoint_fails() -> None:
    chat = [
        tcp("157.240.1.1", 5222, "generic_timeout_error"),
        tcp("157.240.1.2", 443, "generic_timeout_error"),
    ]
    verdicts = judge("whatsapp", whatsapp_keys(chat, web="connection_reset"))
    assert pair(verdicts["whatsapp/messaging"]) == ("blocked", "tcp.timeout")
    assert pair(verdicts["whatsapp/registration"]) == ("ok", None)
    assert pair(verdicts["whatsapp/web"]) == ("blocked", "tls.reset")


def test_whatsapp_chat_names_that_do_not_resolve() -> None:
    keys = whatsapp_keys([])
    keys["queries"] = [query("e1.whatsapp.net", [], "dns_nxdomain_error"), *WA_DNS[2:]]
    assert pair(judge("whatsapp", keys)["whatsapp/messaging"]) == ("blocked", "dns.nxdomain")


def test_whatsapp_web_unexpected_status_is_still_whatsapp_answering() -> None:
    verdicts = {v.target: v for v in verdicts_of(parse_measurement(sample("whatsapp.json")))}
    assert verdicts["whatsapp/web"].verdict == "ok"
    assert verdicts["whatsapp/web"].probe_says == "blocked"  # the probe's own, kept to compare


def test_telegram_any_data_centre_is_enough_and_web_is_separate() -> None:
    keys = {
        "tcp_connect": [tcp("149.154.175.50", 443, "connection_reset"), tcp("149.154.167.51", 80)],
        "queries": [query("web.telegram.org", ["149.154.167.99"])],
        "tls_handshakes": [tls("149.154.167.99:443", "web.telegram.org", "connection_reset")],
        "requests": [request("https://web.telegram.org/", "connection_reset")],
    }
    verdicts = judge("telegram", keys)
    assert pair(verdicts["telegram/messaging"]) == ("ok", None)
    assert pair(verdicts["telegram/web"]) == ("blocked", "tls.reset")


SIGNAL_HOSTS = ["textsecure-service.whispersystems.org", "storage.signal.org", "cdn.signal.org"]


def signal_keys(failing: dict[str, str]) -> dict[str, Any]:
    queries, connects, handshakes, requests = [], [], [], []
    for i, host in enumerate([*SIGNAL_HOSTS, "api.directory.signal.org"]):
        ip = f"13.248.212.{i + 1}"
        failure = failing.get(host)
        queries.append(query(host, [ip]))
        connects.append(tcp(ip, 443))
        handshakes.append(tls(f"{ip}:443", host, failure))
        requests.append(request(f"https://{host}/", failure, 404))
    return {
        "queries": queries,
        "tcp_connect": connects,
        "tls_handshakes": handshakes,
        "requests": requests,
        "failure": None,
        "failed_operation": None,
    }


def test_signal_needs_each_backend_host() -> None:
    keys = signal_keys({"cdn.signal.org": "connection_reset"})
    v = judge("signal", keys, test_version="0.2.5")["signal/messaging"]
    assert pair(v) == ("blocked", "tls.reset")
    assert "1 of 3 endpoints failed" in v.reason  # api.directory.signal.org is retired
    assert (
        judge("signal", signal_keys({}), test_version="0.2.5")["signal/messaging"].verdict == "ok"
    )


def test_signal_stale_certificate_pin_is_an_error_not_blocking() -> None:
    keys = signal_keys(dict.fromkeys(SIGNAL_HOSTS, "ssl_unknown_authority"))
    v = judge("signal", keys, test_version="0.2.0", measurement_start_time="2022-10-27 00:00:00")
    assert v["signal/messaging"].verdict == "error"
    assert "root CA" in v["signal/messaging"].reason
    # the same failures from a probe with the current pins would be interception
    v = judge("signal", keys, test_version="0.2.5", measurement_start_time="2024-06-01 00:00:00")
    assert pair(v["signal/messaging"]) == ("blocked", "tls.mitm")


def test_signal_retired_endpoint_is_ignored() -> None:
    keys = signal_keys({"api.directory.signal.org": "dns_nxdomain_error"})
    v = judge("signal", keys, test_version="0.2.2", measurement_start_time="2023-06-01 00:00:00")
    assert pair(v["signal/messaging"]) == ("ok", None)
    assert "3 of 3" in v["signal/messaging"].reason


MESSENGER = [
    "b-api.facebook.com",
    "b-graph.facebook.com",
    "edge-mqtt.facebook.com",
    "external.xx.fbcdn.net",
    "scontent.xx.fbcdn.net",
    "star.c10r.facebook.com",
]


def messenger_keys(asn_of: dict[str, int], failing: set[str]) -> dict[str, Any]:
    queries, connects = [], []
    for i, host in enumerate(MESSENGER):
        ip = f"157.240.0.{i + 1}"
        queries.append(query(host, [ip], asn=asn_of.get(host, 32934)))
        connects.append(tcp(ip, 443, "generic_timeout_error" if host in failing else None))
    return {"queries": queries, "tcp_connect": connects}


def test_messenger_needs_each_endpoint() -> None:
    assert (
        judge("facebook_messenger", messenger_keys({}, set()))[
            "facebook_messenger/messaging"
        ].verdict
        == "ok"
    )
    v = judge("facebook_messenger", messenger_keys({}, {"edge-mqtt.facebook.com"}))
    assert pair(v["facebook_messenger/messaging"]) == ("blocked", "tcp.timeout")


def test_messenger_dns_answer_outside_facebook_is_inconsistent() -> None:
    v = judge("facebook_messenger", messenger_keys({"b-api.facebook.com": 12880}, set()))
    assert pair(v["facebook_messenger/messaging"]) == ("blocked", "dns.inconsistent")


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"endpoint": "stun.l.google.com:19302", "failure": None}, ("ok", None)),
        (
            {"endpoint": "stun.l.google.com:19302", "failure": "generic_timeout_error"},
            ("blocked", "udp.timeout"),
        ),
        (
            {
                "endpoint": "stun.l.google.com:19302",
                "failure": "dns_nxdomain_error",
                "queries": [query("stun.l.google.com", [], "dns_nxdomain_error")],
            },
            ("blocked", "dns.nxdomain"),
        ),
    ],
)
def test_stunreachability(keys: dict[str, Any], expected: tuple[str, str | None]) -> None:
    v = judge("stunreachability", keys, input="stun://stun.l.google.com:19302")
    assert pair(v["stun://stun.l.google.com:19302"]) == expected


def test_dnscheck_any_address_answering_is_enough() -> None:
    answered = {"queries": [query("example.org", ["93.184.216.34"])]}
    reset = {
        "failure": "connection_reset",
        "tls_handshakes": [tls("1.1.1.1:853", "1.1.1.1", "connection_reset")],
    }
    v = judge(
        "dnscheck",
        {"lookups": {"1.1.1.1:853": answered, "1.0.0.1:853": reset}},
        input="dot://1.1.1.1:853/",
    )
    assert pair(v["dot://1.1.1.1:853/"]) == ("ok", None)
    v = judge("dnscheck", {"lookups": {"1.1.1.1:853": reset}}, input="dot://1.1.1.1:853/")
    assert pair(v["dot://1.1.1.1:853/"]) == ("blocked", "tls.reset")


def test_urlgetter_names_the_failed_operation() -> None:
    v = judge(
        "urlgetter",
        {"failure": "connection_refused", "failed_operation": "connect"},
        input="https://example.org/",
    )
    assert pair(v["https://example.org/"]) == ("blocked", "tcp.refused")


def test_tor_bootstrap_progress_tells_the_stage() -> None:
    early = {"failure": "generic_timeout_error", "tor_progress": 5, "tor_progress_tag": "conn"}
    late = {"failure": "generic_timeout_error", "tor_progress": 50, "tor_progress_tag": "loading"}
    assert pair(judge("vanilla_tor", early)["tor/bootstrap"]) == ("blocked", "tcp.timeout")
    assert pair(judge("vanilla_tor", late)["tor/bootstrap"]) == ("blocked", "tls.timeout")
    assert (
        judge("torsf", {"success": True, "bootstrap_time": 40})["torsf/bootstrap"].verdict == "ok"
    )


def test_tor_relays_blocked_when_most_fail() -> None:
    def target(failure: str | None) -> dict[str, Any]:
        return {
            "failure": failure,
            "target_protocol": "or_port",
            "tcp_connect": [tcp("1.2.3.4", 443, failure)],
        }

    most = {
        "targets": {
            "a": target("generic_timeout_error"),
            "b": target("generic_timeout_error"),
            "c": target(None),
        }
    }
    assert pair(judge("tor", most)["tor/relays"]) == ("blocked", "tcp.timeout")
    few = {"targets": {"a": target("generic_timeout_error"), "b": target(None), "c": target(None)}}
    assert judge("tor", few)["tor/relays"].verdict == "ok"


def test_psiphon_openvpn_riseupvpn() -> None:
    assert (
        judge("psiphon", {"bootstrap_time": 4.5, "failure": None})["psiphon/bootstrap"].verdict
        == "ok"
    )
    assert pair(judge("psiphon", {"failure": "generic_timeout_error"})["psiphon/bootstrap"]) == (
        "blocked",
        "tcp.timeout",
    )
    vpn = {
        "success": False,
        "failure": "connection_refused",
        "provider": "riseup",
        "tcp_connect": tcp("198.252.153.109", 443, "connection_refused"),
    }
    assert pair(judge("openvpn", vpn)["openvpn/handshake"]) == ("blocked", "tcp.refused")
    rise = verdicts_of(parse_measurement(sample("riseupvpn.json")))
    assert [v.verdict for v in rise] == ["error"]  # riseup's own CA, not interference


def test_known_broken_probe_versions_give_errors() -> None:
    (v,) = verdicts_of(parse_measurement(sample("torsf_383.json")))
    assert v.verdict == "error"


def test_telegram_web_client_address_is_not_a_data_centre() -> None:
    keys = {
        "tcp_connect": [
            tcp("149.154.175.50", 443, "generic_timeout_error"),
            tcp("149.154.167.99", 443),
        ],
        "queries": [query("web.telegram.org", ["149.154.167.99"])],
        "tls_handshakes": [tls("149.154.167.99:443", "web.telegram.org")],
        "requests": [request("https://web.telegram.org/")],
    }
    verdicts = judge("telegram", keys)
    assert pair(verdicts["telegram/messaging"]) == ("blocked", "tcp.timeout")
    assert pair(verdicts["telegram/web"]) == ("ok", None)


def test_an_unexpected_reply_still_shows_the_host_is_reachable() -> None:
    keys = whatsapp_keys([tcp("157.240.1.1", 5222)])
    keys["requests"][0] = {
        "request": {"url": "https://v.whatsapp.net/v2/register"},
        "failure": "http_unexpected_status_code",
        "response": {"code": 403, "body": ""},
    }
    assert judge("whatsapp", keys)["whatsapp/registration"].verdict == "ok"
