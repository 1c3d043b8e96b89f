"""Instructions per measurement for reading and analysing, counted by valgrind's callgrind.

    python -m bench instructions [--count 1000]

Seconds on a shared machine move by ten percent from run to run (and this machine's speed
moved by half between two sessions); instructions counted by callgrind are the same for the
same code, input and interpreter. Two children run under callgrind: one only starts (imports,
fingerprints, the input's first file opened), the other also reads and analyses the first
`count` measurements of the 100,000 that `bench ingest` builds (inflating, splitting lines,
parsing, observations, verdicts, Arrow tables: all but the store). The difference, divided by
`count`, is what one measurement costs. Needs valgrind (Debian's package).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from itertools import islice

from .build import cached


def _child(count: int, analyse_too: bool) -> None:
    from reachwatch.archive import read_records
    from reachwatch.pipeline._ingest import analyse
    from reachwatch.pipeline.fingerprints import default_fingerprints

    fps = default_fingerprints()
    records = read_records(cached(100_000)[0])
    if analyse_too:
        analyse(islice(records, count), fps)
    records.close()


def _instructions(count: int, analyse_too: bool) -> int:
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m",
         "bench.instructions", "--child", "analyse" if analyse_too else "start",
         "--count", str(count)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no count:\n{run.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench instructions")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--child", choices=["start", "analyse"])
    args = parser.parse_args(argv)
    if args.child:
        _child(args.count, args.child == "analyse")
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    cached(100_000)
    start = _instructions(args.count, analyse_too=False)
    whole = _instructions(args.count, analyse_too=True)
    print(f"{'measurements read and analysed':40s} {args.count:,}")
    print(f"{'instructions per measurement':40s} {(whole - start) / args.count / 1e6:.3f} M")


if __name__ == "__main__":
    main()
