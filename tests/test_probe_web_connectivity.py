"""web_connectivity end to end on loopback: the probe (from 127.0.0.2, through its own resolver),
the test helper (from 127.0.0.1, through a truthful resolver), and servers that censor only the
probe's traffic. Each case ends in the verdict and technique DESIGN.md names for it, and the
probe's own `blocking`/`accessible` say the same in OONI's words."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest

from reachwatch.model import WebConnectivityKeys, parse_measurement
from reachwatch.pipeline.verdicts import verdicts_of
from reachwatch.probe import NetConfig
from reachwatch.probe.helper import serve
from reachwatch.probe.web_connectivity import BadURL, ProbeContext, check_url, measure

from .conftest import dumps
from .netlab import LOOPBACK, PROBE_ADDRESS, LabCA, dns_server, tls_censor, web_server


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LabCA:
    return LabCA(tmp_path_factory.mktemp("ca"))


@asynccontextmanager
async def helper(net: NetConfig) -> AsyncIterator[str]:
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(LOOPBACK, 0, net, started=started))
    port = await started
    try:
        yield f"http://{LOOPBACK}:{port}/"
    finally:
        task.cancel()


async def run_case(
    ca: LabCA,
    *,
    mode: str = "page",
    censor_only_probe: bool = True,
    probe_zone: dict[str, Any] | None = None,
    scheme: str = "http",
    with_helper: bool = True,
    tls_censor_mode: str | None = None,
) -> dict[str, Any]:
    tls = ca.server_context("example.test") if scheme == "https" else None
    truth = {"example.test": [LOOPBACK]}
    only = PROBE_ADDRESS if censor_only_probe else None
    async with AsyncExitStack() as stack:
        port = await stack.enter_async_context(web_server(mode, tls=tls, only_for=only))
        impostor = None
        if tls_censor_mode == "mitm":  # a server with a certificate for another name
            impostor = await stack.enter_async_context(
                web_server(tls=ca.server_context("censor.test"))
            )
        if tls_censor_mode:
            censor = tls_censor(port, tls_censor_mode, PROBE_ADDRESS, impostor)
            port = await stack.enter_async_context(censor)
        return await _measure_case(ca, port, truth, probe_zone, scheme, with_helper)


async def _measure_case(
    ca: LabCA,
    port: int,
    truth: dict[str, Any],
    probe_zone: dict[str, Any] | None,
    scheme: str,
    with_helper: bool,
) -> dict[str, Any]:
    async with (
        dns_server(truth) as true_resolver,
        dns_server(probe_zone or truth) as probe_resolver,
        helper(NetConfig(resolver=true_resolver, ca_file=ca.ca_file, timeout=2)) as th,
    ):
        context = ProbeContext(
            probe_cc="AZ",
            probe_asn=28707,
            helper=th if with_helper else None,
            net=NetConfig(
                resolver=probe_resolver, source=PROBE_ADDRESS, ca_file=ca.ca_file, timeout=1
            ),
        )
        return await measure(f"{scheme}://example.test:{port}/", context)


CASES = [
    ({}, ("ok", None), (False, True)),
    ({"scheme": "https"}, ("ok", None), (False, True)),
    ({"mode": "reset"}, ("blocked", "http.reset"), ("http-failure", False)),
    (
        {"scheme": "https", "tls_censor_mode": "reset"},
        ("blocked", "tls.reset"),
        ("http-failure", False),
    ),
    (
        {"scheme": "https", "tls_censor_mode": "silence"},
        ("blocked", "tls.timeout"),
        ("http-failure", False),
    ),
    ({"mode": "hang"}, ("blocked", "http.timeout"), ("http-failure", False)),
    # the page starts, then stalls: throttled, over TLS too (the handshake went through)
    ({"mode": "stall"}, ("blocked", "throttled"), ("http-failure", False)),
    ({"mode": "stall", "scheme": "https"}, ("blocked", "throttled"), ("http-failure", False)),
    ({"mode": "blockpage"}, ("blocked", "http.blockpage"), ("http-diff", False)),
    ({"probe_zone": {"example.test": "NXDOMAIN"}}, ("blocked", "dns.nxdomain"), ("dns", False)),
    ({"probe_zone": {"example.test": "SILENT"}}, ("blocked", "dns.timeout"), ("dns", False)),
    (
        {"scheme": "https", "tls_censor_mode": "mitm"},
        ("blocked", "tls.mitm"),
        ("http-failure", False),
    ),
    # on loopback the true address is private too, so a lie is "inconsistent", not "bogon"
    (
        {"probe_zone": {"example.test": ["127.0.0.3"]}},
        ("blocked", "dns.inconsistent"),
        ("dns", False),
    ),
    ({"mode": "reset", "censor_only_probe": False}, ("down", None), (False, False)),
    ({"with_helper": False, "mode": "reset"}, ("error", None), (None, None)),
]


@pytest.mark.parametrize(("case", "verdict", "ooni"), CASES, ids=[str(c[0]) for c in CASES])
def test_web_connectivity_case(
    ca: LabCA, case: dict[str, Any], verdict: tuple[str, str | None], ooni: tuple[Any, Any]
) -> None:
    measurement = asyncio.run(run_case(ca, **case))
    keys = measurement["test_keys"]
    assert (keys["x_reachwatch"]["verdict"], keys["x_reachwatch"]["technique"]) == verdict
    assert (keys["blocking"], keys["accessible"]) == ooni
    # the stored measurement is an OONI one our pipeline reads back to the same verdict
    pm = parse_measurement(dumps(measurement))
    assert isinstance(pm.keys, WebConnectivityKeys)
    (again,) = verdicts_of(pm)
    assert (again.verdict, again.technique) == verdict
    assert measurement["probe_ip"] == "127.0.0.1"  # never the probe's address
    assert PROBE_ADDRESS not in dumps(measurement).decode()


def test_the_helpers_reply_is_waited_for_longer_than_one_operation(
    ca: LabCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper looks up, connects and fetches before it answers, each step with a timeout of
    its own: a reply that takes longer than one of the probe's operations is still a control."""
    import reachwatch.probe.helper as helper_module

    answer = helper_module.control

    async def busy(request: Any, net: NetConfig) -> dict[str, Any]:
        await asyncio.sleep(1.5)  # the probe's operations time out after 1 s
        return await answer(request, net)

    monkeypatch.setattr(helper_module, "control", busy)
    keys = asyncio.run(run_case(ca))["test_keys"]
    assert keys["control_failure"] is None
    assert (keys["x_reachwatch"]["verdict"], keys["accessible"]) == ("ok", True)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.org/", "only http and https"),
        ("http:///nohost", "no host"),
        ("http://example.org:99999/", "Port out of range"),
        ("not a url", "only http and https"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, reason: str) -> None:
    with pytest.raises(BadURL, match=reason):
        check_url(url)


def test_idn_hosts_are_measured_in_their_ascii_form() -> None:
    assert check_url("http://яндекс.рф/") == "http://xn--d1acpjx3f.xn--p1ai/"
