"""Circumvention measured beside the direct path: each app feature directly (from the probe's
address, which the lab's censor targets) and through a SOCKS5 proxy in the same run; the store
then says per target whether the tunnel restored it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from reachwatch.pipeline import ingest
from reachwatch.probe import NetConfig
from reachwatch.probe._proxy import Proxy
from reachwatch.probe.apps import measure_app
from reachwatch.probe.catalogue import load_catalogue
from reachwatch.probe.web_connectivity import ProbeContext
from reachwatch.store import Store, status, verdict_rows

from .conftest import write_catalogue
from .netlab import (
    LOOPBACK,
    PROBE_ADDRESS,
    LabCA,
    dns_server,
    socks5_server,
    stun_server,
    tls_censor,
    web_server,
)


def _catalogue(path: Path, ports: dict[str, int]) -> Path:
    """messaging: TLS behind an SNI-resetting censor; web: open; calls: a dropped relay."""
    endpoints = {"messaging": ("censored", "tls"), "web": ("open", "https"),
                 "calls": ("dropped", "udp-stun")}  # fmt: skip
    write_catalogue(path, {"viber": {
        name: ("each", [{"host": "app.test", "port": ports[where], "protocol": protocol}])
        for name, (where, protocol) in endpoints.items()
    }})  # fmt: skip
    return path


def _measure(tmp_path: Path, udp: bool) -> list[dict[str, Any]]:
    ca = LabCA(tmp_path)

    async def go() -> list[dict[str, Any]]:
        async with (
            web_server(tls=ca.server_context("app.test")) as site,
            tls_censor(site, "reset", only_for=PROBE_ADDRESS) as censored,
            stun_server("silent") as dropped,
            dns_server({"app.test": [LOOPBACK]}) as resolver,
            socks5_server(udp=udp, names={"app.test": LOOPBACK}) as proxy,
        ):
            ports = {"censored": censored, "open": site, "dropped": dropped}
            catalogue = load_catalogue(_catalogue(tmp_path / "apps.yaml", ports))
            direct = NetConfig(resolver=resolver, source=PROBE_ADDRESS, ca_file=ca.ca_file,
                               timeout=1.6)  # fmt: skip
            # as the CLI makes it: the same settings, through the proxy
            tunnel = replace(direct, via=Proxy("socks5", LOOPBACK, proxy))
            context = ProbeContext(probe_cc="AZ", probe_asn=28707)
            direct_run = await measure_app(
                "viber", replace(context, net=direct), catalogue, run_id="run-1"
            )
            tunnel_run = await measure_app(
                "viber", replace(context, net=tunnel), catalogue, run_id="run-1"
            )
            return [direct_run, tunnel_run]

    return asyncio.run(go())


def _rows(tmp_path: Path, measurements: list[dict[str, Any]]) -> Any:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"".join(orjson.dumps(m) + b"\n" for m in measurements))
    with Store(tmp_path / "r.duckdb") as store:
        assert ingest([path], store).stored == 2
        rows = list(verdict_rows(store, test="viber"))
        return rows, status(store, cc="AZ")


def test_a_proxy_restores_tcp_but_not_a_dropped_relay(tmp_path: Path) -> None:
    measurements = _measure(tmp_path, udp=True)
    assert measurements[1]["test_keys"]["x_via"].startswith("socks5://")
    # through the tunnel the name went to the proxy: no local DNS query at all
    assert measurements[1]["test_keys"]["queries"] == []
    rows, network = _rows(tmp_path, measurements)
    found = {(r["target"], r["via"] is not None): (r["verdict"], r["circumvention"]) for r in rows}
    assert found == {
        ("viber/messaging", False): ("blocked", None),
        ("viber/messaging", True): ("ok", "restored"),
        ("viber/web", False): ("ok", None),
        ("viber/web", True): ("ok", "not-needed"),
        ("viber/calls", False): ("blocked", None),
        ("viber/calls", True): ("blocked", "not-restored"),
    }
    # the network's status is its own path: the tunnel's rows do not hide the blocking
    assert {(s.target, s.verdict) for s in network} == {
        ("viber/messaging", "blocked"), ("viber/web", "ok"), ("viber/calls", "blocked"),
    }  # fmt: skip


def test_a_proxy_without_udp_is_unsupported_for_calls(tmp_path: Path) -> None:
    rows, _ = _rows(tmp_path, _measure(tmp_path, udp=False))
    tunnel = {r["target"]: r for r in rows if r["via"]}
    assert tunnel["viber/calls"]["circumvention"] == "unsupported"
    assert "socks_command_not_supported" in tunnel["viber/calls"]["reason"]
    assert tunnel["viber/messaging"]["circumvention"] == "restored"
