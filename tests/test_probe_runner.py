"""The probe runner and the `reachwatch probe` / `reachwatch helper` commands on loopback."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from reachwatch.probe import NetConfig
from reachwatch.probe.runner import Skipped, read_test_list, run, valid_targets
from reachwatch.probe.web_connectivity import ProbeContext

from .conftest import reachwatch, write_catalogue
from .netlab import LOOPBACK, PROBE_ADDRESS, Lab, web_server

# the test IP database places loopback in a network: an app answered with an address that no
# network announces would read as a bogon (dns.bogon)
LAB_IPDB = {"REACHWATCH_IPDB": str(Path(__file__).parent / "fixtures" / "ipdb")}


def test_probe_command_measures_writes_and_summarises(lab: Lab, tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    test_list = tmp_path / "list.csv"
    test_list.write_text(
        "url,category_code,category_description,date_added,source,notes\n"
        f"http://example.test:{lab.ports['reset']}/,NEWS,News,2024-01-01,test,\n"
        ",NEWS,News,2024-01-01,test,a row without a URL\n"
        "ftp://example.test/,NEWS,News,2024-01-01,test,\n"
    )
    done = reachwatch(
        "probe", f"http://example.test:{lab.ports['page']}/", "http://bad:port/",
        "--input-file", str(test_list), "--output", str(output), "--helper", lab.ports["helper"],
        "--resolver", lab.ports["dns"], "--source-address", PROBE_ADDRESS, "--cc", "AZ",
        "--asn", "AS28707", "--timeout", "2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "skipped list.csv:3: the row has no URL" in done.stderr
    assert "skipped ftp://example.test/: " in done.stderr
    assert "skipped http://bad:port/: " in done.stderr
    measurements = [orjson.loads(line) for line in output.read_bytes().splitlines()]
    verdicts = {m["input"]: m["test_keys"]["x_reachwatch"]["technique"] for m in measurements}
    assert verdicts == {
        f"http://example.test:{lab.ports['page']}/": None,
        f"http://example.test:{lab.ports['reset']}/": "http.reset",
    }
    assert all(m["probe_cc"] == "AZ" and m["probe_asn"] == "AS28707" for m in measurements)
    assert "http.reset" in done.stdout and "2 measurements" in done.stdout
    # what the probe wrote, the store takes in
    db = tmp_path / "r.duckdb"
    ingested = reachwatch("ingest", "--db", str(db), str(output))
    assert "read 2 = stored 2 + duplicates 0 + quarantined 0" in ingested.stdout


def test_probe_without_anything_valid_is_a_clear_error(tmp_path: Path) -> None:
    done = reachwatch("probe", "gopher://x/", "--output", str(tmp_path / "o.jsonl"))
    assert done.returncode == 2
    assert "nothing to measure" in done.stderr


def test_helper_command_serves_the_control(lab: Lab) -> None:
    async def ask(url: str) -> Any:
        from reachwatch.probe._http import request_json

        return await request_json(url, {"http_request": f"http://{LOOPBACK}:{lab.ports['page']}/"})

    proc = subprocess.Popen(
        [sys.executable, "-m", "reachwatch", "helper", "--port", "0", "--host", LOOPBACK],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "test helper on" in line
    finally:
        proc.terminate()
        proc.wait(10)
    # the in-process helper answers a control request the OONI way
    reply, failure = asyncio.run(ask(lab.ports["helper"]))
    assert failure is None
    assert reply["http_request"]["status_code"] == 200
    assert reply["tcp_connect"][f"{LOOPBACK}:{lab.ports['page']}"]["status"] is True


def test_helper_refuses_bad_requests_with_a_reason(lab: Lab) -> None:
    from reachwatch.probe._http import request_json

    reply, failure = asyncio.run(request_json(lab.ports["helper"], {"http_request": "ftp://x/"}))
    assert reply is None and failure == "unknown_failure: the helper answered HTTP 400"


def test_concurrency_is_bounded_and_hanging_sites_overlap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """10 hanging sites, 5 at a time: 5 measurements run at once, never more, never fewer."""
    import reachwatch.probe.runner as runner

    peak = current = 0
    real_measure = runner.measure

    async def counted(url: str, context: ProbeContext, run_id: str | None) -> dict[str, Any]:
        nonlocal peak, current
        current += 1
        peak = max(peak, current)
        try:
            return await real_measure(url, context, run_id)
        finally:
            current -= 1

    monkeypatch.setattr(runner, "measure", counted)

    async def go() -> tuple[list[dict[str, Any]], list[Skipped]]:
        async with web_server("hang") as port:
            measured: list[dict[str, Any]] = []
            failures: list[Skipped] = []
            urls = [f"http://{LOOPBACK}:{port}/{i}" for i in range(10)]
            context = ProbeContext(net=NetConfig(timeout=0.5))
            await run(urls, context, concurrency=5, on_measurement=measured.append,
                      on_failure=failures.append)  # fmt: skip
            return measured, failures

    measured, failures = asyncio.run(go())
    assert failures == [] and len(measured) == 10
    assert all(m["test_keys"]["http_experiment_failure"] == "generic_timeout_error"
               for m in measured)  # fmt: skip
    assert peak == 5


def test_test_list_and_url_checks(tmp_path: Path) -> None:
    listed = tmp_path / "az.csv"
    listed.write_text("url,category_code\nhttps://www.azadliq.org/,NEWS\n,NEWS\n")
    urls, skipped = read_test_list(listed)
    assert urls == ["https://www.azadliq.org/"]
    assert skipped == [Skipped("az.csv:3", "the row has no URL")]
    good, bad = valid_targets(["https://a.example/", "https://a.example/", "http://[::1:80/"])
    assert good == ["https://a.example/"]
    assert len(bad) == 1 and "[::1:80" in bad[0].input
    not_a_list = tmp_path / "x.csv"
    not_a_list.write_text("address\nfoo\n")
    from reachwatch import InputError

    with pytest.raises(InputError, match="no `url` column"):
        read_test_list(not_a_list)


def test_probe_submits_and_a_down_collector_loses_nothing(lab: Lab, tmp_path: Path) -> None:
    output = tmp_path / "m.jsonl"
    page = f"http://example.test:{lab.ports['page']}/"
    before = len(lab.received)
    common = ["--output", str(output), "--helper", lab.ports["helper"], "--resolver",
              lab.ports["dns"], "--cc", "AZ", "--asn", "AS28707", "--timeout", "2"]  # fmt: skip
    up = reachwatch("probe", page, *common, "--collector", lab.ports["collector"])
    assert up.returncode == 0, up.stderr
    assert "submitted 1 of 1" in up.stdout
    assert len(lab.received) == before + 1
    assert lab.received[-1]["input"] == page

    # a collector that is down: the measurement stays in the file, the command says so
    down_output = tmp_path / "later.jsonl"
    dead = "http://127.0.0.1:9/"  # the discard port on loopback: nothing listens
    down = reachwatch("probe", page, *common[2:], "--output", str(down_output),
                      "--collector", dead)  # fmt: skip
    assert down.returncode == 1
    assert "they are kept in" in down.stderr and f"reachwatch submit {down_output}" in down.stderr
    assert len(down_output.read_bytes().splitlines()) == 1

    # and `reachwatch submit` sends it once the collector is back
    later = reachwatch("submit", str(down_output), "--collector", lab.ports["collector"])
    assert later.returncode == 0, later.stderr
    assert "submitted 1 of 1" in later.stdout
    assert len(lab.received) == before + 2


def test_submit_skips_lines_that_are_not_measurements(lab: Lab, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"test_name": "web_connectivity", "input": "x"}\nnot json\n[1]\n')
    done = reachwatch("submit", str(path), "--collector", lab.ports["collector"])
    assert done.returncode == 0, done.stderr
    assert "skipped" in done.stderr and ":2: invalid JSON" in done.stderr
    assert ":3: not a measurement" in done.stderr
    assert "submitted 1 of 1" in done.stdout


def _viber(tmp_path: Path, lab: Lab, stun: str) -> Path:
    """Lab Viber: its web on the lab's page (TCP), its calls on the lab's `stun` server."""
    return write_catalogue(tmp_path / "apps.yaml", {"viber": {
        "web": ("each", [{"host": "example.test", "port": lab.ports["page"], "protocol": "tcp"}]),
        "calls": ("any", [{"ip": LOOPBACK, "port": lab.ports[stun], "protocol": "udp-stun"}]),
    }})  # fmt: skip


def test_probe_an_app_then_the_store_answers_per_feature(lab: Lab, tmp_path: Path) -> None:
    """`probe --app`: web reached, the call relay silent; the store says so feature by feature."""
    catalogue = _viber(tmp_path, lab, "stun-silent")
    output = tmp_path / "out.jsonl"
    common = ("--catalogue", str(catalogue), "--output", str(output), "--cc", "AZ", "--asn",
              "AS28707", "--resolver", lab.ports["dns"], "--timeout", "1.6")  # fmt: skip
    unknown = reachwatch("probe", "--app", "skipe", *common)
    assert unknown.returncode == 2 and "skipe" in unknown.stderr and "viber" in unknown.stderr
    assert not output.exists()  # nothing measured before the mistake was caught
    done = reachwatch("probe", "--app", "viber", *common, env=LAB_IPDB)
    assert done.returncode == 0, done.stderr
    assert "viber/calls" in done.stdout and "udp.timeout" in done.stdout
    (measurement,) = [orjson.loads(line) for line in output.read_bytes().splitlines()]
    assert measurement["test_name"] == "viber" and measurement["probe_cc"] == "AZ"
    db = tmp_path / "r.duckdb"
    ingested = reachwatch("ingest", "--db", str(db), str(output))
    assert "stored 1" in ingested.stdout, ingested.stderr
    rows = reachwatch("verdicts", "--db", str(db), "--test", "viber", "--format", "jsonl")
    found = {r["target"]: (r["verdict"], r["technique"])
             for r in map(orjson.loads, rows.stdout.splitlines())}  # fmt: skip
    assert found == {"viber/web": ("ok", None), "viber/calls": ("blocked", "udp.timeout")}


def test_probe_compares_an_app_direct_and_through_a_proxy(lab: Lab, tmp_path: Path) -> None:
    """`--compare-via`: both paths in one run; the proxy relays TCP only, so calls through it
    are `unsupported` (worth knowing even here), and what works directly is `not-needed`."""
    catalogue = _viber(tmp_path, lab, "stun")
    output, db = tmp_path / "out.jsonl", tmp_path / "r.duckdb"
    common = ("--app", "viber", "--catalogue", str(catalogue), "--output", str(output),
              "--cc", "AZ", "--asn", "AS28707", "--resolver", lab.ports["dns"],
              "--timeout", "1.6")  # fmt: skip
    bad = reachwatch("probe", *common, "--compare-via", "ftp://x:1")
    assert bad.returncode == 2 and "socks5://HOST:PORT" in bad.stderr
    proxy = f"socks5://{LOOPBACK}:{lab.ports['socks5-tcp']}"
    done = reachwatch("probe", *common, "--compare-via", proxy, env=LAB_IPDB)
    assert done.returncode == 0, done.stderr
    assert f"viber/calls via {proxy}" in done.stdout
    reachwatch("ingest", "--db", str(db), str(output))
    rows = reachwatch("verdicts", "--db", str(db), "--format", "jsonl").stdout.splitlines()
    found = {(r["target"], r["via"]): (r["verdict"], r["circumvention"])
             for r in map(orjson.loads, rows)}  # fmt: skip
    assert found == {
        ("viber/web", None): ("ok", None),
        ("viber/calls", None): ("ok", None),
        ("viber/web", proxy): ("ok", "not-needed"),
        ("viber/calls", proxy): ("error", "unsupported"),  # even where not needed
    }


def test_probe_through_an_interface(lab: Lab, tmp_path: Path) -> None:
    calls = [{"ip": LOOPBACK, "port": lab.ports["stun"], "protocol": "udp-stun"}]
    catalogue = write_catalogue(tmp_path / "apps.yaml", {"zoom": {"calls": ("any", calls)}})
    output = tmp_path / "out.jsonl"
    common = ("--app", "zoom", "--catalogue", str(catalogue), "--output", str(output),
              "--cc", "AZ", "--asn", "AS28707", "--timeout", "1.6")  # fmt: skip
    missing = reachwatch("probe", *common, "--interface", "nosuch0")
    assert missing.returncode == 2 and "interface 'nosuch0'" in missing.stderr
    done = reachwatch("probe", *common, "--interface", "lo")
    assert done.returncode == 0, done.stderr
    (measurement,) = [orjson.loads(line) for line in output.read_bytes().splitlines()]
    assert measurement["test_keys"]["x_via"] == "interface:lo"
    assert measurement["test_keys"]["x_reachwatch"]["calls"]["verdict"] == "ok"


def test_probe_compares_a_website_direct_and_through_a_proxy(lab: Lab, tmp_path: Path) -> None:
    """web_connectivity through the tunnel: the site resets the probe's own address, the proxy
    reaches it, so the tunnel restores it."""
    output, db = tmp_path / "out.jsonl", tmp_path / "r.duckdb"
    url = f"http://example.test:{lab.ports['reset']}/"
    proxy = f"socks5://{LOOPBACK}:{lab.ports['socks5-tcp']}"
    done = reachwatch(
        "probe", url, "--compare-via", proxy, "--output", str(output), "--cc", "AZ",
        "--asn", "AS28707", "--resolver", lab.ports["dns"], "--source-address", PROBE_ADDRESS,
        "--helper", lab.ports["helper"], "--timeout", "2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    measurements = [orjson.loads(line) for line in output.read_bytes().splitlines()]
    tunnelled = next(m for m in measurements if m["test_keys"]["x_via"])
    assert tunnelled["test_keys"]["socksproxy"] == proxy
    assert tunnelled["test_keys"]["queries"] == []  # the proxy resolved the name
    reachwatch("ingest", "--db", str(db), str(output))
    rows = reachwatch("verdicts", "--db", str(db), "--format", "jsonl").stdout.splitlines()
    found = {r["via"]: (r["verdict"], r["technique"], r["circumvention"])
             for r in map(orjson.loads, rows)}  # fmt: skip
    assert found == {None: ("blocked", "http.reset", None), proxy: ("ok", None, "restored")}
