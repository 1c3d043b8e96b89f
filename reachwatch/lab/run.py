"""Run a scenario: build its namespaces, start the lab's Internet, the censors and the probes,
walk the simulated clock through the probe schedule (changing each censor's rules as policy
windows open and close), collect the measurements as OONI JSONL plus a summary, and tear
everything down: also when something fails, on Ctrl-C and on SIGTERM.

Topology (all addresses inside 198.18.0.0/15, no route to the host):

    probe host --(veth)-- [bridge lan | censor router] --(veth)-- lab Internet
    (per ISP, 1-4 hosts)   nftables, tc, resolver, DPI     DNS, sites, apps, STUN,
                                                             test helper, SOCKS5 proxy
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import orjson

from ..probe.catalogue import Catalogue, default_catalogue
from ._netns import LabError, Namespaces, host_links, remove_stale, sh
from ._plan import (
    COLLECTOR_ADDRESS,
    DNS_ADDRESS,
    HELPER_ADDRESS,
    PROXY_ADDRESS,
    PROXY_PORT,
    Isp,
    Plan,
    catalogue_yaml,
    ipdb_files,
    make_plan,
)
from ._servers import LabCA
from .scenario import LAB_CORE, LAB_HOSTS, Scenario

PROBE_TIMEOUT = 3.0  # seconds per operation: inside the lab a round trip takes microseconds
BATCH = 24  # simulated runs sent to each probe at once, when no policy changes between them
START_LIMIT = 60.0  # seconds for a daemon to say it is ready
BATCH_LIMIT = 900.0  # seconds for one batch of runs; a hung lab stops on its own


@dataclass(frozen=True)
class LabRun:
    """What a finished run left in its output folder."""

    measurements: Path
    summary: dict[str, Any]


def run_scenario(
    scenario: Scenario,
    out: Path,
    catalogue: Catalogue | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LabRun:
    """Run `scenario` into `out` (measurements.jsonl, summary.json, lab/ with the logs)."""
    _require_root_and_tools()
    remove_stale()
    began = time.monotonic()
    plan = make_plan(scenario, catalogue or default_catalogue())
    work = out / "lab"
    shutil.rmtree(work, ignore_errors=True)  # a previous run's files would mix with this one's
    work.mkdir(parents=True)
    ns = Namespaces()
    before = host_links()
    with _teardown_on_signals(ns):
        try:
            inet, censors, agents = _build(ns, plan, work)
            ns.check_isolation(before)
            daemons = _start(ns, plan, work, inet, censors, agents)
            runs = _walk(plan, daemons, progress)
        finally:
            ns.teardown()
    measurements = _collect(work, out / "measurements.jsonl")
    summary = _summary(scenario, measurements, runs, time.monotonic() - began)
    (out / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return LabRun(out / "measurements.jsonl", summary)


def _require_root_and_tools() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (it makes network namespaces)")
    missing = [tool for tool in ("ip", "nft", "tc") if shutil.which(tool) is None]
    if missing:
        raise LabError(f"the lab needs {', '.join(missing)} (./dev installs nftables)")


@contextlib.contextmanager
def _teardown_on_signals(ns: Namespaces) -> Iterator[None]:
    """SIGTERM and SIGINT become exceptions, so the `finally` that tears down always runs."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _build(ns: Namespaces, plan: Plan, work: Path) -> tuple[str, dict[int, str], list[str]]:
    inet = ns.add("inet", resolver=DNS_ADDRESS)
    for block in (LAB_CORE, LAB_HOSTS):  # every address of the Internet answers here
        sh("ip", "-n", inet, "route", "add", "local", str(block), "dev", "lo")
    censors: dict[int, str] = {}
    agents: list[str] = []
    for isp in plan.isps:
        router = ns.add(f"c{isp.index}")
        censors[isp.index] = router
        ns.veth(inet, f"isp{isp.index}", router, "wan")
        sh("ip", "-n", inet, "addr", "add", f"{isp.peer}/30", "dev", f"isp{isp.index}")
        sh("ip", "-n", router, "addr", "add", f"{isp.uplink}/30", "dev", "wan")
        sh("ip", "-n", inet, "route", "add", str(isp.network.subnet), "via", isp.uplink)
        sh("ip", "-n", router, "route", "add", "default", "via", isp.peer)
        sh("sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward", ns=router)  # it routes
        ns.bridge(router, "lan")
        prefix = isp.network.subnet.prefixlen
        sh("ip", "-n", router, "addr", "add", f"{isp.gateway}/{prefix}", "dev", "lan")
        sh("ip", "-n", router, "addr", "add", f"{isp.blockpage}/32", "dev", "lan")
        for h, address in enumerate(isp.probes):
            host = ns.add(f"p{isp.index}h{h}", resolver=isp.resolver)
            ns.veth(router, f"h{h}", host, "eth0")
            sh("ip", "-n", router, "link", "set", f"h{h}", "master", "lan")
            sh("ip", "-n", host, "addr", "add", f"{address}/{prefix}", "dev", "eth0")
            sh("ip", "-n", host, "route", "add", "default", "via", isp.gateway)
            agents.append(host)
    (work / "catalogue.yaml").write_text(catalogue_yaml(plan))
    for name, text in ipdb_files(plan):
        (work / "ipdb" / name).parent.mkdir(parents=True, exist_ok=True)
        (work / "ipdb" / name).write_text(text)
    return inet, censors, agents


Daemon = tuple[subprocess.Popen[bytes], Path]  # a process and its log


def _start(
    ns: Namespaces, plan: Plan, work: Path, inet: str, censors: dict[int, str], agents: list[str]
) -> tuple[list[Daemon], list[Daemon]]:
    """The lab's Internet, then a censor per ISP, then a probe per host; (censors, probes)."""
    python = sys.executable
    config = work / "internet.json"
    config.write_bytes(orjson.dumps(plan.internet_config(str(work))))
    LabCA(work)  # made once here, loaded by every daemon
    for module, what in (("_authority", "the lab's DNS"), ("_internet", "the lab's Internet")):
        log = work / f"{module.strip('_')}.log"
        daemon = ns.spawn(inet, python, "-m", f"reachwatch.lab.{module}", str(config), log=log)
        _ready(daemon, what, log)
    started: list[Daemon] = []
    for isp in plan.isps:
        config = work / f"censor{isp.index}.json"
        config.write_bytes(orjson.dumps({
            "lan": "lan", "gateway": isp.gateway, "blockpage": isp.blockpage, "dns": DNS_ADDRESS,
        }))  # fmt: skip
        log = work / f"censor{isp.index}.log"
        censor = ns.spawn(censors[isp.index], python, "-m", "reachwatch.lab._censor", str(config),
                          log=log)  # fmt: skip
        _ready(censor, f"the censor of {isp.network.name}", log)
        started.append((censor, log))
    hosts = iter(agents)
    probes = [_spawn_agent(ns, plan, work, isp, h, next(hosts))
              for isp in plan.isps for h in range(len(isp.probes))]  # fmt: skip
    return started, probes


def _spawn_agent(ns: Namespaces, plan: Plan, work: Path, isp: Isp, h: int, host: str) -> Daemon:
    scenario = plan.scenario
    config = work / f"probe{isp.index}h{h}.json"
    config.write_bytes(orjson.dumps({
        "urls": scenario.urls(), "apps": scenario.apps(), "catalogue": str(work / "catalogue.yaml"),
        "ipdb": str(work / "ipdb"), "ca_file": str(work / "lab-ca.pem"),
        "helper": f"http://{HELPER_ADDRESS}/", "cc": scenario.country, "asn": isp.network.asn,
        "network": isp.network.name, "timeout": PROBE_TIMEOUT,
        "proxy": f"socks5://{PROXY_ADDRESS}:{PROXY_PORT}" if scenario.proxy else None,
        "output": str(work / f"probe{isp.index}h{h}.jsonl"),
        "collector": f"http://{COLLECTOR_ADDRESS}/",
    }))  # fmt: skip
    log = work / f"probe{isp.index}h{h}.log"
    return ns.spawn(host, sys.executable, "-m", "reachwatch.lab._agent", str(config), log=log), log


def _reply(process: subprocess.Popen[bytes], what: str, limit: float, log: Path) -> str:
    """The next line `process` writes, within `limit` seconds; LabError (with the end of its
    log) if it dies or stays silent."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], limit)
    line = process.stdout.readline().decode().strip() if ready else ""
    if not line:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        state = "stopped" if process.poll() is not None else f"said nothing in {limit:.0f}s"
        raise LabError(f"{what} {state}:\n{tail}")
    return line


def _ready(process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    line = _reply(process, what, START_LIMIT, log)
    if line != "ready":
        raise LabError(f"{what} did not start: {line}")


def _send(process: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
    assert process.stdin is not None
    process.stdin.write(orjson.dumps(message) + b"\n")
    process.stdin.flush()


def _walk(
    plan: Plan,
    daemons: tuple[list[Daemon], list[Daemon]],
    progress: Callable[[int, int], None] | None,
) -> list[str]:
    """Advance the simulated clock batch by batch: set every censor's rules for the batch's
    time, then have every probe measure each run of it. Returns the runs' times."""
    scenario = plan.scenario
    times = scenario.times()
    censors, agents = daemons
    done = 0
    applied: list[Any] = [None] * len(plan.isps)
    for batch in _batches(scenario, times):
        runs = [t.isoformat() for t in batch]
        hosts = iter(agents)
        for isp, (censor, log) in zip(plan.isps, censors, strict=True):
            active = [p for p in scenario.policies
                      if p.network == isp.network.name and p.window.active(batch[0])]  # fmt: skip
            rules = plan.censor_rules(active)
            if rules != applied[isp.index]:
                _send(censor, rules)
                answer = _reply(censor, f"the censor of {isp.network.name}", 30, log)
                if answer != "ok":
                    raise LabError(f"the censor of {isp.network.name} refused its rules: {answer}")
                applied[isp.index] = rules
            # this ISP's rules are in force: its probes may start
            throttled = [t for p in active if p.technique == "throttle" for t in p.targets]
            for _ in isp.probes:
                _send(next(hosts)[0], {"runs": runs, "in_turn": throttled})
        for agent, log in agents:
            counts = orjson.loads(_reply(agent, "a probe", BATCH_LIMIT, log))
            if counts["acknowledged"] != counts["measured"]:
                raise LabError(
                    f"the collector acknowledged {counts['acknowledged']} of "
                    f"{counts['measured']} measurements: {counts['refused']}"
                )
        done += len(batch)
        if progress:
            progress(done, len(times))
    return [t.isoformat() for t in times]


def _batches(scenario: Scenario, times: list[Any]) -> Iterator[list[Any]]:
    """Consecutive runs under the same policies, at most BATCH of them."""
    batch: list[Any] = []
    state: tuple[bool, ...] | None = None
    for at in times:
        now = tuple(p.window.active(at) for p in scenario.policies)
        if batch and (now != state or len(batch) >= BATCH):
            yield batch
            batch = []
        batch.append(at)
        state = now
    if batch:
        yield batch


def _collect(work: Path, into: Path) -> Path:
    """What the collector received, in the order of the simulated clock, as one JSONL file (each
    probe's own copy stays in `work`)."""
    rows = []
    collected = work / "collected.jsonl"
    for line in collected.read_bytes().splitlines() if collected.exists() else ():
        if line.strip():
            rows.append((orjson.loads(line)["measurement_start_time"], line))
    rows.sort(key=lambda row: row[0])
    into.write_bytes(b"".join(line + b"\n" for _, line in rows))
    return into


def _summary(
    scenario: Scenario, measurements: Path, runs: list[str], seconds: float
) -> dict[str, Any]:
    verdicts: Counter[str] = Counter()
    count = 0
    for line in measurements.read_bytes().splitlines():
        measurement = orjson.loads(line)
        count += 1
        keys = measurement["test_keys"]
        found = keys.get("x_reachwatch") or {}
        if measurement.get("input"):
            found = {measurement["input"]: found}
        for target, verdict in found.items():
            via = " via proxy" if keys.get("x_via") else ""
            name = target if measurement.get("input") else f"{measurement['test_name']}/{target}"
            verdicts[f"{name}{via}: {verdict.get('verdict')}"] += 1
    return {
        "scenario": scenario.name,
        "country": scenario.country,
        "networks": [n.name for n in scenario.networks],
        "runs_per_network": len(runs),
        "first_run": runs[0] if runs else None,
        "last_run": runs[-1] if runs else None,
        "measurements": count,
        "probe_verdicts": dict(sorted(verdicts.items())),
        "wall_seconds": round(seconds, 1),
    }
