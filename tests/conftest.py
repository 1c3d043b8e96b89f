"""Shared fixtures: the bundled real samples, a fresh store, and measurement builders."""

from __future__ import annotations

import ast
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from reachwatch.store import Store

from .netlab import Lab

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "ooni"
FASTPATH = SAMPLES / "fastpath"
GENERATED = SAMPLES / "minipipeline" / "generated"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test a stale build: a compiled module (setup.py) shadows its source, so an
    edit not yet compiled would pass or fail tests with the old code."""
    if stale := stale_builds():
        pytest.exit(f"compiled modules older than their source or missing: {', '.join(stale)};"
                    " rebuild them with ./dev (its set-up)", returncode=3)  # fmt: skip


def stale_builds(root: Path = ROOT) -> list[str]:
    """The sources setup.py compiles whose compiled module is missing or older than them."""
    tree = ast.parse((root / "setup.py").read_text())
    sources = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
               and isinstance(node.value, str) and node.value.startswith("reachwatch/")
               and node.value.endswith((".py", ".c"))]  # fmt: skip
    stale = []
    for source in sources:
        path = root / source
        built = list(path.parent.glob(f"{path.stem}.*.so"))
        if not built or max(b.stat().st_mtime for b in built) < path.stat().st_mtime:
            stale.append(source)
    return stale


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "r.duckdb") as s:
        yield s


def measurement(test_name: str, test_keys: Any, **base: Any) -> dict[str, Any]:
    """A minimal OONI measurement (df-000 base keys) around the given test_keys."""
    m: dict[str, Any] = {
        "data_format_version": "0.2.0",
        "input": None,
        "measurement_start_time": "2024-05-01 12:00:00",
        "probe_asn": "AS28707",
        "probe_cc": "AZ",
        "probe_network_name": "AzerTelecom",
        "report_id": "20240501T120000Z_test_AZ_28707_n1_abc",
        "software_name": "reachwatch-tests",
        "software_version": "0.0.0",
        "test_name": test_name,
        "test_runtime": 1.0,
        "test_start_time": "2024-05-01 12:00:00",
        "test_version": "0.1.0",
        "test_keys": test_keys,
    }
    m.update(base)
    return m


def write_catalogue(
    path: Path, apps: dict[str, dict[str, Any]], networks: dict[str, list[int]] | None = None
) -> Path:
    """A catalogue file for lab apps: {app: {feature: (rule, [endpoint, ...])}}, each endpoint
    a mapping as in apps.yaml (its `source` is the lab); `networks` per app if given."""
    document = {
        "version": 1,
        "apps": {
            key: {
                "name": f"Lab {key}",
                "networks": (networks or {}).get(key, []),
                "features": {
                    name: {"rule": rule, "endpoints": [{"source": "lab", **e} for e in endpoints]}
                    for name, (rule, endpoints) in features.items()
                },
            }
            for key, features in apps.items()
        },
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def dumps(m: dict[str, Any]) -> bytes:
    return orjson.dumps(m)


def sample(name: str) -> bytes:
    return (FASTPATH / name).read_bytes()


def scenario(name: str) -> bytes:
    return (GENERATED / name / "measurement.json").read_bytes()


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """Loopback servers (pages, a censor on the probe's path, a resolver, the test helper)."""
    with Lab() as running:
        yield running


def reachwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The `reachwatch` command as a user runs it: a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "reachwatch", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_serving(base: str, process: subprocess.Popen[str], seconds: float) -> None:
    """Poll /healthz until the server answers; fail at once if it exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited ({process.returncode}) before it answered")
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{base} did not answer within {seconds} s")


@contextlib.contextmanager
def serving(db: Path, *extra: str) -> Iterator[str]:
    """`reachwatch serve` on a free loopback port, as a user starts it; yields its base URL
    (no trailing slash) once it answers, and stops it afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "reachwatch", "serve", "--db", str(db), "--port", str(port),
         *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process, 30)
        yield base
    finally:
        process.terminate()
        process.wait(10)
