"""The web_connectivity experiment (OONI ts-017): is this URL reachable from here, and if not,
where does it break? DNS, a control from the test helper, TCP (and TLS) to every address, then
the fetch; the result is an OONI measurement that OONI's tools and our pipeline both read.

The probe's own conclusion (`blocking`, `accessible`) is our pipeline's verdict on the very
measurement, put in OONI's words, so the two can never disagree.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from .. import __version__
from ..model import parse_measurement
from ..pipeline.verdicts import Verdict, verdicts_of
from ._conn import tcp_connect, tls_context, tls_handshake
from ._http import REQUEST_HEADERS, NetConfig, fetch, request_json, resolve
from ._trace import Trace, endpoint

TEST_NAME = "web_connectivity"
TEST_VERSION = "0.4.3"
MAX_CONNECTIVITY_CHECKS = 8
HELPER_WAIT = 4
"""The helper's reply is waited for this many operation timeouts: it looks up, connects and
fetches before it answers, each step bounded by a timeout of its own."""


class BadURL(ValueError):
    """An input that cannot be measured as a web site; the message says why."""


@dataclass(frozen=True)
class ProbeContext:
    """Who measures from where: network identity (never the probe's IP) and how to reach out."""

    probe_cc: str = "ZZ"
    probe_asn: int = 0
    network_name: str | None = None
    helper: str | None = None
    net: NetConfig = field(default_factory=NetConfig)
    clock_offset: float = 0.0  # seconds added to the wall clock: the lab's simulated time

    def now(self) -> datetime:
        """When a measurement starts, as its `measurement_start_time` will say."""
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset)


def check_url(url: str) -> str:
    """The URL with an IDNA (ASCII) host, ready to measure; BadURL with the reason otherwise."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise BadURL(f"{url[:200]!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise BadURL(f"{url[:200]!r}: only http and https URLs can be measured")
    host = parts.hostname
    if not host:
        raise BadURL(f"{url[:200]!r}: no host")
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise BadURL(f"{url[:200]!r}: the host is not a valid name ({exc})") from None
    netloc = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


async def measure(url: str, context: ProbeContext, run_id: str | None = None) -> dict[str, Any]:
    """One OONI web_connectivity measurement of `url` (which must pass `check_url`); through
    a proxy when the context's net has one (`run_id` pairs it with its direct twin)."""
    target = check_url(url)
    started = context.now()
    clock = time.perf_counter()
    trace = Trace(clock)
    net = context.net
    parts = urlsplit(target)
    host = parts.hostname or ""
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)

    addrs, dns_failure = await resolve(trace, host, net)
    endpoints = [endpoint(ip, port) for ip in addrs]
    control: Any = None
    control_failure: str | None = "no test helper was given"
    if context.helper:
        control, control_failure = await request_json(
            context.helper,
            {
                "http_request": target,
                "http_request_headers": {k: [v] for k, v in REQUEST_HEADERS},
                "tcp_connect": endpoints,
                "x_quic_enabled": False,
            },
            replace(net, timeout=net.timeout * HELPER_WAIT),
        )
    await asyncio.gather(
        *(_connectivity(trace, ip, port, host if secure else None, net)
          for ip in addrs[:MAX_CONNECTIVITY_CHECKS])
    )  # fmt: skip
    fetched = await fetch(trace, target, net)

    keys: dict[str, Any] = {
        "agent": "redirect",
        "client_resolver": net.resolver,
        "retries": None,
        "socksproxy": str(net.via) if net.via else None,
        **trace.archival(),
        "dns_experiment_failure": dns_failure,
        "control_failure": control_failure,
        "control": control if isinstance(control, dict) else {},
        "http_experiment_failure": fetched.failure,
        "dns_consistency": None,
        "body_length_match": None,
        "body_proportion": 0,
        "status_code_match": None,
        "headers_match": None,
        "title_match": None,
        "accessible": None,
        "blocking": None,
        "x_via": net.via_label,
        "x_run": run_id,
    }
    measurement = base_measurement(
        url, TEST_NAME, TEST_VERSION, context, started, time.perf_counter() - clock, keys
    )
    _conclude(measurement)
    return measurement


async def _connectivity(
    trace: Trace, ip: str, port: int, server_name: str | None, net: NetConfig
) -> None:
    conn, _ = await tcp_connect(
        trace, ip, port, timeout=net.timeout, source=net.source, via=net.via
    )
    if conn is None:
        return
    if server_name is not None:
        context = tls_context(cafile=net.ca_file)
        await tls_handshake(trace, conn, server_name, context=context, timeout=net.timeout)
    await conn.close()


def base_measurement(
    url: str | None,
    test_name: str,
    test_version: str,
    context: ProbeContext,
    started: datetime,
    runtime: float,
    keys: dict[str, Any],
) -> dict[str, Any]:
    """OONI's base keys (df-000) around a test's keys; never the probe's address."""
    start = started.strftime("%Y-%m-%d %H:%M:%S")
    report_name = test_name.replace("_", "")
    return {
        "annotations": {"engine_name": "reachwatch", "engine_version": __version__},
        "data_format_version": "0.2.0",
        "input": url,
        "measurement_start_time": start,
        "probe_asn": f"AS{context.probe_asn}",
        "probe_cc": context.probe_cc,
        # OONI's placeholder: the probe's own address is never recorded
        "probe_ip": "127.0.0.1",
        "probe_network_name": context.network_name,
        "report_id": (
            f"{started:%Y%m%dT%H%M%SZ}_{report_name}_{context.probe_cc}_{context.probe_asn}"
            f"_n1_reachwatch"
        ),
        "resolver_asn": None,
        "resolver_ip": None,
        "resolver_network_name": None,
        "software_name": "reachwatch",
        "software_version": __version__,
        "test_keys": keys,
        "test_name": test_name,
        "test_runtime": round(runtime, 6),
        "test_start_time": start,
        "test_version": test_version,
    }


def verdict_of(measurement: dict[str, Any]) -> Verdict:
    """Our pipeline's verdict on a measurement the probe just made."""
    (verdict,) = verdicts_of(parse_measurement(orjson.dumps(measurement)))
    return verdict


def _conclude(measurement: dict[str, Any]) -> None:
    """Fill OONI's `blocking`, `accessible` and `dns_consistency` from our verdict."""
    verdict = verdict_of(measurement)
    keys = measurement["test_keys"]
    technique = verdict.technique or ""
    if verdict.verdict == "ok":
        keys["blocking"], keys["accessible"] = False, True
    elif verdict.verdict == "down":
        keys["blocking"], keys["accessible"] = False, False
    elif verdict.verdict == "blocked":
        keys["blocking"], keys["accessible"] = _ooni_type(technique), False
    if technique.startswith("dns."):
        keys["dns_consistency"] = "inconsistent"
    elif keys["control"].get("dns"):
        keys["dns_consistency"] = "consistent"
    keys["x_reachwatch"] = {
        "verdict": verdict.verdict,
        "technique": verdict.technique,
        "reason": verdict.reason,
    }


def _ooni_type(technique: str) -> str:
    """Our technique in OONI's four blocking types."""
    if technique.startswith("dns."):
        return "dns"
    if technique.startswith("tcp."):
        return "tcp_ip"
    if technique in ("http.diff", "http.blockpage"):
        return "http-diff"
    return "http-failure"
