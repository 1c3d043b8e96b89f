"""The server under load, on loopback: probes submitting while readers ask for answer cards.

    python -m bench serve [--probes 50] [--count 20000] [--readers 20]

Starts `reachwatch serve` on a fresh store; `--probes` threads submit `--count` measurements
(made from the bundled samples, bench/build.py) with OONI's flow, one report per test and
network, while `--readers` threads fetch answer cards in a loop. Prints the submission
throughput, p50/p95 latency of submissions and of answers, and checks, once the server has
stopped, that every acknowledged measurement is stored exactly once. Bounded: it ends when the
submissions are done (or after 30 minutes)."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from reachwatch.store import Store

from .build import variants

LIMIT = 30 * 60.0


def _post(url: str, body: Any) -> Any:
    request = urllib.request.Request(url, orjson.dumps(body), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as reply:
        return orjson.loads(reply.read())


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench serve")
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--readers", type=int, default=20)
    args = parser.parse_args(argv)
    measurements = variants(args.count)
    with tempfile.TemporaryDirectory(prefix="reachwatch-bench-serve-") as folder:
        db = Path(folder) / "serve.duckdb"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen(
            [sys.executable, "-m", "reachwatch", "serve", "--db", str(db), "--port", str(port),
             "--rate", "1000000", "--alert-interval", "3600"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        submit_times: list[float] = []
        read_times: list[float] = []
        acknowledged: list[str] = []
        failures: list[str] = []
        done = threading.Event()
        lock = threading.Lock()

        def submitter(share: list[dict[str, Any]]) -> None:
            reports: dict[tuple[str, str, str], str] = {}
            for m in share:
                key = (m["test_name"], m["probe_cc"], m["probe_asn"])
                try:
                    if key not in reports:
                        reports[key] = _post(f"{base}/report", {
                            "test_name": key[0], "probe_cc": key[1], "probe_asn": key[2],
                            "format": "json"})["report_id"]  # fmt: skip
                    began = time.perf_counter()
                    reply = _post(f"{base}/report/{reports[key]}",
                                  {"format": "json", "content": m})  # fmt: skip
                    took = time.perf_counter() - began
                    with lock:
                        submit_times.append(took)
                        acknowledged.append(reply["measurement_uid"])
                except (OSError, urllib.error.URLError, KeyError) as exc:
                    with lock:
                        failures.append(str(exc))
            for report in reports.values():
                _post(f"{base}/report/{report}/close", {})

        def reader(number: int) -> None:
            subjects = ["whatsapp", "telegram", "signal", "facebook_messenger"]
            countries = ["AZ", "IR", "RU", "TR"]
            k = number
            while not done.is_set():
                url = (f"{base}/api/v1/answer?subject={subjects[k % 4]}&probe_cc="
                       f"{countries[(k // 4) % 4]}&at=2024-05-02")  # fmt: skip
                began = time.perf_counter()
                try:
                    urllib.request.urlopen(url, timeout=120).read()
                    with lock:
                        read_times.append(time.perf_counter() - began)
                except OSError as exc:
                    with lock:
                        failures.append(f"read: {exc}")
                k += 1

        shares = [measurements[i :: args.probes] for i in range(args.probes)]
        probes = [threading.Thread(target=submitter, args=(s,)) for s in shares]
        readers = [threading.Thread(target=reader, args=(i,)) for i in range(args.readers)]
        began = time.monotonic()
        for thread in (*probes, *readers):
            thread.start()
        for thread in probes:
            thread.join(max(1.0, LIMIT - (time.monotonic() - began)))
        elapsed = time.monotonic() - began
        done.set()
        for thread in readers:
            thread.join(120)
        server.terminate()
        server.wait(60)
        with Store(db, read_only=True) as store:
            stored = store.execute("SELECT count(*), count(DISTINCT measurement_uid) "
                                   "FROM measurements").fetchone()  # fmt: skip
    total, distinct = stored if stored else (0, 0)
    unique_acks = len(set(acknowledged))
    print(f"{args.probes} probes submitting {args.count:,} measurements, {args.readers} readers "
          f"of answer cards, loopback, one store")  # fmt: skip
    print(f"submissions: {len(acknowledged):,} acknowledged in {elapsed:.1f} s = "
          f"{len(acknowledged) / elapsed:.0f}/s; latency p50 {_pct(submit_times, 0.5):.1f} ms, "
          f"p95 {_pct(submit_times, 0.95):.1f} ms")  # fmt: skip
    print(f"answer cards: {len(read_times):,} served meanwhile; latency p50 "
          f"{_pct(read_times, 0.5):.1f} ms, p95 {_pct(read_times, 0.95):.1f} ms")  # fmt: skip
    exact = total == distinct == unique_acks
    print(
        f"stored: {total:,} rows, {distinct:,} distinct; acknowledged {unique_acks:,} distinct: "
        f"{'every acknowledged measurement stored exactly once' if exact else 'MISMATCH'}"
    )
    if failures:
        print(f"failures: {len(failures)}, e.g. {failures[0]}")
