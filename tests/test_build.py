"""The compiled modules: what setup.py compiles is what the tests and the ingest run."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from .conftest import ROOT, stale_builds


def test_the_analysis_runs_compiled() -> None:
    for name in (
        "reachwatch.pipeline._observations",
        "reachwatch.pipeline._rows",
        "reachwatch.pipeline.fingerprints",
        "reachwatch.pipeline.verdicts.web_connectivity",
        "reachwatch.model._jsontext",
        "reachwatch.pipeline._columns",
    ):
        origin = importlib.util.find_spec(name).origin  # type: ignore[union-attr]
        assert origin is not None and origin.endswith(".so"), (name, origin)
    assert stale_builds() == []


def test_a_source_newer_than_its_build_is_stale(tmp_path: Path) -> None:
    real = (ROOT / "setup.py").read_text()  # its list's shape, with two sources of our own
    (tmp_path / "setup.py").write_text(
        real.replace("reachwatch/pipeline/_observations.py", "reachwatch/a.py").replace(
            '"reachwatch/model/_jsontext.c"', '"reachwatch/b/c.c"'
        )
    )
    package = tmp_path / "reachwatch"
    (package / "b").mkdir(parents=True)
    source, c_source = package / "a.py", package / "b" / "c.c"
    source.write_text("x = 1\n")
    c_source.write_text("/* */\n")
    assert {"reachwatch/a.py", "reachwatch/b/c.c"} <= set(stale_builds(tmp_path))  # not built

    built = package / "a.cpython-311-x86_64-linux-gnu.so"
    built.write_bytes(b"")
    (package / "b" / "c.abi3.so").write_bytes(b"")
    os.utime(source, (1_000_000, 1_000_000))
    os.utime(c_source, (1_000_000, 1_000_000))
    stale = stale_builds(tmp_path)
    assert "reachwatch/a.py" not in stale and "reachwatch/b/c.c" not in stale

    os.utime(built, (900_000, 900_000))  # the source was edited after the build
    assert "reachwatch/a.py" in stale_builds(tmp_path)
