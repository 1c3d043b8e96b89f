"""The lab for real: namespaces, censors and the probe, run as the user runs them. Needs root
(CI runs as root); every test checks that the lab left nothing behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest

from reachwatch.lab import _netns
from reachwatch.lab import run as lab_run
from reachwatch.lab._netns import LabError, Namespaces, host_links, sh
from reachwatch.lab.scenario import load_scenario

from .conftest import free_port, reachwatch, wait_until_serving

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab makes namespaces: needs root")

SMALL = """\
name: small
country: AZ
start: 2017-05-07T00:00:00Z
days: 2
runs_per_day: 2
proxy: true
networks:
  - {name: Delta Telecom, asn: 29049}
  - {name: Azercell, asn: 31721}
sites:
  - {url: "http://news.example.az/"}
targets: ["http://news.example.az/", whatsapp/messaging, whatsapp/calls, telegram/web]
policies:
  - {network: Delta Telecom, technique: udp.drop, targets: [whatsapp/calls], from: 2017-05-08}
  - {network: Azercell, technique: http.blockpage, targets: ["http://news.example.az/"]}
expect:
  - {network: Delta Telecom, target: whatsapp/calls, verdict: ok, until: 2017-05-08}
  - {network: Delta Telecom, target: whatsapp/calls, verdict: blocked, technique: udp.timeout,
     from: 2017-05-08}
  - {network: Delta Telecom, target: whatsapp/calls, via: proxy, verdict: ok}
  - {network: Delta Telecom, target: whatsapp/messaging, verdict: ok}
  - {network: Azercell, target: "http://news.example.az/", verdict: blocked,
     technique: http.blockpage}
  - {network: Azercell, target: "http://news.example.az/", via: proxy, verdict: ok}
  - {network: Azercell, target: whatsapp/calls, verdict: ok}
"""


def _leftovers(pid: int) -> list[str]:
    """What a lab run of process `pid` could leave: namespaces (their veths, nftables tables
    and qdiscs live and die with them), their /etc/netns entries, nftables tables in the host's
    namespace, its daemons."""
    tag = f"rw{pid}x"
    found = [n for n in sh("ip", "netns", "list").split() if n.startswith(tag)]
    found += [p.name for p in _netns.NETNS_ETC.glob(f"{tag}*")] if _netns.NETNS_ETC.exists() else []
    found += [f"nft {line}" for line in sh("nft", "list", "tables").splitlines() if "rwlab" in line]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if b"reachwatch.lab._" in cmdline.read_bytes():
                found.append(f"process {cmdline.parent.name}")
    return found


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


def test_a_scenario_runs_in_simulated_time_and_leaves_nothing(small: Path, tmp_path: Path) -> None:
    before = host_links()
    out = tmp_path / "out"
    done = reachwatch("lab", "run", str(small), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "expectations: 24/24 verdicts as the scenario expects (100.0%); 40 not" in done.stdout
    measurements = [
        orjson.loads(line) for line in (out / "measurements.jsonl").read_bytes().splitlines()
    ]
    # 2 networks x 4 runs x (1 site + 2 apps) x (direct + proxy)
    assert len(measurements) == 2 * 4 * 3 * 2
    starts = sorted({m["measurement_start_time"][:13] for m in measurements})
    assert starts == ["2017-05-07 00", "2017-05-07 12", "2017-05-08 00", "2017-05-08 12"]
    assert {(m["probe_cc"], m["probe_asn"], m["probe_network_name"]) for m in measurements} == {
        ("AZ", "AS29049", "Delta Telecom"),
        ("AZ", "AS31721", "Azercell"),
    }
    assert all("probe_ip" not in m or m["probe_ip"] == "127.0.0.1" for m in measurements)
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert summary["measurements"] == len(measurements) and summary["runs_per_network"] == 4
    assert _leftovers(os.getpid()) == [] and host_links() == before


def test_a_failure_mid_run_tears_everything_down(
    small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> list[str]:
        assert _leftovers(os.getpid()), "the lab should be up when the walk starts"
        raise LabError("a probe stopped")

    monkeypatch.setattr(lab_run, "_walk", broken)
    with pytest.raises(LabError, match="a probe stopped"):
        lab_run.run_scenario(load_scenario(small), tmp_path / "out")
    assert _leftovers(os.getpid()) == []


def test_ctrl_c_tears_everything_down(small: Path, tmp_path: Path) -> None:
    long = (
        small.read_text()
        .replace("days: 2", "days: 200")
        .replace("runs_per_day: 2", "runs_per_day: 24")
    )
    small.write_text(long)
    process = subprocess.Popen(
        [sys.executable, "-m", "reachwatch", "lab", "run", str(small), "--out",
         str(tmp_path / "o")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not list((tmp_path / "o" / "lab").glob("probe*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.2)  # the probes have started writing: everything is up
    assert _leftovers(process.pid), "the lab should be up"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0
    assert _leftovers(process.pid) == [], err


def test_a_lab_that_could_reach_outside_is_refused(
    small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = lab_run._build

    def leaky(ns: Namespaces, *args: object) -> object:
        built = build(ns, *args)  # type: ignore[arg-type]
        sh("ip", "-n", ns.names[0], "route", "add", "192.0.2.0/24", "dev", "lo")
        return built

    monkeypatch.setattr(lab_run, "_build", leaky)
    with pytest.raises(LabError, match=r"safety: namespace rw\d+xinet routes to 192\.0\.2\.0/24"):
        lab_run.run_scenario(load_scenario(small), tmp_path / "out")
    assert _leftovers(os.getpid()) == []


def test_an_interface_the_lab_did_not_make_is_refused() -> None:
    ns = Namespaces()
    try:
        name = ns.add("solo")
        before = host_links()
        ns.check_isolation(before)  # a fresh namespace holds only its loopback
        sh("ip", "-n", name, "link", "add", "name", "intruder", "type", "veth", "peer", "name", "x")
        with pytest.raises(
            LabError, match="interfaces the lab did not make: \\['intruder', 'x'\\]"
        ):
            ns.check_isolation(before)
    finally:
        ns.teardown()
    assert _leftovers(os.getpid()) == []


def test_a_bad_scenario_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL.replace("technique: udp.drop", "technique: udp.jam"))
    done = reachwatch("lab", "run", str(bad), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "bad.yaml: policies[0].technique" in done.stderr and "udp.jam" in done.stderr
    assert not (tmp_path / "out").exists()


def test_the_accuracy_matrix_is_what_the_docs_show(tmp_path: Path) -> None:
    out = tmp_path / "lab-accuracy.md"
    done = reachwatch("lab", "accuracy", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    committed = Path(__file__).parent.parent / "docs" / "lab-accuracy.md"
    assert out.read_text() == committed.read_text()
    assert "1030/1040 verdicts as expected" in out.read_text()


def test_the_demo_shows_azerbaijan_2017_and_serves_it(tmp_path: Path) -> None:
    """The README's main command: the demo, then the explorer on its data."""
    db = tmp_path / "demo.duckdb"
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "reachwatch", "demo", "--db", str(db),
         "--out", str(tmp_path / "lab"), "--serve", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, demo, 240)
        with urllib.request.urlopen(f"{base}/answer?subject=skype&cc=AZ&at=2017-05-15") as reply:
            page = reply.read().decode()
    finally:
        demo.terminate()
        stdout, stderr = demo.communicate(timeout=30)
    assert '<span class="partially" id="status">partially blocked</span>' in page
    assert "AS29049 Delta Telecom" in page and 'class="evidence"' in page
    scored = [line for line in stdout.splitlines() if line.startswith(("expectations", "  miss"))]
    assert "expectations: 868/868 verdicts as the scenario expects (100.0%)" in stdout, (
        scored,
        stderr,
    )
    assert "events in AZ" in stdout and f"{base}/answer?subject=skype" in stdout
    events = reachwatch("events", "--db", str(db), "--cc", "AZ", "--format", "jsonl")
    found = {(e["target"], e["start"], e["end"], tuple(e["networks"]))
             for e in map(orjson.loads, events.stdout.splitlines())}  # fmt: skip
    assert found == {
        ("https://www.azadliq.org/", "2017-04-17T00:00:00Z", None,
         ("AS29049 Delta Telecom", "AS31721 Azercell")),
        ("telegram/web", "2017-05-01T00:00:00Z", None, ("AS31721 Azercell",)),
        ("skype/calls", "2017-05-08T00:00:00Z", "2017-05-22T00:00:00Z",
         ("AS29049 Delta Telecom",)),
        ("whatsapp/calls", "2017-05-08T00:00:00Z", "2017-05-22T00:00:00Z",
         ("AS29049 Delta Telecom",)),
    }  # fmt: skip
    rows = reachwatch("verdicts", "--db", str(db), "--cc", "AZ", "--target", "whatsapp/calls",
                      "--format", "jsonl")  # fmt: skip
    calls = [orjson.loads(line) for line in rows.stdout.splitlines()]
    blocked = sorted(r["measurement_start_time"][:10] for r in calls
                     if r["verdict"] == "blocked")  # fmt: skip
    assert blocked[0] == "2017-05-08" and blocked[-1] == "2017-05-21"
    assert {r["probe_asn"] for r in calls if r["verdict"] == "blocked"} == {"AS29049"}
    assert {r["circumvention"] for r in calls if r["via"] and r["verdict"] == "ok"} >= {"restored"}
    # the seed article's claims and the record's, against the lab's history
    data = Path(__file__).parent.parent / "reachwatch" / "answers" / "data"
    for name in ("article-skype-az.yaml", "azerbaijan-record.yaml"):
        assert reachwatch("claims", "add", str(data / name), "--db", str(db)).returncode == 0
    checked = reachwatch("claims", "check", "--db", str(db), "--cc", "AZ", "--format", "jsonl")
    rows = [orjson.loads(line) for line in checked.stdout.splitlines()]
    outcome = {r["id"]: r["check"]["outcome"] for r in rows if r["type"] == "claim"}
    assert outcome["jamnews-2017-calls-skype"] == "supported"  # calls, May 2017
    assert outcome["jamnews-2017-calls"] == "supported"  # WhatsApp calls too
    assert outcome["article-unable-to-log-in"] == "contradicted"  # the web client worked
    assert outcome["ministry-2017-denial"] == "contradicted"
    assert outcome["article-table-may-2024"] == "unverified"  # nothing measured in 2024
