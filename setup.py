"""The compiled modules (everything else is in pyproject.toml).

- `reachwatch.model._jsontext` and `reachwatch.pipeline._columns`, in C: see their sources
  for why.
- The analysis (observations, verdicts, fingerprints), compiled from its own typed Python by
  mypyc, as mypy and black compile themselves: the same code, 4.5% fewer instructions to read
  and analyse a measurement and a quarter less time judging it (bench/README.md). So is the
  code every record goes through before it: the reader's lines (`archive/_reader.py`) and the
  parse around msgspec (`model/_parse.py`), 1.1% fewer instructions again, and the loop that
  puts each record's rows in its columns (`pipeline/_rows.py`). The .py files stay the source;
  `./dev` rebuilds when one changes, and the tests refuse a stale build.
"""

import sys

from mypyc.build import mypycify
from setuptools import Extension, setup

COMPILED = [
    "reachwatch/archive/_reader.py",
    "reachwatch/model/_parse.py",
    "reachwatch/pipeline/_observations.py",
    "reachwatch/pipeline/_rows.py",
    "reachwatch/pipeline/fingerprints/__init__.py",
    "reachwatch/pipeline/verdicts/__init__.py",
    "reachwatch/pipeline/verdicts/_common.py",
    "reachwatch/pipeline/verdicts/_reach.py",
    "reachwatch/pipeline/verdicts/apps.py",
    "reachwatch/pipeline/verdicts/circumvention.py",
    "reachwatch/pipeline/verdicts/generic.py",
    "reachwatch/pipeline/verdicts/web_connectivity.py",
]


def compiled_analysis() -> list[Extension]:
    """mypyc type-checks the analysis against the installed libraries before compiling it; a
    build that cannot see them (pip's isolated build of `pip install .`, where only the build's
    requirements are) keeps the analysis in Python: the same results, slower."""
    try:
        return mypycify(COMPILED, group_name="reachwatch_analysis")
    except SystemExit:  # mypy's reasons are printed above
        print("warning: the analysis is not compiled (its libraries are not installed where it "
              "is built: see ./dev); it runs as Python", file=sys.stderr)  # fmt: skip
        return []


def c_module(name: str, source: str) -> Extension:
    return Extension(name, [source], extra_compile_args=["-O2", "-Wall", "-Werror"])


setup(
    ext_modules=[
        c_module("reachwatch.model._jsontext", "reachwatch/model/_jsontext.c"),
        c_module("reachwatch.pipeline._columns", "reachwatch/pipeline/_columns.c"),
        *compiled_analysis(),
    ]
)
