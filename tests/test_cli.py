"""The `reachwatch` command, run as a user runs it (a real process, a real DuckDB file)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from .conftest import FASTPATH, SAMPLES, reachwatch


def run(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = reachwatch(*args, env=env)
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "cli.duckdb"
    out = run("ingest", "--db", str(path), str(SAMPLES))
    assert "read 99 = stored 98 + duplicates 1 + quarantined 0" in out.stdout
    return path


def test_verdicts_jsonl_rows_carry_the_stable_fields(db: Path) -> None:
    out = run("verdicts", "--db", str(db), "--cc", "IR", "--format", "jsonl").stdout
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert rows
    for row in rows:
        assert {
            "measurement_uid",
            "test_name",
            "probe_cc",
            "probe_asn",
            "measurement_start_time",
            "target",
            "verdict",
            "technique",
        } <= row.keys()
        assert row["probe_cc"] == "IR" and row["probe_asn"].startswith("AS")
    assert {r["technique"] for r in rows if r["verdict"] == "blocked"} == {"dns.bogon"}


def test_verdicts_filter_by_test_and_honour_the_env_var(db: Path) -> None:
    out = run(
        "verdicts", "--test", "whatsapp", "--format", "jsonl", env={"REACHWATCH_DB": str(db)}
    ).stdout
    targets = sorted(orjson.loads(line)["target"] for line in out.splitlines())
    assert targets == ["whatsapp/messaging", "whatsapp/registration", "whatsapp/web"]


def test_status_shows_latest_verdict_per_network(db: Path) -> None:
    out = run("status", "--db", str(db), "--cc", "IR", "--format", "json").stdout
    rows = orjson.loads(out)
    assert {r["target"] for r in rows} == {
        "https://fa.wikipedia.org",
        "https://www.facebook.com/",
        "https://yooz.ir/",
    }
    assert all(r["probe_cc"] == "IR" for r in rows)
    table = run("status", "--db", str(db), "--cc", "IR").stdout
    assert "dns.bogon" in table and "AS197207" in table


def test_ingest_twice_reports_duplicates(db: Path) -> None:
    out = run("ingest", "--db", str(db), str(FASTPATH / "tor.json")).stdout
    assert "read 1 = stored 0 + duplicates 1 + quarantined 0" in out


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    missing = run("status", "--db", str(tmp_path / "none.duckdb"), check=False)
    assert missing.returncode == 2
    assert "no such database" in missing.stderr
    bad_path = run(
        "ingest", "--db", str(tmp_path / "x.duckdb"), str(tmp_path / "nope"), check=False
    )
    assert bad_path.returncode == 2
    assert "no such file or folder" in bad_path.stderr
    not_db = tmp_path / "text.duckdb"
    not_db.write_text("hello")
    wrong = run("status", "--db", str(not_db), check=False)
    assert wrong.returncode == 2 and "error:" in wrong.stderr
