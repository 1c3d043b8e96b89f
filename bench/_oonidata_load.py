"""Load gzip JSONL measurements into oonidata's models; print its CPU, wall and peak RSS as JSON.

    bench/out/oonidata-venv/bin/python -I bench/_oonidata_load.py FILE...

Runs under oonidata's own venv (built by bench/oonidata.py), isolated (-I) so that neither
reachwatch nor bench/oonidata.py can shadow the `oonidata` package. Each line goes through what
OONI's pipeline does to a raw measurement before making observations: `orjson.loads`, then
`oonidata.dataclient.load_measurement` (the test's mashumaro dataclass, or BaseMeasurement for a
test it has no model for). Files are inflated with ISA-L, as reachwatch's ingest reads them.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
from isal import igzip
from oonidata.dataclient import load_measurement
from oonidata.models.nettests import BaseMeasurement


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    """VmHWM: this process image's own peak, not the parent's inherited through ru_maxrss."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _error_kind(test_name: str, exc: Exception) -> str:
    """Test, exception type and the message's start: one kind per broken field, not per value."""
    return f"{test_name}: {type(exc).__name__}: {str(exc).splitlines()[0][:110]}"


def load(files: list[Path]) -> dict[str, object]:
    start, cpu0 = time.perf_counter(), _cpu()
    loaded = generic = 0
    errors: Counter[str] = Counter()
    for path in files:
        with igzip.open(path, "rb") as stream:
            for line in stream:
                if not line.strip():
                    continue
                raw = orjson.loads(line)
                try:
                    msmt = load_measurement(raw)
                except Exception as exc:  # what failed to load is the figure, not a crash
                    errors[_error_kind(raw.get("test_name", "?"), exc)] += 1
                    continue
                loaded += 1
                generic += type(msmt) is BaseMeasurement
    cpu, wall = _cpu() - cpu0, time.perf_counter() - start
    return {
        "count": loaded + errors.total(),
        "loaded": loaded,
        "generic": generic,
        "failed": errors.total(),
        "top_errors": errors.most_common(5),
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": _peak_rss_mb(),
    }


if __name__ == "__main__":
    print(json.dumps(load([Path(arg) for arg in sys.argv[1:]])))
