"""Ingest throughput and memory vs parsing the same bytes with orjson alone.

    python -m bench ingest [--count 100000] [--jobs 2] [--workers 2] [--stages] [--again]

Each phase runs in its own process so its peak RSS is its own: `parse` reads the same gzip JSONL
files (inflated with ISA-L, as the ingest does) and only runs orjson.loads on each line; `ingest`
runs reachwatch's whole ingest (raw archive, observations, verdicts, DuckDB) into a fresh
database.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import orjson
from isal import igzip

from .build import OUT, cached

if TYPE_CHECKING:  # the parse-only child imports none of reachwatch: its RSS is orjson's alone
    from distributed import Client

    from reachwatch.pipeline import IngestReport, LocalPool

T = TypeVar("T")
GOAL = 10_000
"""Measurements a second (wall) the issue asks of an ingest on this machine's 2 cores."""


def _peak_rss_mb(pid: str = "self") -> float:
    """VmHWM of a process image (this one's by default): unlike ru_maxrss it does not inherit
    the parent's peak across fork and exec."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _usage(start: float, cpu0: float) -> dict[str, float]:
    return {
        "wall_s": time.perf_counter() - start,
        "cpu_s": _cpu() - cpu0,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def phase_parse(files: list[Path]) -> dict[str, float]:
    start, cpu0 = time.perf_counter(), _cpu()
    count = size = 0
    for path in files:
        with igzip.open(path, "rb") as stream:
            for line in stream:
                if line.strip():
                    orjson.loads(line)
                    count += 1
                    size += len(line)
    return {"count": count, "bytes": size, **_usage(start, cpu0)}


def phase_stage(files: list[Path], stage: str) -> dict[str, float]:
    """The ingest's own first stages alone: read (inflate, split), + typed parse, + rows
    (observations and verdicts), + chunks (gzip members, Arrow tables: all a worker does)."""
    from reachwatch.archive import read_records
    from reachwatch.model import parse_measurement
    from reachwatch.pipeline._ingest import BATCH_SIZE, _rows, analyse, batched
    from reachwatch.pipeline.fingerprints import default_fingerprints

    fps = default_fingerprints()
    start, cpu0 = time.perf_counter(), _cpu()
    count = 0
    records = (record for path in files for record in read_records(path))
    if stage == "chunks":
        for chunk in batched(records, BATCH_SIZE):
            count += analyse(chunk, fps).read
        return {"count": count, **_usage(start, cpu0)}
    for record in records:
        count += 1
        if stage == "typed":
            parse_measurement(record.data)
        elif stage == "rows":
            _rows(record, fps)
    return {"count": count, **_usage(start, cpu0)}


def phase_ingest(files: list[Path], db: Path) -> dict[str, float]:
    from reachwatch.pipeline import ingest
    from reachwatch.store import Store

    start, cpu0 = time.perf_counter(), _cpu()
    with Store.for_ingest(db) as store:  # as `reachwatch ingest`
        report = ingest(files, store)
    return {**_counts(report), **_usage(start, cpu0)}


def _counts(report: IngestReport) -> dict[str, float]:
    return {
        "count": report.stored,
        "read": report.read,
        "quarantined": report.quarantined,
        "verdicts": report.verdicts,
        "observations": report.observations,
    }


def phase_dask(files: list[Path], db: Path, workers: int) -> dict[str, float]:
    """The same ingest with a local Dask cluster analysing."""
    from reachwatch.pipeline import ingest_on
    from reachwatch.store import Store

    with Store.for_ingest(db) as store:
        report, usage = _on_cluster(workers, lambda client: ingest_on(client, list(files), store))
    return {**_counts(report), **usage}


def phase_again(db: Path, workers: int, pool: bool = False) -> dict[str, float]:
    """The stored measurements analysed again from the archive (`reprocess` with no paths),
    here or, with workers, in a LocalPool or on a local Dask cluster."""
    from reachwatch.pipeline import reanalyse
    from reachwatch.store import Store

    with Store.for_ingest(db) as store:
        if not workers:
            start, cpu0 = time.perf_counter(), _cpu()
            report = reanalyse(store)
            usage = _usage(start, cpu0)
        elif pool:
            report, usage = _on_pool(workers, lambda pool: reanalyse(store, pool))
        else:
            report, usage = _on_cluster(workers, lambda client: reanalyse(store, client))
    return {"count": report.measurements, "changed": report.changed, **usage}


def _on_cluster(workers: int, work: Callable[[Client], T]) -> tuple[T, dict[str, float]]:
    """`work` with a local Dask cluster (its processes start before the clock)."""
    from distributed import Client

    from reachwatch.pipeline._dask import local_cluster

    with local_cluster(workers) as cluster, Client(cluster) as client:
        return _counted(
            lambda: work(client),
            lambda: sum(client.run(_cpu).values()),
            lambda: max(client.run(_peak_rss_mb).values()),
        )


def phase_pool(files: list[Path], db: Path, jobs: int) -> dict[str, float]:
    """The same ingest with worker processes of this machine analysing (`ingest --jobs`)."""
    from reachwatch.pipeline import ingest_on
    from reachwatch.store import Store

    with Store.for_ingest(db) as store:
        report, usage = _on_pool(jobs, lambda pool: ingest_on(pool, files, store))
    return {**_counts(report), **usage}


def _on_pool(jobs: int, work: Callable[[LocalPool], T]) -> tuple[T, dict[str, float]]:
    """`work` with a LocalPool of `jobs` processes; their CPU and peak RSS are read from /proc
    before they stop (they are not our children)."""
    from reachwatch.pipeline import LocalPool

    with LocalPool(jobs) as pool:
        list(pool.map(abs, range(jobs * 4)))  # the workers started, before the clock
        pids = list(pool._processes)
        return _counted(
            lambda: work(pool),
            lambda: sum(map(_proc_cpu, pids)),
            lambda: max(_peak_rss_mb(str(pid)) for pid in pids),
        )


def _counted(
    work: Callable[[], T], workers_cpu: Callable[[], float], workers_rss: Callable[[], float]
) -> tuple[T, dict[str, float]]:
    """`work` timed: CPU is this process's and every worker's, peak RSS given for this process
    and the largest worker."""
    before = workers_cpu()
    start, cpu0 = time.perf_counter(), _cpu()
    result = work()
    here = _usage(start, cpu0)
    return result, {
        "wall_s": here["wall_s"],
        "cpu_s": here["cpu_s"] + workers_cpu() - before,
        "client_cpu_s": here["cpu_s"],
        "peak_rss_mb": here["peak_rss_mb"],
        "worker_peak_rss_mb": workers_rss(),
    }


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _child(phase: str, files: list[Path], db: Path, workers: int = 0) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.ingest",
            "--phase",
            phase,
            "--db",
            str(db),
            "--workers",
            str(workers),
            *map(str, files),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _remove(db: Path) -> None:
    """A database and its archive, so that every run starts from nothing."""
    for stale in (db, db.with_name(db.stem + "-archive"), Path(str(db) + ".wal")):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench ingest")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=1, help="spread the measurements over days")
    phases = ["parse", "ingest", "dask", "pool", "again", "again-pool", "read", "typed", "rows",
              "chunks"]  # fmt: skip
    parser.add_argument("--phase", choices=phases)
    parser.add_argument(
        "--again", action="store_true", help="also analyse the stored measurements again"
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="also ingest on a local Dask cluster of N workers"
    )
    parser.add_argument(
        "--jobs", type=int, default=0, help="also ingest with N worker processes, no cluster"
    )
    parser.add_argument(
        "--stages", action="store_true", help="also time the ingest's stages one by one"
    )
    parser.add_argument("--db", type=Path, default=OUT / "bench.duckdb")
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    if args.phase:  # inside the child process
        if args.phase == "parse":
            result = phase_parse(args.files)
        elif args.phase == "ingest":
            result = phase_ingest(args.files, args.db)
        elif args.phase == "dask":
            result = phase_dask(args.files, args.db, args.workers)
        elif args.phase == "pool":
            result = phase_pool(args.files, args.db, args.workers)
        elif args.phase in ("again", "again-pool"):
            result = phase_again(args.db, args.workers, pool=args.phase == "again-pool")
        else:
            result = phase_stage(args.files, args.phase)
        print(json.dumps(result))
        return

    files = cached(args.count, args.days)
    db = args.db
    _remove(db)
    parse = _child("parse", files, db)
    run = _child("ingest", files, db)
    ways = [("again", 0, "here"), ("again-pool", args.jobs, f"{args.jobs} processes"),
            ("again", args.workers, f"dask, {args.workers} workers")]  # fmt: skip
    again = [(_child(phase, files, db, n), where) for phase, n, where in ways
             if args.again and (n or where == "here")]  # fmt: skip
    _remove(db)
    parse_rate = parse["count"] / parse["cpu_s"]
    ingest_rate = run["count"] / run["cpu_s"]
    walls = [("in one process", run["count"] / run["wall_s"])]
    rows = [
        ("measurements", f"{run['count']:,} ({parse['bytes'] / 2**20:,.0f} MiB of JSON)"),
        ("orjson parse only: per core", f"{parse_rate:,.0f} msmt/s ({parse['wall_s']:.1f}s wall)"),
        (
            "reachwatch ingest: per core",
            f"{ingest_rate:,.0f} msmt/s ({run['wall_s']:.1f}s wall, "
            f"{walls[0][1]:,.0f} msmt/s wall)",
        ),
        ("ratio ingest / parse only", f"{ingest_rate / parse_rate:.2f}"),
        ("peak RSS: parse only", f"{parse['peak_rss_mb']:,.0f} MB"),
        ("peak RSS: ingest", f"{run['peak_rss_mb']:,.0f} MB"),
        ("observations, verdicts", f"{run['observations']:,}, {run['verdicts']:,}"),
        ("quarantined", f"{run['quarantined']:,}"),
    ]
    for phase, n, name in (("pool", args.jobs, "processes"), ("dask", args.workers, "dask")):
        if not n:
            continue
        spread = _child(phase, files, db, n)
        _remove(db)
        rate = spread["count"] / spread["cpu_s"]
        wall = spread["count"] / spread["wall_s"]
        walls.append((f"{name}, {n} workers", wall))
        rows += [
            (
                f"{name}, {n} workers: per core",
                f"{rate:,.0f} msmt/s ({spread['wall_s']:.1f}s wall, "
                f"{wall:,.0f} msmt/s wall; this process "
                f"{spread['client_cpu_s']:.0f} CPU s of {spread['cpu_s']:.0f})",
            ),
            (f"ratio {name} / parse only", f"{rate / parse_rate:.2f}"),
            (f"peak RSS: {name}, this process", f"{spread['peak_rss_mb']:,.0f} MB"),
            (f"peak RSS: {name}, largest worker", f"{spread['worker_peak_rss_mb']:,.0f} MB"),
        ]
        assert (spread["count"], spread["verdicts"]) == (run["count"], run["verdicts"])
    met = [f"{way} ({wall:,.0f})" for way, wall in walls if wall >= GOAL]
    rows.append((f"goal, {GOAL:,} msmt/s wall", f"met by {', '.join(met)}" if met else "not met"))
    for result, where in again:
        rate = result["count"] / result["cpu_s"]
        rows.append((f"analysed again ({where}): per core", f"{rate:,.0f} msmt/s "
                     f"({result['count'] / result['wall_s']:,.0f} msmt/s wall, "
                     f"{result['changed']:,.0f} verdicts changed)"))  # fmt: skip
    if args.stages:
        previous = 0.0
        for stage, label in (
            ("read", "read: inflate and split lines"),
            ("typed", "+ decode into typed measurements"),
            ("rows", "+ observations and verdicts"),
            ("chunks", "+ Arrow tables, gzip members of what is not kept whole (a worker's share)"),
        ):
            result = _child(stage, files, db)
            per = result["cpu_s"] / result["count"] * 1e6
            rows.append((label, f"{per:,.0f} us/msmt (+{per - previous:,.0f})"))
            previous = per
        whole = run["cpu_s"] / run["count"] * 1e6
        rows.append(
            (
                "+ dedup, archive files and DuckDB (whole ingest)",
                f"{whole:,.0f} us/msmt (+{whole - previous:,.0f})",
            )
        )
        rows.append(("orjson parse only", f"{parse['cpu_s'] / parse['count'] * 1e6:,.0f} us/msmt"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
