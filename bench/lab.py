"""The lab's speed: a scenario from build to teardown, then the ingest of what it measured.

`python -m bench lab [--scenario FILE] [--runs-per-day N]` runs the scenario (the Azerbaijan
demo by default) in a temporary folder and prints wall time, measurements per second of wall
time, the CPU the lab's processes used (the probes, censors and servers are child processes),
and the ingest. Needs root, like the lab."""

from __future__ import annotations

import argparse
import dataclasses
import resource
import tempfile
import time
from pathlib import Path

from reachwatch.lab.run import run_scenario
from reachwatch.lab.scenario import load_scenario
from reachwatch.pipeline import ingest
from reachwatch.store import Store

DEMO = Path(__file__).parent.parent / "reachwatch" / "lab" / "scenarios" / "az-2017.yaml"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench lab")
    parser.add_argument("--scenario", type=Path, default=DEMO)
    parser.add_argument("--runs-per-day", type=int, default=None, help="override the schedule")
    args = parser.parse_args(argv)
    scenario = load_scenario(args.scenario)
    if args.runs_per_day:
        scenario = dataclasses.replace(scenario, runs_per_day=args.runs_per_day)
    with tempfile.TemporaryDirectory(prefix="reachwatch-bench-lab-") as folder:
        began = time.monotonic()
        result = run_scenario(scenario, Path(folder))
        lab_seconds = time.monotonic() - began
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.monotonic()
        with Store(Path(folder) / "bench.duckdb") as store:
            report = ingest([result.measurements], store)
        ingest_seconds = time.monotonic() - began
    count = result.summary["measurements"]
    runs = result.summary["runs_per_network"]
    print(f"scenario {scenario.name}: {len(scenario.networks)} networks x {runs} runs "
          f"({scenario.days} simulated days), {count} measurements")  # fmt: skip
    print(f"lab: {lab_seconds:.1f} s wall from build to teardown, {count / lab_seconds:.0f} "
          f"measurements/s; the lab's processes used {children.ru_utime + children.ru_stime:.1f}"
          f" s CPU, the largest {children.ru_maxrss / 1024:.0f} MB")  # fmt: skip
    print(f"ingest: {report.stored} stored in {ingest_seconds:.1f} s")
