"""Circumvention tools: one target per tool, `ok | blocked | error`.

- tor (`tor/relays`): directory authorities and bridges; blocked when most cannot be reached.
- vanilla_tor (`tor/bootstrap`), torsf (`torsf/bootstrap`), psiphon (`psiphon/bootstrap`): the
  tool bootstrapped or not; where it stopped says how (no relay connected: TCP; later: TLS).
- riseupvpn (`riseupvpn/api`): the provider's API and CA certificate.
- openvpn (`openvpn/handshake`): the VPN handshake with the provider's gateway.
"""

from __future__ import annotations

from ...model import (
    OpenVPNKeys,
    ParsedMeasurement,
    PsiphonKeys,
    RiseupVPNKeys,
    TorBootstrapKeys,
    TorKeys,
)
from ..fingerprints import Fingerprints
from ._common import CERTIFICATE, Verdict, blocked, error, is_network_failure, ok, technique_for
from ._reach import Reach, commonest, reach_endpoints, reach_host, url_host

KNOWN_BROKEN = {("ooniprobe-android", "3.8.3", "torsf")}
"""(software, version, test) that OONI found reporting false failures."""


def tor(pm: ParsedMeasurement, _fps: Fingerprints) -> list[Verdict]:
    target = "tor/relays"
    keys = pm.keys
    if not isinstance(keys, TorKeys) or not keys.targets:
        return [error(target, "no tor target was measured")]
    if isinstance(keys.targets, list):
        return [error(target, "an early tor experiment without named targets")]
    reaches = []
    for name, relay in sorted(keys.targets.items()):
        if relay.failure is None:
            reaches.append(Reach(True, where=name))
            continue
        endpoints = [r for r in reach_endpoints(relay) if not r.reached]
        failed_tls = [h for h in relay.tls_handshakes or () if h.failure]
        if endpoints:
            reaches.append(endpoints[0])
        elif failed_tls:
            reaches.append(Reach(False, "tls", failed_tls[0].failure, f"handshake with {name}"))
        else:
            reaches.append(Reach(False, "tcp", relay.failure, f"{relay.target_protocol} {name}"))
    failed = [r for r in reaches if not r.reached]
    summary = f"{len(reaches) - len(failed)} of {len(reaches)} relays and bridges reached"
    if len(failed) * 2 <= len(reaches):
        return [ok(target, summary)]
    worst = commonest(failed)
    return [blocked(target, worst.technique, f"{summary}; e.g. {worst.describe()}")]


def tor_bootstrap(pm: ParsedMeasurement, _fps: Fingerprints) -> list[Verdict]:
    test = pm.base.test_name
    target = "torsf/bootstrap" if test == "torsf" else "tor/bootstrap"
    keys = pm.keys
    if not isinstance(keys, TorBootstrapKeys):
        return [error(target, "test_keys are missing")]
    software = (pm.base.software_name or "").split("-unattended")[0]
    if (software, pm.base.software_version, test) in KNOWN_BROKEN:
        return [error(target, f"{software} {pm.base.software_version} misreports {test}")]
    progress = keys.tor_progress or 0
    bootstrapped = keys.failure is None and (keys.bootstrap_time or 0) > 0  # torsf 0.1
    if keys.success or progress >= 100 or bootstrapped:
        return [ok(target, f"tor bootstrapped in {keys.bootstrap_time or 0:.1f}s")]
    if not keys.failure:
        return [error(target, "neither success nor a failure was recorded")]
    # below 10% tor never finished connecting to a first relay; after it, the handshake stalled
    stage = "tcp" if progress < 10 else "tls"
    return [
        blocked(
            target,
            technique_for(stage, keys.failure),
            f"bootstrap stopped at {progress}% ({keys.tor_progress_tag or '?'}): {keys.failure}",
        )
    ]


def psiphon(pm: ParsedMeasurement, _fps: Fingerprints) -> list[Verdict]:
    target = "psiphon/bootstrap"
    keys = pm.keys
    if not isinstance(keys, PsiphonKeys):
        return [error(target, "test_keys are missing")]
    if keys.failure is None:
        if not keys.bootstrap_time:
            return [error(target, "no failure, yet no bootstrap time was recorded")]
        return [ok(target, f"psiphon bootstrapped in {keys.bootstrap_time:.1f}s")]
    if not is_network_failure(keys.failure):
        return [error(target, f"psiphon failed: {keys.failure[:120]}")]
    return [blocked(target, technique_for("tcp", keys.failure), f"psiphon failed: {keys.failure}")]


def riseupvpn(pm: ParsedMeasurement, _fps: Fingerprints) -> list[Verdict]:
    target = "riseupvpn/api"
    keys = pm.keys
    if not isinstance(keys, RiseupVPNKeys):
        return [error(target, "test_keys are missing")]
    hosts = sorted({url_host(r.request.url if r.request else None) for r in keys.requests or ()})
    reaches = [reach_host(keys, host) for host in hosts if host]
    failed = [r for r in reaches if not r.reached]
    if reaches and not failed:
        return [ok(target, f"the provider's API answered ({len(reaches)} hosts)")]
    if not reaches:
        return [error(target, "no request to the provider's API was recorded")]
    worst = commonest(failed)
    if worst.failure in CERTIFICATE:
        # riseup signs its API with its own CA; probes that checked it against the system's
        # roots failed everywhere (why OONI stopped scoring this test, backend#745)
        return [error(target, f"{worst.describe()}: the provider's own CA, not interference")]
    if worst.failure and not is_network_failure(worst.failure):
        return [error(target, worst.describe())]
    return [blocked(target, worst.technique, worst.describe())]


def openvpn(pm: ParsedMeasurement, _fps: Fingerprints) -> list[Verdict]:
    target = "openvpn/handshake"
    keys = pm.keys
    if not isinstance(keys, OpenVPNKeys):
        return [error(target, "test_keys are missing")]
    where = f"{keys.provider or 'provider'} gateway {keys.remote or '?'}"
    if keys.success:
        return [ok(target, f"handshake with the {where} succeeded")]
    if keys.success is None and keys.failure is None:
        return [error(target, "neither success nor a failure was recorded")]
    endpoints = [r for r in reach_endpoints(keys) if not r.reached]
    if endpoints:
        worst = endpoints[0]
        return [blocked(target, worst.technique, f"{worst.describe()} ({where})")]
    failure = keys.failure or "generic_timeout_error"
    if not is_network_failure(failure):
        return [error(target, f"the handshake with the {where} failed: {failure[:120]}")]
    return [
        blocked(
            target,
            technique_for("tls", failure),
            f"the handshake with the {where} failed: {failure}",
        )
    ]
