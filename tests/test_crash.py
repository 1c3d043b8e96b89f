"""Crash safety (issue 8): an ingest killed anywhere and run again ends as an uninterrupted one;
a collector killed while probes submit keeps every measurement it acknowledged; a full disk is
one clear error that leaves whole batches behind, and the collector answers it with a 5xx.

Kill points and kill moments come from a seeded RNG: the seed is printed, and
REACHWATCH_CRASH_SEED=<seed> repeats a run's kills.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import http.client
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from bench.build import build, variants
from reachwatch import StoreError
from reachwatch.archive import ArchiveReader, RawLocation, measurement_files, read_records
from reachwatch.pipeline._ingest import BATCH_SIZE
from reachwatch.store import Store, archive_root_for

from .conftest import free_port, measurement, reachwatch, wait_until_serving

MEASUREMENTS = 8000
"""Four batches of the ingest's size (and the bad records): kills land before, inside and
between them."""
COMMIT_ROWS = 30_000
"""Rows between commits in the interrupted runs: two batches of about 24,000 rows each (three
files with worker processes) commit together, so a kill can lose a batch written but held."""
KILLS = 20
CHAINS = 4
"""The kills are shared by this many stores, each killed again and again, then finished."""
SERVER_KILLS = 3
CLIENTS = 6
SEED = int(os.environ.get("REACHWATCH_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))

# what differs between two runs over the same input: where and by which run a row was written
CONTENT = {
    "measurements": "* EXCLUDE (raw_path, raw_offset, raw_index, ingest_id)",
    "observations": "*",
    "verdicts": "*",
    "quarantine": "* EXCLUDE (ingest_id, quarantined_at, raw_path, raw_offset)",
}
# which rows of each table belong to the records `?` names (source:locator)
OF_RECORDS = {
    "measurements": "source IN (SELECT unnest(?::VARCHAR[]))",
    "observations": "measurement_uid IN (SELECT measurement_uid FROM measurements "
    "WHERE source IN (SELECT unnest(?::VARCHAR[])))",
    "verdicts": "measurement_uid IN (SELECT measurement_uid FROM measurements "
    "WHERE source IN (SELECT unnest(?::VARCHAR[])))",
    "quarantine": "source || ':' || locator IN (SELECT unnest(?::VARCHAR[]))",
}


@dataclass
class Corpus:
    """An input folder, its records in the order the ingest reads them, and their digests."""

    folder: Path
    keys: list[str] = field(default_factory=list)  # source:locator, as the store names them
    digests: dict[str, bytes] = field(default_factory=dict)

    def read(self) -> None:
        """Read the folder as the ingest does."""
        for path in measurement_files([self.folder]):
            for record in read_records(path):
                key = f"{record.source}:{record.locator}"
                self.keys.append(key)
                self.digests[key] = hashlib.sha256(record.data).digest()


@dataclass
class Reference:
    """An uninterrupted run over a corpus: its store, its duration, and what it holds."""

    corpus: Corpus
    db: Path
    seconds: float
    contents: dict[str, tuple[int, int]]
    size: int  # bytes of the store and its archive


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The bundled samples made into MEASUREMENTS (bench/build.py), with bad records among
    them (quarantined, one twice) and a measurement twice, ingested in one go."""
    corpus = Corpus(tmp_path_factory.mktemp("corpus"))
    files = build(corpus.folder, MEASUREMENTS, per_file=1000)
    # a measurement read twice: a duplicate
    again = gzip.decompress(files[0].read_bytes()).split(b"\n", 1)[0]
    missing = measurement("tor", None)
    del missing["measurement_start_time"]
    bad = [
        b'{"test_name": "tor", "measurement_start_time": ',
        orjson.dumps(missing),
        orjson.dumps(measurement("telegram", {"tcp_connect": [{"port": "443"}]})),
        b'{"not": "a measurement"}',
        b'{"test_name": "tor", "measurement_start_time": ',
        again,
    ]
    # sorted before part-0003.jsonl.gz: inside the second batch
    (corpus.folder / "part-0003-bad.jsonl").write_bytes(b"\n".join(bad) + b"\n")
    corpus.read()
    return _reference(corpus, tmp_path_factory.mktemp("reference") / "r.duckdb")


@pytest.fixture(scope="module")
def junk(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """Three batches of records that are not JSON: all of them go to the quarantine, in the
    database, so it is the database and not the archive that fills a disk."""
    corpus = Corpus(tmp_path_factory.mktemp("junk"))
    rng = random.Random(SEED)
    lines = [base64.b64encode(rng.randbytes(2400)) for _ in range(3 * BATCH_SIZE)]
    (corpus.folder / "junk.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    corpus.read()
    return _reference(corpus, tmp_path_factory.mktemp("junk-reference") / "r.duckdb")


def _reference(corpus: Corpus, db: Path) -> Reference:
    started = time.monotonic()
    done = _ingest(db, corpus.folder)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    size = sum(p.stat().st_size for p in db.parent.rglob("*") if p.is_file())
    return Reference(corpus, db, seconds, _contents(db), size)


def _ingest(
    db: Path, folder: Path, commit_rows: int | None = None
) -> subprocess.CompletedProcess[str]:
    commit = ["--commit-rows", str(commit_rows)] if commit_rows else []
    return reachwatch("ingest", "--db", str(db), *commit, str(folder))


def _contents(db: Path, records: list[str] | None = None) -> dict[str, tuple[int, int]]:
    """Per table, the count and an order-independent checksum of its content columns (of the
    rows of `records` only, if given): equal stores give equal sums, a row twice does not."""
    out = {}
    with Store(db, read_only=True) as store:
        for table, columns in CONTENT.items():
            where = f"WHERE {OF_RECORDS[table]}" if records is not None else ""
            row = store.execute(
                f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) "
                f"FROM (SELECT {columns} FROM {table} {where}) t",
                [records] if records is not None else [],
            ).fetchone()
            assert row is not None
            out[table] = (int(row[0]), int(row[1]))
    return out


def _assert_archived(db: Path, digests: dict[str, bytes], by: str = "source") -> int:
    """Every measurement row: no uid twice, and its raw bytes read back from the archive are
    those it was sent (`digests` by source or by measurement_uid). Returns how many rows."""
    with Store(db, read_only=True) as store:
        rows = store.execute(
            f"SELECT measurement_uid, {by}, raw_path, raw_offset, raw_index, raw_size "
            "FROM measurements ORDER BY raw_path, raw_offset, raw_index"
        ).fetchall()
        root = store.archive_root
    twice = [uid for uid, n in Counter(row[0] for row in rows).items() if n > 1]
    assert not twice, f"stored twice: {twice[:5]}"
    with ArchiveReader(root) as reader:
        found = reader.read_all([RawLocation(*row[2:5]) for row in rows])
        for (uid, key, *_, size), data in zip(rows, found, strict=True):
            assert isinstance(data, bytes), (uid, data)
            assert len(data) == size and hashlib.sha256(data).digest() == digests[key], uid
    return len(rows)


def _assert_archive_whole(db: Path) -> None:
    """Every archive file reads to its end: no member is there in part (where no writer was
    killed: a write that failed is cut back)."""
    for path in archive_root_for(db).rglob("*.jsonl.gz"):
        problems = [r.problem for r in read_records(path) if r.problem]
        assert not problems, f"{path}: {problems}"


def _stored_records(db: Path) -> list[str]:
    """source:locator of every measurement and quarantine row."""
    with Store(db, read_only=True) as store:
        rows = store.execute(
            "SELECT source FROM measurements UNION ALL "
            "SELECT source || ':' || locator FROM quarantine"
        ).fetchall()
    return [row[0] for row in rows]


def _batches(ref: Reference, by_file: bool) -> dict[str, int]:
    """Each record's batch, in the order they are written: BATCH_SIZE records at a time in
    one process; with worker processes, a file at a time (each file a partition here)."""
    if not by_file:
        return {key: i // BATCH_SIZE for i, key in enumerate(ref.corpus.keys)}
    files = list(dict.fromkeys(key.rsplit(":", 1)[0] for key in ref.corpus.keys))
    return {key: files.index(key.rsplit(":", 1)[0]) for key in ref.corpus.keys}


def _assert_whole_batches(db: Path, ref: Reference, by_file: bool = False) -> int:
    """What `db` holds is exactly what the uninterrupted run stored of the first k batches of
    the input, for some k: no batch in part. Returns k."""
    batch_of = _batches(ref, by_file)
    stored = _stored_records(db)
    batches = max((batch_of[key] + 1 for key in stored), default=0)
    records = [key for key in ref.corpus.keys if batch_of[key] < batches]
    assert _contents(db) == _contents(ref.db, records), f"not {batches} whole batches"
    return batches


def _is_store(db: Path) -> bool:
    """Whether the store was made (a kill can come before)."""
    try:
        with Store(db, read_only=True) as store:
            store.execute("SELECT count(*) FROM measurements")
    except (StoreError, duckdb.CatalogException):
        return False
    return True


def _descendants(pid: int) -> set[int]:
    """The processes `pid` started (and theirs), as /proc lists them now."""
    found: set[int] = set()
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found |= {int(child)} | _descendants(int(child))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_ingest_killed_anywhere_and_run_again_ends_as_an_uninterrupted_one(
    reference: Reference, tmp_path: Path, jobs: str
) -> None:
    """In one process, and with worker processes analysing (which end with it)."""
    rng = random.Random(SEED)
    print(f"seed {SEED}; the uninterrupted ingest took {reference.seconds:.2f} s")
    total = reference.contents["measurements"][0]
    batches = max(_batches(reference, jobs != "1").values()) + 1
    kills = [rng.uniform(0, reference.seconds) for _ in range(KILLS)]
    interrupted = partial = 0
    for chain in range(CHAINS):
        db = tmp_path / f"chain{chain}.duckdb"
        stored = finished = 0
        for at in sorted(kills[chain::CHAINS]):  # later each time: each run gets further
            process = subprocess.Popen(
                [sys.executable, "-m", "reachwatch", "ingest", "--db", str(db), "--jobs", jobs,
                 "--commit-rows", str(COMMIT_ROWS), str(reference.corpus.folder)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            try:
                _, err = process.communicate(timeout=at)
                assert process.returncode == 0, err  # it finished before its kill
                finished += 1
                what = "came after its end"
            except subprocess.TimeoutExpired:
                workers = _descendants(process.pid)
                process.send_signal(signal.SIGKILL)
                process.communicate()
                interrupted += 1
                what = f"interrupted it ({len(workers)} processes of its own)"
                deadline = time.monotonic() + 30
                while any(map(_alive, workers)) and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert not any(map(_alive, workers)), "worker processes outlived their ingest"
            before, stored = (
                stored,
                (_assert_whole_batches(db, reference, jobs != "1") if _is_store(db) else 0),
            )
            partial += 0 < stored < batches
            print(f"chain {chain}: the kill at {at:.2f} s {what}; "
                  f"{before} -> {stored} of {batches} batches stored")  # fmt: skip
        done = _ingest(db, reference.corpus.folder)
        assert done.returncode == 0, done.stderr
        assert _contents(db) == reference.contents
        assert _assert_archived(db, reference.corpus.digests) == total
        runs = _assert_runs_tell_the_story(db, len(reference.corpus.keys))
        # a run killed once its work was done is finished; one killed before it began, absent
        assert runs[-1] and runs.count(True) >= finished + 1 and len(runs) <= KILLS // CHAINS + 1
    print(f"{interrupted} of {KILLS} kills interrupted a run; {partial} left part of the input")
    assert partial, "no kill landed mid-way: the input is too small for this machine"


def _assert_runs_tell_the_story(db: Path, read: int | None = None) -> list[bool]:
    """Every stored row names its run in `ingests`; a run that finished has its counts (it
    read `read` records, if given), reconciled, and its stored count is the rows it stored; a
    run that did not finish (killed, a full disk) is on record without an end or counts.
    Returns, run by run in the order they started, whether each finished."""
    with Store(db, read_only=True) as store:
        runs = store.execute(
            "SELECT i.ingest_id, i.finished_at IS NOT NULL, i.read, i.stored, i.duplicates, "
            "i.quarantined, (SELECT count(*) FROM measurements m WHERE m.ingest_id = i.ingest_id)"
            " FROM ingests i ORDER BY i.started_at"
        ).fetchall()
        orphans = store.execute(
            "SELECT DISTINCT ingest_id FROM measurements UNION SELECT ingest_id FROM quarantine "
            "EXCEPT SELECT ingest_id FROM ingests"
        ).fetchall()
    assert not orphans, f"rows of runs that `ingests` does not know: {orphans}"
    for run, finished, its_read, stored, duplicates, quarantined, own in runs:
        if finished:
            assert its_read == stored + duplicates + quarantined, run
            assert read is None or its_read == read, run
            assert stored == own, run
        else:
            assert its_read is None and stored is None, run
    return [run[1] for run in runs]


@dataclass
class _Submissions:
    """What the clients sent and what the collector acknowledged, across server lives."""

    sent: dict[str, bytes] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    running: int = 0  # client threads
    progress: threading.Condition = field(default_factory=threading.Condition)


def _post(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(url, orjson.dumps(body), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, orjson.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _client(base: str, todo: queue.Queue[dict[str, Any]], out: _Submissions) -> None:
    """A probe: a report per test, then its measurements one by one until the queue is empty
    or the server is gone."""
    reports: dict[str, str] = {}
    while True:
        try:
            m = todo.get_nowait()
        except queue.Empty:
            return
        uid, test = m["measurement_uid"], m["test_name"]
        try:
            if test not in reports:
                meta = {"test_name": test, "probe_cc": m["probe_cc"], "probe_asn": m["probe_asn"]}
                status, opened = _post(f"{base}/report", meta)
                if status != 200:
                    out.errors.append(f"open {test}: {status} {opened}")
                    return
                reports[test] = opened["report_id"]
            out.sent[uid] = orjson.dumps(m)
            status, answer = _post(f"{base}/report/{reports[test]}", {"format": "json",
                                                                      "content": m})  # fmt: skip
        except (OSError, http.client.HTTPException):  # killed under us: not acknowledged
            return
        if status != 200 or answer.get("measurement_uid") != uid:
            out.errors.append(f"{uid}: {status} {answer}")
            return
        with out.progress:
            out.acked.add(uid)
            out.progress.notify_all()


@contextlib.contextmanager
def _server(db: Path, log: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`reachwatch serve` in a process of our own (to kill), with no rate limit in the way."""
    port = free_port()
    with open(log, "ab") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "reachwatch", "serve", "--db", str(db), "--port", str(port),
             "--rate", "1000000"], stdout=subprocess.DEVNULL, stderr=err, text=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process, 30)
        yield base, process
    finally:
        if process.poll() is None:
            process.terminate()
            assert process.wait(30) in (0, -signal.SIGTERM), log.read_text()


def _submit(
    base: str, measurements: list[dict[str, Any]], out: _Submissions
) -> tuple[list[threading.Thread], queue.Queue[dict[str, Any]]]:
    """Start the clients on `measurements`; returns their threads and the queue they take."""
    todo = _queue(measurements)
    with out.progress:
        out.running += CLIENTS
    threads = [threading.Thread(target=_running, args=(base, todo, out)) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    return threads, todo


def _running(base: str, todo: queue.Queue[dict[str, Any]], out: _Submissions) -> None:
    """A client in a thread of its own, that says when it stops."""
    try:
        _client(base, todo, out)
    finally:
        with out.progress:
            out.running -= 1
            out.progress.notify_all()


def _wait_for(out: _Submissions, acked: int) -> None:
    """Until `acked` submissions are acknowledged in all, or the clients have stopped."""
    with out.progress:
        out.progress.wait_for(lambda: len(out.acked) >= acked or not out.running, timeout=60)


def _assert_acknowledged_kept(db: Path, out: _Submissions) -> set[str]:
    """Every acknowledged measurement is stored once with its bytes; the others at most once."""
    with Store(db, read_only=True) as store:
        rows = store.execute("SELECT measurement_uid FROM measurements").fetchall()
    stored = {uid for (uid,) in rows}
    assert out.acked <= stored, f"acknowledged, not stored: {sorted(out.acked - stored)[:5]}"
    assert stored <= set(out.sent)
    digests = {uid: hashlib.sha256(data).digest() for uid, data in out.sent.items()}
    _assert_archived(db, digests, by="measurement_uid")
    return stored


def test_a_collector_killed_while_probes_submit_keeps_what_it_acknowledged(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    db, log = tmp_path / "c.duckdb", tmp_path / "serve.log"
    moments = sorted(rng.randrange(1, 300) for _ in range(SERVER_KILLS))
    print(f"seed {SEED}; the server is killed after {moments} acknowledgements of its life")
    fresh = variants(sum(moments) + SERVER_KILLS * 200 + 10, seed=SEED)
    out = _Submissions()
    for moment in moments:
        unacked = [orjson.loads(out.sent[uid]) for uid in set(out.sent) - out.acked]
        batch, fresh = unacked + fresh[: moment + 200], fresh[moment + 200 :]
        with _server(db, log) as (base, process):
            before = len(out.acked)
            threads, todo = _submit(base, batch, out)
            _wait_for(out, before + moment)
            process.send_signal(signal.SIGKILL)
            process.wait()
            for thread in threads:
                thread.join(60)
        assert not out.errors, out.errors[:5]
        fresh = [m for m in todo.queue if m["measurement_uid"] not in out.sent] + fresh
        stored = _assert_acknowledged_kept(db, out)
        print(f"killed after {len(out.acked) - before} acknowledgements: {len(out.acked)} "
              f"acknowledged in all, {len(out.sent)} sent, {len(stored)} stored")  # fmt: skip
    unacked = [orjson.loads(out.sent[uid]) for uid in set(out.sent) - out.acked]
    with _server(db, log) as (base, _):  # what was not acknowledged is sent again, and more
        threads, _ = _submit(base, unacked + fresh[:10], out)
        for thread in threads:
            thread.join(60)
    assert not out.errors, out.errors[:5]
    assert out.acked == set(out.sent)
    assert _assert_acknowledged_kept(db, out) == out.acked
    runs = _assert_runs_tell_the_story(db)
    assert runs[-1] and runs.count(True) == 1 and len(runs) <= SERVER_KILLS + 1
    print(f"{len(unacked)} sent again after the last restart; {len(out.acked)} stored once each")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of its own (resized with `_resize`), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:  # lazily: a failed test may still hold a store open there
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


def _resize(mount: Path, size: int) -> None:
    kib = size // 1024 + 1
    subprocess.run(["mount", "-o", f"remount,size={kib}k", str(mount)], check=True)


@pytest.mark.parametrize("fills", ["archive", "database"])
def test_a_full_disk_is_a_clear_error_and_leaves_whole_batches(
    reference: Reference, junk: Reference, small_disk: Path, fills: str
) -> None:
    """The measurements' archive fills the disk first: the batches held uncommitted when it
    does are committed (they are whole, and archived). The quarantine fills the database: its
    write fails, and what it held with it rolls back; a batch a commit here."""
    ref = reference if fills == "archive" else junk
    db = small_disk / "r.duckdb"
    _resize(small_disk, ref.size * 45 // 100)
    full = _ingest(db, ref.corpus.folder, COMMIT_ROWS if fills == "archive" else BATCH_SIZE)
    lines = full.stderr.strip().splitlines()
    assert full.returncode == 2 and len(lines) == 1, full.stderr
    assert lines[0].startswith("error:") and "No space left on device" in lines[0], lines
    batches = _assert_whole_batches(db, ref)
    _assert_archived(db, ref.corpus.digests)
    _assert_archive_whole(db)
    assert _assert_runs_tell_the_story(db) == [False]
    print(f"{fills}: {lines[0]}\n{batches} whole batches of {len(ref.corpus.keys) / BATCH_SIZE:.1f}"
          " stored before the disk was full")  # fmt: skip
    assert batches >= 1
    _resize(small_disk, ref.size * 2)  # room again: the next run completes the store
    done = _ingest(db, ref.corpus.folder)
    assert done.returncode == 0, done.stderr
    assert _contents(db) == ref.contents
    _assert_archived(db, ref.corpus.digests)
    _assert_archive_whole(db)
    assert _assert_runs_tell_the_story(db, len(ref.corpus.keys)) == [False, True]


def test_a_collector_on_a_full_disk_answers_5xx_with_the_reason(
    small_disk: Path, tmp_path: Path
) -> None:
    _resize(small_disk, 16 * 1024 * 1024)
    db = small_disk / "c.duckdb"
    m1, m2, m3 = variants(3, seed=SEED)
    m3.update({k: m2[k] for k in ("test_name", "probe_cc", "measurement_start_time")})
    out = _Submissions()
    with _server(db, tmp_path / "serve.log") as (base, _):
        _client(base, _queue([m1]), out)
        assert out.acked == {m1["measurement_uid"]}, out.errors
        filler = small_disk / "filler"
        _fill(filler)
        meta = {"test_name": m2["test_name"], "probe_cc": m2["probe_cc"]}
        status, opened = _post(f"{base}/report", meta)
        assert status == 200
        status, reason = _post(f"{base}/report/{opened['report_id']}",
                               {"format": "json", "content": m2})  # fmt: skip
        print(f"the collector on a full disk: {status} {reason}")
        assert status == 503 and "No space left on device" in reason
        filler.unlink()  # room again: the next in the same archive file, then the refused one
        _client(base, _queue([m3, m2]), out)
        assert not out.errors, out.errors
    assert out.acked == {m["measurement_uid"] for m in (m1, m2, m3)}
    assert _assert_acknowledged_kept(db, out) == out.acked
    _assert_archive_whole(db)


def _queue(measurements: list[dict[str, Any]]) -> queue.Queue[dict[str, Any]]:
    todo: queue.Queue[dict[str, Any]] = queue.Queue()
    for m in measurements:
        todo.put(m)
    return todo


def _fill(path: Path) -> None:
    """Take every byte left on the file system of `path`."""
    with open(path, "wb", buffering=0) as out:
        for chunk in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * chunk)
