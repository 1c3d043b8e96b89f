"""Ingest: every input format, the raw archive, idempotence, reconciliation and bad input."""

from __future__ import annotations

import contextlib
import gc
import gzip
import hashlib
import io
import shutil
import threading
import uuid
import weakref
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from isal import isal_zlib

from reachwatch import ReachwatchError, StoreError
from reachwatch.archive import (
    ArchiveReader,
    RawLocation,
    measurement_files,
    read_raw,
    read_records,
)
from reachwatch.archive._reader import Gunzip, InflatedAhead
from reachwatch.pipeline import IngestReport, ingest, quarantined, reanalyse
from reachwatch.pipeline._ingest import (
    QUARANTINE_INLINE,
    Analysed,
    analyse,
    batched,
    write_all,
)
from reachwatch.store import Store
from reachwatch.store._schema import INGEST_COLUMNS, UID_TIME

from .conftest import FASTPATH, GENERATED, dumps, measurement, sample


def _counts(store: Store) -> dict[str, int]:
    return {
        table: store.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
        for table in ("measurements", "observations", "verdicts", "quarantine")
    }


def _dump(store: Store, where: bool = True) -> dict[str, list[tuple[object, ...]]]:
    """Every stored row, ordered: to show that nothing stored before changes. Without `where`,
    not where the archive keeps a measurement (two runs archive in files of their own)."""
    skip = "ingest_id, source" + ("" if where else ", raw_path, raw_offset, raw_index")
    return {
        "measurements": store.execute(
            f"SELECT * EXCLUDE ({skip}) FROM measurements ORDER BY measurement_uid"
        ).fetchall(),
        "verdicts": store.execute("SELECT * FROM verdicts ORDER BY ALL").fetchall(),
        "observations": store.execute("SELECT * FROM observations ORDER BY ALL").fetchall(),
        "quarantine": store.execute(
            "SELECT sha256, reason, size FROM quarantine ORDER BY sha256"
        ).fetchall(),
    }


def test_formats_json_jsonl_gzip_and_ooni_layout(tmp_path: Path, store: Store) -> None:
    wc = sample("web_connectivity_ir_fp.json")
    wa = sample("whatsapp.json")
    one = tmp_path / "one.json"
    one.write_bytes(wc)  # pretty-printed single document
    lines = tmp_path / "many.jsonl"
    lines.write_bytes(orjson.dumps(orjson.loads(wa)) + b"\n\n")
    gz = tmp_path / "many.jsonl.gz"
    gz.write_bytes(gzip.compress(orjson.dumps(orjson.loads(sample("signal_022.json"))) + b"\n"))
    layout = tmp_path / "raw" / "20221118" / "10" / "IT" / "telegram"
    layout.mkdir(parents=True)
    (layout / "x.jsonl.gz").write_bytes(
        gzip.compress(orjson.dumps(orjson.loads(sample("telegram_nourl.json"))))
    )
    one_gz = tmp_path / "single.json.gz"
    one_gz.write_bytes(gzip.compress(sample("tor.json")))

    report = ingest([one, lines, gz, tmp_path / "raw", one_gz], store)

    assert (report.read, report.stored, report.duplicates, report.quarantined) == (5, 5, 0, 0)
    assert report.reconciled
    tests = {r[0] for r in store.execute("SELECT test_name FROM measurements").fetchall()}
    assert tests == {"web_connectivity", "whatsapp", "signal", "telegram", "tor"}


def test_raw_archive_keeps_the_bytes_as_received_in_oonis_layout(
    tmp_path: Path, store: Store
) -> None:
    data = sample("web_connectivity_ir_fp.json").strip()
    path = tmp_path / "m.json"
    path.write_bytes(data)
    ingest([path], store)
    raw_path, offset, index, size = store.execute(
        "SELECT raw_path, raw_offset, raw_index, raw_size FROM measurements"
    ).fetchone()  # type: ignore[misc]
    assert raw_path.startswith("raw/20220815/19/IR/web_connectivity/")
    assert raw_path.endswith(".jsonl.gz")
    assert read_raw(store.archive_root, RawLocation(raw_path, offset, index)) == data
    assert size == len(data)


def test_a_gzip_input_is_kept_as_it_came_and_its_lines_read_back(
    tmp_path: Path, store: Store
) -> None:
    """A gzip file's records are not compressed again: the archive keeps the file (a can) and
    each measurement is its line there, counted across gzip members, blank lines included."""
    lines = [dumps(measurement("tor", {"failure": None}, measurement_uid=f"u{i}"))
             for i in range(3)]  # fmt: skip
    path = tmp_path / "feed.jsonl.gz"
    path.write_bytes(
        gzip.compress(lines[0] + b"\n\n" + b"{not json}\n")
        + gzip.compress(b"  " + lines[1] + b"\r\n" + lines[2])
    )
    report = ingest([path], store)
    assert (report.stored, report.quarantined) == (3, 1)
    rows = store.execute(
        "SELECT measurement_uid, raw_path, raw_offset, raw_index FROM measurements "
        "ORDER BY raw_index"
    ).fetchall()
    assert [(uid, offset, index) for uid, _, offset, index in rows] == [
        ("u0", 0, 0), ("u1", 0, 3), ("u2", 0, 4)
    ]  # fmt: skip
    can = store.archive_root / rows[0][1]
    assert rows[0][1].startswith("cans/") and {row[1] for row in rows} == {rows[0][1]}
    assert can.read_bytes() == path.read_bytes()
    for (_, *where), data in zip(rows, lines, strict=True):
        assert read_raw(store.archive_root, RawLocation(*where)) == data
    with ArchiveReader(store.archive_root) as reader:  # in order, the can is read once
        assert list(reader.read_all([RawLocation(*row[1:]) for row in rows])) == lines
        missing = list(reader.read_all([RawLocation(rows[0][1], 0, 9)]))
        assert isinstance(missing[0], EOFError)

    cans = sorted(store.archive_root.glob("cans/*/*"))
    assert ingest([path], store).duplicates == 3
    assert sorted(store.archive_root.glob("cans/*/*")) == cans  # nothing new: nothing copied
    assert reanalyse(store).changed == 0

    # a damaged can: re-analysis keeps the rows of what it cannot read, and says why
    damaged = bytearray(can.read_bytes())
    damaged[len(damaged) // 2 : len(damaged) // 2 + 16] = b"\xff" * 16
    can.write_bytes(bytes(damaged))
    again = reanalyse(store)
    assert again.kept >= 1 and all("archive unreadable" in r for r in again.reasons)
    assert store.execute("SELECT count(*) FROM measurements").fetchone() == (3,)


def test_a_uid_that_comes_again_with_another_start_time_is_a_duplicate(
    tmp_path: Path, store: Store
) -> None:
    """Duplicates are looked for by the time the uid begins with, not the start time that
    comes with it: a copy edited or sent again with another start time is not stored twice."""
    uid = "20240501120000.000000_AZ_tor_0123456789abcdef"
    first, later = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(dumps(measurement("tor", {"failure": None}, measurement_uid=uid)) + b"\n")
    edited = measurement("tor", {"failure": None}, measurement_uid=uid)
    edited["measurement_start_time"] = "2023-01-01 00:00:00"
    later.write_bytes(dumps(edited) + b"\n")
    assert ingest([first], store).stored == 1
    report = ingest([later], store)
    assert (report.stored, report.duplicates) == (0, 1)
    rows = store.execute("SELECT measurement_start_time, uid_time FROM measurements").fetchall()
    assert [(str(a), str(b)) for a, b in rows] == [("2024-05-01 12:00:00", "2024-05-01 12:00:00")]
    odd = tmp_path / "c.jsonl"  # a uid that begins with no time: 1970, found all the same
    odd.write_bytes(dumps(measurement("tor", {"failure": None}, measurement_uid="odd")) + b"\n")
    assert ingest([odd], store).stored == 1
    edited = measurement("tor", {"failure": None}, measurement_uid="odd")
    edited["measurement_start_time"] = "2020-01-01 00:00:00"
    odd.write_bytes(dumps(edited) + b"\n")
    assert ingest([odd], store).duplicates == 1


def test_ingesting_the_same_files_twice_changes_nothing(tmp_path: Path, store: Store) -> None:
    first = ingest([FASTPATH, GENERATED], store)
    before = _dump(store)
    archive_files = sorted(p for p in store.archive_root.rglob("*") if p.is_file())
    second = ingest([FASTPATH, GENERATED], store)
    assert second.stored == 0
    assert second.duplicates == first.stored + first.duplicates
    assert second.quarantined == first.quarantined
    assert second.reconciled
    assert _dump(store) == before
    assert sorted(p for p in store.archive_root.rglob("*") if p.is_file()) == archive_files


def test_bundled_samples_reconcile(store: Store) -> None:
    report = ingest([FASTPATH.parent], store)
    assert report.reconciled
    assert report.read == 99
    # report2.json and report2blocked.json are byte-identical in OONI's own test data
    assert report.duplicates == 1
    assert report.quarantined == 0
    counts = _counts(store)
    assert counts["measurements"] == report.stored == 98
    assert counts["observations"] == report.observations > 900
    assert counts["verdicts"] == report.verdicts


def test_analysis_pauses_the_cycle_collector_and_collects_after(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No cycle collection while a chunk is analysed; one after it, which finds the cycles
    analysis made; the collector as it was after, also when the analysis fails, and left
    paused when it was paused before."""
    from reachwatch.pipeline import _ingest

    enabled: list[bool] = []
    rows = _ingest._rows

    def cyclic_rows(*args: Any, **kwargs: Any) -> Any:
        enabled.append(gc.isenabled())
        cycle: list[Any] = []
        cycle.append(cycle)
        found.append(weakref.ref(_Cyclic(cycle)))
        return rows(*args, **kwargs)

    found: list[weakref.ref[_Cyclic]] = []
    monkeypatch.setattr(_ingest, "_rows", cyclic_rows)
    threshold = gc.get_threshold()
    gc.set_threshold(0)  # no collection but those asked for
    try:
        report = ingest([FASTPATH.parent], store)
        alive = [ref for ref in found if ref() is not None]
    finally:
        gc.set_threshold(*threshold)
    assert report.stored and enabled and not any(enabled) and gc.isenabled()
    assert found and not alive  # collected after each chunk

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise _Interrupted

    monkeypatch.setattr(_ingest, "_rows", interrupted)
    with pytest.raises(_Interrupted):
        ingest([FASTPATH.parent], store)
    assert gc.isenabled()
    gc.disable()
    try:
        monkeypatch.setattr(_ingest, "_rows", cyclic_rows)
        ingest([FASTPATH.parent], store)
        assert not gc.isenabled()
    finally:
        gc.enable()


class _Interrupted(BaseException):
    """Not an error analysis quarantines the record for: it ends the ingest."""


class _Cyclic:
    """An object in a reference cycle: only the cycle collector frees it."""

    def __init__(self, cycle: list[Any]) -> None:
        self.cycle = cycle
        cycle.append(self)


def test_unknown_tests_are_stored_and_marked(tmp_path: Path, store: Store) -> None:
    ingest([FASTPATH / "meek.json", FASTPATH / "browser_web.json"], store)
    rows = store.execute("SELECT test_name, known_test FROM measurements ORDER BY 1").fetchall()
    assert rows == [("browser_web", False), ("meek_fronted_requests_test", False)]
    assert _counts(store)["verdicts"] == 0


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = orjson.dumps(orjson.loads(sample("whatsapp.json")))
    cases: dict[str, tuple[Path, str]] = {}

    truncated = tmp_path / "truncated.jsonl.gz"
    whole = gzip.compress(good + b"\n" + dumps(measurement("tor", None)) + b"\n")
    truncated.write_bytes(whole[: len(whole) - 40])
    cases["truncated gzip"] = (truncated, "gzip stream truncated")

    invalid_json = tmp_path / "invalid.jsonl"
    invalid_json.write_bytes(b'{"test_name": "tor", "measurement_start_time": \n')
    cases["invalid JSON"] = (invalid_json, "invalid JSON")

    invalid_utf8 = tmp_path / "utf8.jsonl"
    invalid_utf8.write_bytes(dumps(measurement("tor", None)).replace(b"AZ", b"\xc3\x28", 1) + b"\n")
    cases["invalid UTF-8"] = (invalid_utf8, "invalid UTF-8")

    wrong_types = tmp_path / "types.jsonl"
    wrong_types.write_bytes(
        dumps(measurement("telegram", {"tcp_connect": [{"port": "443"}]})) + b"\n"
    )
    cases["wrong types"] = (wrong_types, "Expected `int | null`, got `str`")

    port = tmp_path / "port.jsonl"  # a port no column holds: it failed the whole batch's write
    port.write_bytes(
        dumps(measurement("whatsapp", {"tcp_connect": [{"ip": "1.2.3.4", "port": 2**40}]})) + b"\n"
    )
    cases["number out of range"] = (port, "Expected `int` <= 65535")

    missing = tmp_path / "missing.jsonl"
    m = measurement("tor", None)
    del m["measurement_start_time"]
    missing.write_bytes(dumps(m) + b"\n")
    cases["missing keys"] = (missing, "missing required field `measurement_start_time`")

    huge = tmp_path / "huge.jsonl"
    body = "x" * (50 * 1024 * 1024)
    huge.write_bytes(
        dumps(measurement("web_connectivity", {"requests": [{"response": {"body": body}}]})) + b"\n"
    )
    cases["50 MB body"] = (huge, "the limit is 16,777,216")

    bomb = tmp_path / "bomb.jsonl"
    bomb.write_bytes(
        b'{"test_name": "tor", "measurement_start_time": "2024-05-01 12:00:00", "test_keys": '
        + b"[" * 200_000
        + b"]" * 200_000
        + b"}\n"
    )
    cases["JSON bomb"] = (bomb, "nesting too deep")
    return cases


@pytest.mark.parametrize(
    "case",
    [
        "truncated gzip",
        "invalid JSON",
        "invalid UTF-8",
        "wrong types",
        "number out of range",
        "missing keys",
        "50 MB body",
        "JSON bomb",
    ],
)
def test_bad_input_is_quarantined_and_loses_nothing(
    tmp_path: Path, store: Store, case: str
) -> None:
    ingest([FASTPATH / "signal_022.json"], store)
    before = _dump(store)
    path, reason = _bad_inputs(tmp_path)[case]
    after_bad = tmp_path / "zz-good-after.json"  # sorted after the bad file: ingest goes on
    shutil.copy(FASTPATH / "tor.json", after_bad)

    report = ingest([path, after_bad], store)

    assert report.reconciled
    assert report.quarantined >= 1
    reasons = [r[0] for r in store.execute("SELECT reason FROM quarantine").fetchall()]
    assert any(reason in r for r in reasons), reasons
    raw = store.execute("SELECT raw, size FROM quarantine").fetchall()
    assert all(size >= len(blob) for blob, size in raw)
    after = _dump(store)
    for table in ("measurements", "verdicts", "observations"):
        assert all(row in after[table] for row in before[table])  # nothing stored changed
    stored = {r[0] for r in store.execute("SELECT test_name FROM measurements").fetchall()}
    assert "tor" in stored  # the good file after the bad one was ingested


def test_truncated_gzip_keeps_the_records_before_the_cut(tmp_path: Path, store: Store) -> None:
    path, _ = _bad_inputs(tmp_path)["truncated gzip"]
    report = ingest([path], store)
    assert report.stored == 1  # the whatsapp line before the cut
    assert report.quarantined == 1
    assert report.read == 2


@pytest.mark.parametrize("ahead", [True, False], ids=["ahead", "inline"])
@pytest.mark.parametrize("damage", ["cut", "corrupt"])
def test_damage_after_many_blocks_loses_no_record_before_it(
    tmp_path: Path, damage: str, ahead: bool
) -> None:
    """The file is inflated in blocks of a MiB (ahead in a thread, or as they are read);
    where a block meets damage, the records before the damage in that block still come out
    (read again past the blocks handed out)."""
    lines = [dumps(measurement("tor", {"pad": "x" * (1000 + i)}, measurement_uid=f"u{i}"))
             for i in range(4000)]  # fmt: skip
    whole = gzip.compress(b"\n".join(lines) + b"\n", compresslevel=1)
    at = len(whole) * 3 // 4
    broken = whole[:at] if damage == "cut" else whole[:at] + b"\xff" * 64 + whole[at + 64 :]
    path = tmp_path / "damaged.jsonl.gz"
    path.write_bytes(broken)
    records = list(read_records(path, ahead=ahead))
    good = [r for r in records if not r.problem]
    assert len(good) > 3 * InflatedAhead.BLOCK // 5000  # well past the first blocks
    assert [r.data for r in good] == lines[: len(good)]
    assert records[-1].problem and len(records) == len(good) + 1
    # at least as many as a reader that never reads ahead finds before the damage (ISA-L's
    # reader inflates up to a corruption, where a 64 KiB chunk of Gunzip's is lost whole)
    with io.BufferedReader(Gunzip(open(path, "rb"))) as plain:
        complete = 0
        with contextlib.suppress(EOFError, OSError, zlib.error, isal_zlib.error):
            while plain.readline().endswith(b"\n"):
                complete += 1
    assert len(good) >= complete > 0


def test_a_reader_left_halfway_stops_its_inflating_thread(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl.gz"
    line = dumps(measurement("tor", {"pad": "x" * 5000}))
    path.write_bytes(gzip.compress((line + b"\n") * 3000, compresslevel=1))
    records = read_records(path)
    next(records)
    records.close()
    assert not [t for t in threading.enumerate() if t.name == "reachwatch-inflate"]


def test_quarantined_bytes_are_kept(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"not": "a measurement"}\n')
    ingest([path], store)
    raw, reason, source, locator = store.execute(
        "SELECT raw, reason, source, locator FROM quarantine"
    ).fetchone()  # type: ignore[misc]
    assert raw == b'{"not": "a measurement"}'
    assert "missing required field" in reason
    assert (source, locator) == (str(path), "line 1")


def test_missing_path_is_a_clear_error(tmp_path: Path, store: Store) -> None:
    from reachwatch import InputError

    with pytest.raises(InputError, match="no such file"):
        ingest([tmp_path / "nope.jsonl"], store)


def test_progress_reports_every_byte_of_every_file(tmp_path: Path, store: Store) -> None:
    big = tmp_path / "big.jsonl.gz"
    line = orjson.dumps(orjson.loads(sample("whatsapp.json")))
    big.write_bytes(gzip.compress(b"\n".join([line] * 300)))  # several MiB inflated
    seen: list[int] = []
    ingest([big, FASTPATH / "tor.json"], store, progress=seen.append)
    assert sum(seen) == big.stat().st_size + (FASTPATH / "tor.json").stat().st_size
    assert len(seen) >= 3  # the big file reported on its way, not only at its end


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    junk=st.lists(st.binary(max_size=200).filter(lambda b: b"\n" not in b), max_size=8),
    good=st.integers(min_value=0, max_value=3),
)
def test_any_mix_of_junk_and_measurements_reconciles(
    tmp_path: Path, junk: list[bytes], good: int
) -> None:
    lines = [dumps(measurement("tor", None, measurement_uid=f"u{i}")) for i in range(good)]
    # hypothesis may replay an example within one tmp_path: each gets a store of its own
    example = tmp_path / uuid.uuid4().hex
    example.mkdir()
    path = example / "mix.jsonl"
    path.write_bytes(b"\n".join(lines + junk) + b"\n")
    with Store(example / "fuzz.duckdb") as store:
        report = ingest([path], store)
        assert report.reconciled
        assert report.stored == good
        blank = sum(1 for j in junk if not j.strip())
        assert report.read == good + len(junk) - blank
        assert report.quarantined == len(junk) - blank


def test_a_schema_1_store_is_upgraded_in_place_keeping_its_rows(tmp_path: Path) -> None:
    """Stores made before circumvention (no `via`, `run_id`): read-only use says how to upgrade;
    the next ingest upgrades them and keeps every row."""
    path = tmp_path / "old.duckdb"
    with Store(path) as store:
        ingest([FASTPATH], store)
        before = _counts(store)
        store.execute("ALTER TABLE verdicts DROP COLUMN via")
        store.execute("ALTER TABLE verdicts DROP COLUMN run_id")
        store.execute("ALTER TABLE verdicts DROP COLUMN probe_network_name")
        store.execute("ALTER TABLE measurements DROP COLUMN uid_time")
        store.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match=r"schema version 1.*ingest` upgrades it"):
        Store(path, read_only=True)
    with Store(path) as store:
        assert _counts(store) == before
        columns = {row[0] for row in store.execute("DESCRIBE verdicts").fetchall()}
        assert {"via", "run_id", "probe_network_name"} <= columns
        named = store.execute(
            "SELECT count(*) FILTER (WHERE v.probe_network_name IS NOT DISTINCT FROM "
            "m.probe_network_name), count(*), count(v.probe_network_name) "
            "FROM verdicts v JOIN measurements m USING (measurement_uid)"
        ).fetchone()
        assert named is not None and named[0] == named[1] and named[2] > 0  # filled from there
        timed = store.execute(
            "SELECT count(*), count(*) FILTER (WHERE uid_time = "
            f"{UID_TIME.format(uid='measurement_uid')}), "
            "count(*) FILTER (WHERE uid_time > TIMESTAMP '2000-01-01') FROM measurements"
        ).fetchone()
        assert timed is not None and timed[0] == timed[1] and timed[2] > 0  # each uid's own
        ingest([FASTPATH], store)  # and it works as a current store: all duplicates now
        assert _counts(store) == before


def test_a_large_quarantined_record_is_kept_whole_in_the_archive(
    tmp_path: Path, store: Store
) -> None:
    """Its row keeps the head: DuckDB must hold large values in memory to checkpoint, and a
    store that cannot checkpoint cannot be written any more."""
    big = b'{"test_name": "tor", "pad": "' + b"x" * (3 << 20) + b'"}'
    small = b'{"not": "a measurement"}'
    path = tmp_path / "bad.jsonl"
    path.write_bytes(big + b"\n" + small + b"\n")
    report = ingest([path], store)
    assert (report.read, report.quarantined) == (2, 2)
    rows = dict(store.execute("SELECT size, octet_length(raw) FROM quarantine").fetchall())
    assert rows == {len(big): QUARANTINE_INLINE, len(small): len(small)}
    assert quarantined(store, hashlib.sha256(big).hexdigest()) == big
    assert quarantined(store, hashlib.sha256(small).hexdigest()) == small
    assert quarantined(store, "0" * 64) is None
    again = ingest([path], store)  # known: not kept twice
    assert again.quarantined == 2
    assert store.execute("SELECT count(*) FROM quarantine").fetchone() == (2,)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30),
    ops=st.lists(
        st.tuples(st.sampled_from(["readline", "read", "line"]), st.integers(-1, 50)),
        max_size=40,
    ),
    block=st.integers(1, 64),
    members=st.integers(1, 3),
    ahead=st.booleans(),
)
def test_reading_ahead_reads_what_a_buffered_gunzip_reads(
    tmp_path: Path,
    lines: list[bytes],
    ops: list[tuple[str, int]],
    block: int,
    members: int,
    ahead: bool,
) -> None:
    """readline, read and line, cut from blocks of any size (inflated ahead or not), hand
    out the bytes a plain buffered reader hands out, line ends and limits included, across
    gzip members."""
    data = b"\n".join(lines)
    cut = len(data) // members or 1
    path = tmp_path / "ahead.jsonl.gz"
    path.write_bytes(b"".join(gzip.compress(data[i : i + cut]) for i in range(0, len(data), cut)))
    with contextlib.ExitStack() as stack:
        stack.enter_context(pytest.MonkeyPatch.context()).setattr(InflatedAhead, "BLOCK", block)
        inflated = stack.enter_context(InflatedAhead(open(path, "rb"), path, ahead=ahead))  # noqa: SIM115
        plain = stack.enter_context(io.BufferedReader(Gunzip(open(path, "rb"))))  # noqa: SIM115
        for op, n in [*ops, ("read", -1)]:
            if op == "line":  # a line without its newline, and whether it had one
                expected = plain.readline(n)
                ended = expected.endswith(b"\n")
                assert inflated.line(n) == (expected[:-1] if ended else expected, ended), n
                continue
            assert getattr(inflated, op)(n) == getattr(plain, op)(n), (op, n)


def test_an_ingest_store_keeps_its_blocks_and_checkpoints_far_apart(tmp_path: Path) -> None:
    """The settings an ingest's throughput was measured with (bench/README.md) are those its
    store opens with; a store for answers keeps DuckDB's defaults for them."""
    settings = "SELECT name, value FROM duckdb_settings() WHERE name IN ({})".format(
        ", ".join(f"'{n}'" for n in ("block_allocator_memory", "checkpoint_threshold", "threads"))
    )
    with Store.for_ingest(tmp_path / "ingest.duckdb") as store:
        assert dict(store.execute(settings).fetchall()) == {
            "block_allocator_memory": "122.0 MiB",
            "checkpoint_threshold": "244.1 MiB",
            "threads": "1",
        }
    with Store(tmp_path / "answers.duckdb") as store:
        ingest_only = dict(store.execute(settings).fetchall())
        assert ingest_only["block_allocator_memory"] == "0 bytes"
        assert ingest_only["checkpoint_threshold"] == "16.0 MiB"


def test_a_measurement_whose_rows_the_store_cannot_hold_is_quarantined_alone(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug that makes a row of the wrong type (here, an observation's port as text) costs
    its measurement, quarantined with the column named; none of its rows is stored, not
    even the measurement's own row that came before the bad one, and the rest are whole."""
    from reachwatch.pipeline import _ingest

    rows = _ingest._rows

    def a_bad_port(record: Any, fps: Any) -> Any:
        measurement, observations, verdicts = rows(record, fps)
        if measurement[3] == "tor":
            observations = [*observations[:-1], observations[-1]._replace(port="443")]
        return measurement, observations, verdicts

    clean = ingest([FASTPATH], store)
    expected = _dump(store)
    with Store(store.path.with_name("bad.duckdb")) as other:
        monkeypatch.setattr(_ingest, "_rows", a_bad_port)
        report = ingest([FASTPATH], other)
        assert report.reconciled and not clean.quarantined
        assert report.quarantined == report.reasons["analysis failed"] >= 1
        reasons = [r for (r,) in other.execute("SELECT reason FROM quarantine").fetchall()]
        assert any(r.startswith("analysis failed: TypeError: column 'port', row ") and
                   r.endswith(": expected int, got str") for r in reasons), reasons  # fmt: skip
        stored = _dump(other)
    tor = {uid for uid, _, _, test, *_ in expected["measurements"] if test == "tor"}
    assert tor
    assert [row[0] for row in stored["measurements"]] == [
        row[0] for row in expected["measurements"] if row[0] not in tor
    ]  # (their archive files are the run's own)
    for table in ("verdicts", "observations"):
        assert stored[table] == [row for row in expected[table] if row[0] not in tor]


def _runs(ingest_ids: list[str]) -> pa.Table:
    """`ingests` rows of runs with these ids (their start, and nothing else, known)."""
    known = {"ingest_id": ingest_ids, "started_at": [datetime(2026, 1, 1)] * len(ingest_ids)}
    return pa.table({c: known.get(c, [None] * len(ingest_ids)) for c in INGEST_COLUMNS})


def test_held_batches_commit_together_or_roll_back_together(tmp_path: Path) -> None:
    """`write_batch(hold=True)` leaves its transaction open for the next batch: a write without
    `hold` commits them all; a failed write, an interrupted one or closing the store rolls
    back every batch held with it, and the store goes on."""
    path = tmp_path / "held.duckdb"

    def stored(store: Store) -> list[str]:  # as another connection sees it: committed rows
        rows = store.con.cursor().execute("SELECT ingest_id FROM ingests ORDER BY 1").fetchall()
        return [row[0] for row in rows]

    class Interrupted:  # a table whose reading is interrupted (Ctrl-C) mid-batch
        @property
        def num_rows(self) -> int:
            raise KeyboardInterrupt

    with Store(path) as store:
        store.write_batch({"ingests": _runs(["a"])}, hold=True)
        store.write_batch({"ingests": _runs(["b", "c"])}, hold=True)
        assert stored(store) == []
        store.write_batch({"ingests": _runs(["d"])})
        assert stored(store) == ["a", "b", "c", "d"]

        store.write_batch({"ingests": _runs(["e"])}, hold=True)
        with pytest.raises(StoreError, match=r"nothing of this batch \(or of the batches held "
                           r"with it\) stored: Constraint Error: .*\ba\b"):  # fmt: skip
            store.write_batch({"ingests": _runs(["f", "a"])}, hold=True)
        store.write_batch({"ingests": _runs(["g"])}, hold=True)
        with pytest.raises(KeyboardInterrupt):
            store.write_batch({"ingests": _runs(["h"]), "verdicts": Interrupted()})
        store.commit()  # nothing held any more: nothing to commit
        assert stored(store) == ["a", "b", "c", "d"]

        store.write_batch({"ingests": _runs(["i"])}, hold=True)
        store.commit()
        store.write_batch({"ingests": _runs(["j"])}, hold=True)
    with Store(path) as store:
        assert stored(store) == ["a", "b", "c", "d", "i"]


def test_batches_held_together_find_the_duplicates_among_them(tmp_path: Path) -> None:
    """A measurement read again while its first copy is held (not committed) is a duplicate,
    as it is when each batch commits: the checks run in the transaction that holds it."""
    again = tmp_path / "again"
    shutil.copytree(FASTPATH, again)
    dumps = []
    for commit_rows in (0, 10**9):
        with Store(tmp_path / f"commit-{commit_rows}.duckdb") as store:
            report = ingest([FASTPATH, again], store, batch_size=8, commit_rows=commit_rows)
            assert report.reconciled and report.duplicates >= report.stored > 8
            dumps.append(_dump(store, where=False))
    assert dumps[0] == dumps[1]


def test_a_failed_ingest_commits_the_whole_batches_it_held(tmp_path: Path) -> None:
    """What stops an ingest outside the store (a worker process that died, say) leaves the
    batches written before it stored: each is whole and archived, so the held transaction
    commits. A failed write of the store is tested above: it stores none of them."""
    files = measurement_files([FASTPATH])
    records = [record for path in files for record in read_records(path)]

    def chunks(failing: bool) -> Iterator[Analysed]:
        for n, batch in enumerate(batched(records, 8)):
            if n == 3:
                if failing:
                    raise ReachwatchError("a worker process died")
                return
            yield analyse(batch)

    with (
        Store(tmp_path / "failed.duckdb") as store,
        pytest.raises(ReachwatchError, match="a worker process died"),
    ):
        write_all(chunks(failing=True), store, files, commit_rows=10**9)
    with Store(tmp_path / "three.duckdb") as three:
        write_all(chunks(failing=False), three, files)
        assert _counts(three)["measurements"] >= 20
        with Store(tmp_path / "failed.duckdb") as store:  # what the failed run left committed
            assert _dump(store, where=False) == _dump(three, where=False)


def test_a_transaction_commits_once_its_rows_or_its_bytes_reach_their_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks are held until the rows written since the last commit reach `commit_rows`, or
    their bytes `COMMIT_BYTES`: then the chunk that reached it commits them all."""
    from reachwatch.archive import ArchiveWriter
    from reachwatch.pipeline import _ingest

    files = measurement_files([FASTPATH])
    records = [record for path in files for record in read_records(path)]
    first, second, third = (analyse(batch) for batch in list(batched(records, 8))[:3])
    rows = [c.measurements.num_rows + c.observations.num_rows + c.verdicts.num_rows
            for c in (first, second)]  # fmt: skip
    with Store(tmp_path / "bounds.duckdb") as store:

        def committed() -> int:
            found = store.con.cursor().execute("SELECT count(*) FROM measurements").fetchone()
            return found[0] if found else -1

        report = IngestReport(ingest_id="run")
        job = _ingest._Job(store, ArchiveWriter(store.archive_root, "run"), report, sum(rows))
        job.write(first)
        assert committed() == 0 and rows[0] < sum(rows)
        job.write(second)
        assert committed() == report.stored > 8
        two = report.stored
        job.commit_rows = 10**9
        monkeypatch.setattr(_ingest, "COMMIT_BYTES", 1)
        job.write(third)  # far fewer rows than their bound, more bytes than theirs
        assert committed() == report.stored > two
