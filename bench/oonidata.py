"""reachwatch's whole ingest against OONI's own parser, oonidata, on the same measurements.

    python -m bench oonidata [--count 100000] [--days 1]

oonidata is pinned into a venv of its own (bench/out/oonidata-venv, built once), never into .venv:
its dependencies (boto3, mashumaro, lxml, ...) are none of reachwatch's. Every phase runs in its
own process on the same gzip JSONL files as `bench ingest` (the folder is shared): bench.ingest's
`parse` (orjson alone) and `ingest` (archive, observations, verdicts, DuckDB) and `typed` (our own
decode into typed models, the step that matches oonidata's), and bench/_oonidata_load.py under
oonidata's venv (orjson, then oonidata's load_measurement, as OONI's pipeline does).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from .build import OUT, cached
from .ingest import _child, _remove

OONIDATA = "oonidata==0.3.0"
VENV = OUT / "oonidata-venv"
LOADER = Path(__file__).with_name("_oonidata_load.py")


def oonidata_python() -> Path:
    """The venv's python, built once per set of pins. isal and orjson are pinned to ours, so that
    inflating and JSON decoding cost the same on both sides and only the models differ."""
    pins = [OONIDATA, f"isal=={version('isal')}", f"orjson=={version('orjson')}"]
    python, marker = VENV / "bin" / "python", VENV / ".installed"
    if marker.exists() and marker.read_text() == " ".join(pins):
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    log = VENV / "pip.log"
    with log.open("w") as out:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", *pins],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if done.returncode:
        raise SystemExit(f"pip install {' '.join(pins)} failed: see {log}")
    marker.write_text(" ".join(pins))
    return python


def _load(python: Path, files: list[Path]) -> dict:
    out = subprocess.run(
        [str(python), "-I", str(LOADER), *map(str, files)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench oonidata")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=1, help="spread the measurements over days")
    parser.add_argument("--db", type=Path, default=OUT / "oonidata-bench.duckdb")
    args = parser.parse_args(argv)

    python = oonidata_python()
    files = cached(args.count, args.days)
    _remove(args.db)
    parse = _child("parse", files, args.db)
    typed = _child("typed", files, args.db)
    ooni = _load(python, files)
    full = _child("ingest", files, args.db)
    _remove(args.db)

    phases = [
        ("orjson parse only (reachwatch venv)", parse),
        ("reachwatch typed decode (msgspec models)", typed),
        (f"oonidata {OONIDATA.split('==')[1]} load_measurement (orjson + models)", ooni),
        ("reachwatch full ingest (archive, observations, verdicts, DuckDB)", full),
    ]
    n = parse["count"]  # every phase reads the same lines; per measurement is per line read
    assert typed["count"] == ooni["count"] == full["read"] == n, (typed, ooni, full)
    width = max(len(name) for name, _ in phases)
    print(f"{n:,} measurements, {parse['bytes'] / 2**20:,.0f} MiB of JSON")
    print(f"{'phase':<{width}}  {'per core':>13}  {'us/msmt':>7}  {'wall':>6}  {'peak RSS':>8}")
    for name, r in phases:
        print(
            f"{name:<{width}}  {n / r['cpu_s']:>7,.0f} msmt/s  "
            f"{r['cpu_s'] / n * 1e6:>7,.0f}  {r['wall_s']:>5.1f}s  "
            f"{r['peak_rss_mb']:>5,.0f} MB"
        )
    ratio = ooni["cpu_s"] / full["cpu_s"]  # the same n on both sides
    print(f"ratio reachwatch full ingest / oonidata load (per-core rates): {ratio:.2f}")
    print(
        f"oonidata: {ooni['loaded']:,} loaded ({ooni['generic']:,} as the generic "
        f"BaseMeasurement), {ooni['failed']:,} raised; reachwatch stored {full['count']:,}, "
        f"quarantined {full['quarantined']:,}"
    )
    for kind, times in ooni["top_errors"]:
        print(f"  {times:>6,}  {kind}")
