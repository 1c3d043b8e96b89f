"""Build N measurements from the bundled real samples: new uid, time, country and network each.

The variants keep every test_keys byte of the real measurement they come from, so parsing and
analysis cost what real data costs; only the base keys that partition and identify change.
"""

from __future__ import annotations

import gzip
import random
import time
from datetime import datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
SAMPLES = ROOT / "samples" / "ooni"
NETWORKS = [
    ("AZ", 28707),
    ("AZ", 29049),
    ("AZ", 8111),
    ("IR", 197207),
    ("IR", 44244),
    ("RU", 12389),
    ("TR", 9121),
    ("CN", 4134),
    ("UG", 37075),
    ("ID", 23693),
    ("BR", 28573),
    ("IT", 30722),
    ("US", 7922),
    ("DE", 3320),
    ("MM", 136255),
    ("EG", 8452),
    ("PK", 45595),
    ("KZ", 9198),
]


def templates() -> list[dict]:
    seen: set[bytes] = set()
    out = []
    for path in sorted(SAMPLES.rglob("*.json")):
        data = path.read_bytes()
        if data in seen:
            continue
        seen.add(data)
        out.append(orjson.loads(data))
    return out


def variants(count: int, days: int = 1, seed: int = 7) -> list[dict]:
    """`count` measurements made from the samples, with start times rising over `days`."""
    rng = random.Random(seed)
    base = templates()
    start = datetime(2024, 5, 1)
    offsets = sorted(rng.randrange(days * 24 * 3600) for _ in range(count))
    out = []
    for i in range(count):
        m = dict(base[i % len(base)])
        cc, asn = NETWORKS[rng.randrange(len(NETWORKS))]
        when = start + timedelta(seconds=offsets[i])
        m["probe_cc"], m["probe_asn"] = cc, f"AS{asn}"
        m["measurement_start_time"] = when.strftime("%Y-%m-%d %H:%M:%S")
        test = str(m.get("test_name", "x")).replace("_", "")
        m["measurement_uid"] = f"{when:%Y%m%d%H%M%S}.{i:06d}_{cc}_{test}_{rng.getrandbits(64):016x}"
        out.append(m)
    return out


def build(
    out_dir: Path, count: int, days: int = 1, per_file: int = 5000, seed: int = 7
) -> list[Path]:
    """Write `count` measurements spread over `days` as gzip JSONL files; returns the files.

    One day of 100,000 measurements is about what OONI receives in two hours, so the archive's
    hour x country x test partitions hold tens of measurements each, as they do for real. Start
    times rise through the files, as in a real feed (OONI's dumps and uploads come in time order).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    measured = variants(count, days, seed)
    files = []
    for part in range(0, count, per_file):
        path = out_dir / f"part-{part // per_file:04d}.jsonl.gz"
        lines = [orjson.dumps(m) for m in measured[part : part + per_file]]
        path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n", compresslevel=1))
        files.append(path)
    return files


def cached(count: int, days: int = 1) -> list[Path]:
    """The files of `count` measurements over `days`, built once into bench/out and reused, so
    that every benchmark of that size reads the same bytes."""
    data = OUT / f"measurements-{count}-{days}d-v2"
    if not data.exists():
        t = time.perf_counter()
        build(data, count, days=days)
        print(f"built {count:,} measurements in {time.perf_counter() - t:.1f}s -> {data}")
    return sorted(data.glob("*.jsonl.gz"))
