"""Network namespaces joined by veth pairs, built with iproute2 and torn down without a trace.

Every name the lab makes starts with `rw<pid>x`, so that a later run can tell a crashed run's
leftovers (its pid is gone) from a live one's, and the isolation check can tell lab
interfaces from anything else. Veth pairs are created straight inside their namespaces: no
interface of the lab ever exists in the host's namespace."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import ReachwatchError
from .scenario import LAB_RANGE

NETNS_ETC = Path("/etc/netns")
_PREFIX = re.compile(r"^rw(\d+)x")


class LabError(ReachwatchError):
    """The lab cannot be built, run, or kept inside its namespaces."""


def sh(*args: str, ns: str | None = None, stdin: str | None = None) -> str:
    """Run a command (inside namespace `ns`); its output, or LabError with its stderr."""
    command = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    try:
        done = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{' '.join(command)}: {exc}") from None
    if done.returncode != 0:
        raise LabError(f"{' '.join(command)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


@dataclass
class Namespaces:
    """The namespaces, links and processes of one lab run, and how to remove them all."""

    tag: str = field(default_factory=lambda: f"rw{os.getpid()}x")
    names: list[str] = field(default_factory=list)
    links: dict[str, set[str]] = field(default_factory=dict)  # namespace -> its interfaces
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def add(self, short: str, resolver: str | None = None) -> str:
        """A new namespace `<tag><short>` with loopback up; `resolver` becomes its resolv.conf
        (iproute2 bind-mounts /etc/netns/NAME/resolv.conf for what runs inside)."""
        name = self.tag + short
        sh("ip", "netns", "add", name)
        self.names.append(name)
        self.links[name] = {"lo"}
        sh("ip", "-n", name, "link", "set", "dev", "lo", "up")
        if resolver:
            (NETNS_ETC / name).mkdir(parents=True, exist_ok=True)
            (NETNS_ETC / name / "resolv.conf").write_text(f"nameserver {resolver}\n")
        return name

    def veth(self, a: str, a_if: str, b: str, b_if: str) -> None:
        """A veth pair between namespaces a and b, up (made inside them, never in the host's)."""
        sh("ip", "link", "add", "name", a_if, "netns", a, "type", "veth",
           "peer", "name", b_if, "netns", b)  # fmt: skip
        for ns, name in ((a, a_if), (b, b_if)):
            sh("ip", "-n", ns, "link", "set", "dev", name, "up")
            self.links[ns].add(name)

    def bridge(self, ns: str, name: str) -> None:
        """A bridge inside `ns` (an ISP's LAN, its probe hosts' veths plugged into it)."""
        sh("ip", "-n", ns, "link", "add", "name", name, "type", "bridge")
        sh("ip", "-n", ns, "link", "set", "dev", name, "up")
        self.links[ns].add(name)

    def spawn(self, ns: str, *args: str, log: Path) -> subprocess.Popen[bytes]:
        """A process inside `ns` with a pipe on stdin (it ends when the lab's end closes) and a
        pipe on stdout for its replies; stderr goes to `log`."""
        with open(log, "ab") as err:
            process = subprocess.Popen(
                ["ip", "netns", "exec", ns, *args],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                start_new_session=True,
            )  # fmt: skip
        self.processes.append(process)
        return process

    def teardown(self) -> None:
        """Stop every process, delete every namespace (their veths and nftables tables go with
        them) and their /etc/netns entries. Safe to call twice, and after a partial build."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
        self.processes.clear()
        for name in reversed(self.names):
            remove_namespace(name)
        self.names.clear()

    def check_isolation(self, host_links: set[str]) -> None:
        """Refuse to run unless every lab namespace holds only the lab's own interfaces, routes
        only inside 198.18.0.0/15, and the host's namespace gained no interface: the lab has no
        way out of itself."""
        for ns in self.names:
            found = {link["ifname"] for link in _json("ip", "-j", "link", "show", ns=ns)}
            strangers = found - self.links[ns]
            if strangers:
                raise LabError(f"safety: namespace {ns} holds interfaces the lab did not make: "
                               f"{sorted(strangers)}")  # fmt: skip
            for route in _json("ip", "-j", "route", "show", ns=ns):
                for key in ("dst", "gateway", "prefsrc"):
                    value = route.get(key)
                    if value and value != "default" and not _inside(value):
                        raise LabError(f"safety: namespace {ns} routes to {value}, outside "
                                       f"{LAB_RANGE}")  # fmt: skip
        gained = {link["ifname"] for link in _json("ip", "-j", "link", "show")} - host_links
        if gained:
            raise LabError(f"safety: the host's namespace gained interfaces {sorted(gained)}")


def host_links() -> set[str]:
    """The host namespace's interfaces, before the lab is built."""
    return {link["ifname"] for link in _json("ip", "-j", "link", "show")}


def _json(*args: str, ns: str | None = None) -> list[dict[str, Any]]:
    out = sh(*args, ns=ns).strip()
    return json.loads(out) if out else []


def _inside(value: str) -> bool:
    try:
        return ipaddress.ip_network(value, strict=False).subnet_of(LAB_RANGE)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False


def remove_namespace(name: str) -> None:
    """Kill what still runs inside `name`, then delete it and its /etc/netns entry."""
    try:
        pids = sh("ip", "netns", "pids", name).split()
    except LabError:
        pids = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    with contextlib.suppress(LabError):
        sh("ip", "netns", "del", name)
    shutil.rmtree(NETNS_ETC / name, ignore_errors=True)


def lab_namespaces() -> list[str]:
    """Every namespace any lab run made and left (live or not)."""
    listed = sh("ip", "netns", "list")
    return [line.split()[0] for line in listed.splitlines() if _PREFIX.match(line)]


def remove_stale() -> list[str]:
    """Remove the namespaces of lab runs whose process is gone (a kill -9 leaves them)."""
    removed = []
    for name in lab_namespaces():
        match = _PREFIX.match(name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            remove_namespace(name)
            removed.append(name)
    return removed
