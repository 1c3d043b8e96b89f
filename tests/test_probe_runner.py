"""The probe runner and the `reachwatch probe` / `reachwatch helper` commands on loopback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest

from reachwatch.probe import NetConfig
from reachwatch.probe.helper import serve
from reachwatch.probe.runner import Skipped, read_test_list, run, valid_targets
from reachwatch.probe.web_connectivity import ProbeContext

from .netlab import LOOPBACK, dns_server, web_server

PROBE_ADDRESS = "127.0.0.2"


class Lab:
    """Servers on loopback in a thread of their own, for commands run as separate processes."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ports: dict[str, Any] = {}
        self._ready = threading.Event()
        self._stop: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),))

    async def _main(self) -> None:
        self._stop = self.loop.create_future()
        async with AsyncExitStack() as stack:
            self.ports["page"] = await stack.enter_async_context(web_server())
            self.ports["reset"] = await stack.enter_async_context(
                web_server("reset", only_for=PROBE_ADDRESS)
            )
            zone = {"example.test": [LOOPBACK]}
            self.ports["dns"] = await stack.enter_async_context(dns_server(zone))
            started: asyncio.Future[int] = self.loop.create_future()
            net = NetConfig(resolver=self.ports["dns"], timeout=2)
            task = asyncio.create_task(serve(LOOPBACK, 0, net, started=started))
            self.ports["helper"] = f"http://{LOOPBACK}:{await started}/"
            self._ready.set()
            await self._stop
            task.cancel()

    def __enter__(self) -> Lab:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(10)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


def reachwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reachwatch", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


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
        from reachwatch.probe._http import post_json

        return await post_json(url, {"http_request": f"http://{LOOPBACK}:{lab.ports['page']}/"})

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
    from reachwatch.probe._http import post_json

    reply, failure = asyncio.run(post_json(lab.ports["helper"], {"http_request": "ftp://x/"}))
    assert reply is None and failure == "unknown_failure: the helper answered HTTP 400"


def test_concurrency_is_bounded_and_hanging_sites_overlap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """10 hanging sites, 5 at a time: 5 measurements run at once, never more, never fewer."""
    import reachwatch.probe.runner as runner

    peak = current = 0
    real_measure = runner.measure

    async def counted(url: str, context: ProbeContext) -> dict[str, Any]:
        nonlocal peak, current
        current += 1
        peak = max(peak, current)
        try:
            return await real_measure(url, context)
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
