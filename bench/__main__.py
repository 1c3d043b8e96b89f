"""`python -m bench NAME [args]`: one benchmark (ingest, instructions, lab, probe, events,
serve, oonidata, latency, fuzz)."""

from __future__ import annotations

import sys

from . import events, fuzz, ingest, instructions, lab, latency, oonidata, probe, serve

BENCHMARKS = {
    "ingest": ingest.main,
    "instructions": instructions.main,
    "lab": lab.main,
    "probe": probe.main,
    "events": events.main,
    "serve": serve.main,
    "oonidata": oonidata.main,
    "latency": latency.main,
    "fuzz": fuzz.main,
}


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "ingest"
    if name not in BENCHMARKS:
        raise SystemExit(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    BENCHMARKS[name](sys.argv[2:])


main()
