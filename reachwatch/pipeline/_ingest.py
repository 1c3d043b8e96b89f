"""Ingest: files -> raw archive -> observations and verdicts -> store, in batches.

Each batch is archived (fsync) and then written to the store in one transaction, so an ingest
that stops halfway leaves whole batches behind and a second run only adds what is missing.
Every record read ends up counted once: stored, duplicate, or quarantined with its reason.
"""

from __future__ import annotations

import gc
import hashlib
import queue
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from itertools import islice
from os import PathLike
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .._errors import InvalidMeasurement, StoreError
from ..archive import (
    WHOLE,
    ArchiveWriter,
    RawLocation,
    RawRecord,
    gzip_member,
    measurement_files,
    read_raw,
    read_records,
)
from ..store import Store
from ..store._schema import (
    INGEST_COLUMNS,
    MEASUREMENT_COLUMNS,
    OBSERVATION_COLUMNS,
    QUARANTINE_COLUMNS,
    VERDICT_COLUMNS,
)
from . import _columns
from ._rows import fill
from ._rows import rows as _rows
from .fingerprints import Fingerprints, default_fingerprints

BATCH_SIZE = 2000
COMMIT_ROWS = 500_000
"""Rows (of all tables) an ingest's batches gather in one transaction before it commits.
DuckDB writes the full row groups of a large transaction straight into the file; small ones
go through the WAL and are compressed again at the checkpoint. Writing 100,000 bench
measurements (5,000 a batch), the writing process spent 41 us of CPU a measurement committing
every 600,000 rows, 59 committing every batch. A crash loses what was not committed; the next
run adds it again."""
COMMIT_BYTES = 256 << 20
"""And at most this many bytes of them (Arrow's count): rows with large values commit sooner,
so a transaction holds no more memory than this."""
QUARANTINE_INLINE = 64 * 1024
"""A quarantined record up to this size is kept in its row; a larger one (the reader keeps up
to 64 MiB of a record) goes to the archive and its row keeps this much of its head: large
values in DuckDB must fit its memory whenever it checkpoints, and a store that cannot
checkpoint can no longer be written."""


@dataclass
class IngestReport:
    """The counts an ingest reconciles: read = stored + duplicates + quarantined."""

    ingest_id: str
    files: int = 0
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    observations: int = 0
    verdicts: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def reconciled(self) -> bool:
        return self.read == self.stored + self.duplicates + self.quarantined


_ANALYSED_COLUMNS = {c: kind for c, kind in MEASUREMENT_COLUMNS.items()
                     if c not in ("uid_time", "raw_path", "raw_offset", "raw_index",
                                  "ingest_id")}  # fmt: skip
"""What analysis knows of a measurement; where its bytes went is known once it is written."""
_RECORD = "_record"  # ties an observation or verdict row to its measurement row in a chunk
_MEMBER = "_member"  # the measurement's bytes, compressed as one gzip member for the archive
_CAN = "_can"  # or, instead, the gzip input file the archive keeps whole
_LINE = "_line"  # and the measurement's line there (from 1)


@dataclass(slots=True)
class Analysed:
    """A chunk of records reduced to Arrow tables and compressed bytes: what the store and
    the archive need, with nothing parsed left to hold in memory. It is all a worker sends
    back, so analysis (the costly part) runs anywhere and only writing needs the store."""

    read: int
    measurements: pa.Table  # _ANALYSED_COLUMNS + _member, _can, _line: a row per measurement
    observations: pa.Table  # OBSERVATION_COLUMNS + _record
    verdicts: pa.Table  # VERDICT_COLUMNS + _record
    rejected: list[tuple[RawRecord, str]]


def analyse(
    records: Iterable[RawRecord],
    fingerprints: Fingerprints | None = None,
    *,
    archived: bool = False,
) -> Analysed:
    """Parse, observe and judge every record; a record that cannot be used is rejected with
    its reason instead (a bug in analysis included: it must not lose the record). A record
    read from a gzip file is archived as its line there; any other is compressed, unless the
    records are `archived` already (a re-analysis)."""
    with no_cycle_collection():  # the rows are gone with _analyse's frame before it collects
        return _analyse(records, fingerprints or default_fingerprints(), archived)


def _analyse(records: Iterable[RawRecord], fps: Fingerprints, archived: bool) -> Analysed:
    measurements = _columns_of(_ANALYSED_COLUMNS)
    observations = _columns_of(OBSERVATION_COLUMNS)
    verdicts = _columns_of(VERDICT_COLUMNS)
    filled = fill(records, _rows, fps, archived, measurements, observations, verdicts)
    return Analysed(
        filled.read,
        _table_of(_ANALYSED_COLUMNS, measurements)
        .append_column(_MEMBER, pa.array(filled.members, pa.binary()))
        .append_column(_CAN, pa.array(filled.cans, pa.string()))
        .append_column(_LINE, pa.array(filled.lines, pa.int32())),
        _table_of(OBSERVATION_COLUMNS, observations).append_column(
            _RECORD, pa.array(filled.observed_in, pa.int32())
        ),
        _table_of(VERDICT_COLUMNS, verdicts).append_column(
            _RECORD, pa.array(filled.judged_in, pa.int32())
        ),
        filled.rejected,
    )


class _Job:
    """Writes analysed chunks: drops what is already stored, archives the rest (synced), then
    stores it, so a crash leaves whole chunks and a rerun adds the rest. Chunks join one
    transaction until it holds `commit_rows` rows (none: each commits by itself)."""

    def __init__(
        self, store: Store, writer: ArchiveWriter, report: IngestReport, commit_rows: int = 0
    ) -> None:
        self.store = store
        self.writer = writer
        self.report = report
        self.commit_rows = commit_rows
        self._pending = (0, 0)  # rows and bytes written since the last commit

    def write(self, chunk: Analysed, quarantine: bool = True) -> list[str]:
        """Store the chunk; returns, per measurement row, its uid if this call stored it."""
        report = self.report
        report.read += chunk.read
        table = chunk.measurements
        uids: list[str] = table.column("measurement_uid").to_pylist()
        first: dict[str, int] = {}
        for row, uid in enumerate(uids):
            first.setdefault(uid, row)
        times = self.store.uid_times(table.column("measurement_uid"))
        known = (self.store.known_uids(list(first), pc.min(times).as_py(), pc.max(times).as_py())
                 if first else set())  # fmt: skip
        fresh = [row for uid, row in first.items() if uid not in known]
        report.duplicates += len(uids) - len(fresh)
        rejected = chunk.rejected if quarantine else []
        if not fresh and not rejected:
            return [""] * len(uids)

        everything = len(fresh) == table.num_rows  # the usual case: no copies to make
        chosen = pa.array(fresh, pa.int32())
        kept = table if everything else table.take(chosen)
        held = self._quarantine_rows(rejected)  # the large ones join this flush
        placed = self._place(kept)
        bases = self.writer.flush()
        n = len(fresh)
        in_cans = pc.is_valid(kept.column(_CAN))
        lines = pc.subtract(kept.column(_LINE), 1)
        measurements = (
            kept.drop_columns([_MEMBER, _CAN, _LINE])
            .append_column("uid_time", times if everything else times.take(chosen))
            .append_column("raw_path", pa.array([path for path, _ in placed], pa.string()))
            .append_column(
                "raw_offset",
                pa.array([bases.get(path, 0) + at for path, at in placed], pa.int64()),
            )
            .append_column(
                "raw_index",
                pc.if_else(in_cans, lines, pa.scalar(WHOLE, pa.int32())),
            )
            .append_column("ingest_id", pa.array([self.writer.run_id] * n, pa.string()))
        )
        observations, verdicts = chunk.observations, chunk.verdicts
        if not everything:
            observations = observations.filter(pc.is_in(observations[_RECORD], chosen))
            verdicts = verdicts.filter(pc.is_in(verdicts[_RECORD], chosen))
        held_rows = [(*row, path, None if path is None else bases[path] + at)
                     for row, (path, at) in held]  # fmt: skip
        tables = {
            "measurements": measurements,
            "observations": observations.drop_columns([_RECORD]),
            "verdicts": verdicts.drop_columns([_RECORD]),
            "quarantine": _table(QUARANTINE_COLUMNS, held_rows),
        }
        rows, size = self._pending
        rows += sum(t.num_rows for t in tables.values())
        size += sum(t.nbytes for t in tables.values())
        hold = rows < self.commit_rows and size < COMMIT_BYTES
        self.store.write_batch(tables, hold=hold)
        self._pending = (rows, size) if hold else (0, 0)
        report.stored += n
        report.observations += observations.num_rows
        report.verdicts += verdicts.num_rows
        stored = set(fresh)
        return [uid if row in stored else "" for row, uid in enumerate(uids)]

    def _place(self, kept: pa.Table) -> list[tuple[str, int]]:
        """Where each measurement goes in the archive: its line in the kept copy of its gzip
        input (a can is read from its start), or else its own gzip member, queued. Only the rows
        that need a member become Python values (every row did: 3% of writing a batch)."""
        cans = kept.column(_CAN).to_pylist()
        placed = [(self.writer.keep(can), 0) if can is not None else ("", 0) for can in cans]
        loose = [row for row, can in enumerate(cans) if can is None]
        if loose:
            rows = kept.take(pa.array(loose, pa.int32()))
            columns = ("measurement_start_time", "probe_cc", "test_name", _MEMBER)
            for row, start, country, test, member in zip(
                loose, *(rows.column(c).to_pylist() for c in columns), strict=True
            ):
                placed[row] = self.writer.add(start, country, test, member)
        return placed

    def _quarantine_rows(
        self, rejected: list[tuple[RawRecord, str]]
    ) -> list[tuple[tuple[Any, ...], tuple[str | None, int]]]:
        """Rows for the records not yet in quarantine, each with where in this flush its whole
        bytes go when they are too large for the row (else None)."""
        now = datetime.now(UTC).replace(tzinfo=None)
        by_digest: dict[str, tuple[RawRecord, str]] = {}
        for record, reason in rejected:
            self.report.quarantined += 1
            self.report.reasons[_reason_kind(reason)] += 1
            digest = hashlib.sha256(record.data).hexdigest()
            by_digest.setdefault(digest, (record, reason))
        for digest in self.store.known_quarantine(list(by_digest)):
            del by_digest[digest]
        rows = []
        for digest, (record, reason) in by_digest.items():
            data = record.data
            kept: tuple[str | None, int] = (None, 0)
            if len(data) > QUARANTINE_INLINE:
                kept = self.writer.add_to(f"quarantine/{self.writer.run_id}.jsonl.gz",
                                          gzip_member(data))  # fmt: skip
            row = (digest, reason, record.source, record.locator, len(data),
                   data[:QUARANTINE_INLINE], self.writer.run_id, now)  # fmt: skip
            rows.append((row, kept))
        return rows


def quarantined(store: Store, digest: str) -> bytes | None:
    """The bytes kept of a quarantined record (all of them, wherever they are), or None."""
    row = store.execute(
        "SELECT raw, raw_path, raw_offset FROM quarantine WHERE sha256 = ?", [digest]
    ).fetchone()
    if row is None:
        return None
    raw, path, offset = row
    return raw if path is None else read_raw(store.archive_root, RawLocation(path, offset, WHOLE))


Progress = Callable[[int], None]


def ingest(
    paths: Iterable[str | PathLike[str]],
    store: Store,
    *,
    batch_size: int = BATCH_SIZE,
    commit_rows: int = COMMIT_ROWS,
    progress: Progress | None = None,
    fingerprints: Fingerprints | None = None,
) -> IngestReport:
    """Ingest every measurement under `paths` (files or folders), in this process, a batch
    of `batch_size` records at a time, committed every `commit_rows` rows; returns the
    counts."""
    files = measurement_files(paths)
    fps = fingerprints or default_fingerprints()
    records = (r for path in files for r in read_records(path, on_bytes=progress))
    return write_all(_in_batches(records, batch_size, fps), store, files, commit_rows)


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """The cycle collector paused while a chunk is analysed, then run once on what the chunk
    left. Analysis makes millions of small objects that die young and form no cycles (the
    parsed records are msgspec structs the collector does not track): at the default
    threshold (700) the collector ran every few measurements, 3 to 4% of an ingest's CPU, and
    still 3% at 10,000. The one collection after the chunk finds any cycle it made; it costs
    little once the chunk's rows are gone (with them alive it was 3% again). Left as found
    when something else paused the collector."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()
            gc.collect(0)


def _in_batches(records: Iterator[RawRecord], size: int, fps: Fingerprints) -> Iterator[Analysed]:
    """Each batch analysed as it is read: no list keeps its records, so their bytes are gone
    (compressed into the result) before the result is written."""
    while (chunk := analyse(islice(records, size), fps)).read:
        yield chunk


def batched(items: Iterable[RawRecord], size: int) -> Iterator[list[RawRecord]]:
    """Consecutive lists of `size` items (itertools.batched arrives with Python 3.12)."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def write_all(
    chunks: Iterable[Analysed], store: Store, files: list[Path], commit_rows: int = COMMIT_ROWS
) -> IngestReport:
    """Write analysed chunks in the order given (wherever they were analysed) and record the
    ingest: the same rows whichever way the work was split. Chunks are committed together
    every `commit_rows` rows, the last with the run's counts; if the run fails, what it wrote
    before the failure is committed: every chunk held is whole, and archived."""
    started = datetime.now(UTC).replace(tzinfo=None)
    run_id = f"{started:%Y%m%dT%H%M%S}Z-{uuid.uuid4().hex[:8]}"
    report = IngestReport(ingest_id=run_id, files=len(files))
    job = _Job(store, ArchiveWriter(store.archive_root, run_id), report, commit_rows)
    paths = [str(p) for p in files]
    store.write_batch({"ingests": _ingest_row(report, started, paths, finished=False)})
    try:
        _behind(chunks, job.write)
    except BaseException:
        with suppress(StoreError):  # a failed commit rolled back: no chunk in part
            store.commit()
        raise
    store.write_batch({"ingests": _ingest_row(report, started, paths)}, replace=True)
    return report


def _behind(chunks: Iterable[Analysed], write: Callable[[Analysed], object]) -> None:
    """Write each chunk in a thread of its own while the next is analysed: DuckDB and file
    writes let go of the GIL, so writing overlaps analysis on a second core (an ingest of
    100,000 measurements: 4,302 a second against 3,310 writing in turn, the same CPU per
    measurement). At most one chunk waits; the first error stops both and is raised here."""
    waiting: queue.Queue[Analysed | None] = queue.Queue(maxsize=1)
    failed: list[BaseException] = []

    def writer() -> None:
        while (chunk := waiting.get()) is not None:
            if not failed:
                try:
                    write(chunk)
                except BaseException as exc:  # handed to the caller below
                    failed.append(exc)

    thread = threading.Thread(target=writer, name="reachwatch-writer")
    thread.start()
    try:
        for chunk in chunks:
            if failed:
                break
            waiting.put(chunk)
    finally:
        waiting.put(None)
        thread.join()
    if failed:
        raise failed[0]


class Intake:
    """Measurements as they come, each in the raw archive (synced) and the store before `take`
    returns: what a collector needs to acknowledge a submission. The archive files of an intake
    (one per hour, country and test) are shared by all it takes."""

    def __init__(self, store: Store, fingerprints: Fingerprints | None = None) -> None:
        started = datetime.now(UTC).replace(tzinfo=None)
        self.started = started
        self.report = IngestReport(ingest_id=f"{started:%Y%m%dT%H%M%S}Z-collector-"
                                   f"{uuid.uuid4().hex[:8]}")  # fmt: skip
        self.fps = fingerprints or default_fingerprints()
        self.job = _Job(store, ArchiveWriter(store.archive_root, self.report.ingest_id),
                        self.report)  # fmt: skip
        store.write_batch({"ingests": _ingest_row(self.report, started, [], finished=False)})

    def take(self, records: list[RawRecord]) -> list[tuple[str, bool] | InvalidMeasurement]:
        """Per record: its uid and whether it is new (False: it was already stored), or the
        InvalidMeasurement saying why it cannot be stored (nothing of it is written). The
        valid ones are archived and stored together: one sync, one transaction."""
        chunk = analyse(records, self.fps)
        refused = {id(record): reason for record, reason in chunk.rejected}
        chunk.read -= len(refused)  # refused, not kept: the client is told, nothing is stored
        stored = iter(self.job.write(chunk, quarantine=False))
        uids = iter(chunk.measurements.column("measurement_uid").to_pylist())
        results: list[tuple[str, bool] | InvalidMeasurement] = []
        for record in records:
            if id(record) in refused:
                results.append(InvalidMeasurement(refused[id(record)]))
            else:
                uid = next(uids)
                results.append((uid, next(stored) == uid))
        return results

    def close(self, source: str) -> None:
        """Record the intake's counts in the `ingests` table."""
        self.job.store.write_batch(
            {"ingests": _ingest_row(self.report, self.started, [source])}, replace=True
        )


_ARROW_TYPES = {  # the store's types: Arrow's, and its letter for `_columns`
    "VARCHAR": (pa.string(), "s"),
    "BOOLEAN": (pa.bool_(), "b"),
    "INTEGER": (pa.int32(), "i"),
    "BIGINT": (pa.int64(), "q"),
    "UBIGINT": (pa.uint64(), "Q"),
    "DOUBLE": (pa.float64(), "d"),
    "TIMESTAMP": (pa.timestamp("us"), "t"),
    "BLOB": (pa.binary(), "y"),
    "VARCHAR[]": (pa.list_(pa.string()), "L"),
}


def _table(columns: dict[str, str], rows: list[Any]) -> pa.Table:
    """Rows (tuples in the schema's column order) -> an Arrow table of the schema's types."""
    built = _columns_of(columns)
    built.extend(rows)
    return _table_of(columns, built)


def _columns_of(columns: dict[str, str]) -> _columns.Columns:
    """Empty columns of the schema's types, to fill with rows as they are made: `_columns`
    (C) appends each value to its column's buffers while it is fresh in the cache, where
    pyarrow converting a chunk's rows at its end took 11 us a measurement."""
    schema, kinds = _layout(tuple(columns.items()))
    return _columns.Columns(kinds, tuple(schema.names))


def _table_of(columns: dict[str, str], built: _columns.Columns) -> pa.Table:
    """The table of what `built` holds, around its buffers (wrapped, not copied)."""
    schema, _ = _layout(tuple(columns.items()))
    length = len(built)
    arrays = [_array(f.type, length, b) for f, b in zip(schema, built.take(), strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


@cache
def _layout(columns: tuple[tuple[str, str], ...]) -> tuple[pa.Schema, str]:
    types = [(name, *_ARROW_TYPES[kind.split()[0]]) for name, kind in columns]
    return pa.schema([(name, t) for name, t, _ in types]), "".join(k for _, _, k in types)


def _array(type_: pa.DataType, length: int, built: _columns.Buffers) -> pa.Array:
    """An Arrow array around a column's buffers (bytes, wrapped, not copied)."""
    nulls, validity, *rest = built
    if pa.types.is_list(type_):
        offsets, items = rest  # the list's strings have validity, offsets and data of their own
        strings = _array(type_.value_type, len(items[2]) // 4 - 1, items)
        return pa.Array.from_buffers(type_, length, _wrapped(validity, offsets), nulls,
                                     children=[strings])  # fmt: skip
    return pa.Array.from_buffers(type_, length, _wrapped(validity, *rest), nulls)


def _wrapped(*buffers: bytes | None) -> list[pa.Buffer | None]:
    return [None if b is None else pa.py_buffer(b) for b in buffers]


def _reason_kind(reason: str) -> str:
    """A short label for the summary: the reason up to its first colon."""
    return reason.split(":", 1)[0][:60]


def _ingest_row(
    report: IngestReport, started: datetime, paths: list[str], finished: bool = True
) -> pa.Table:
    """A run's row: also written when it starts, without an end or counts, so that a run that
    dies (killed, a full disk) is on record beside the rows it stored."""
    end = datetime.now(UTC).replace(tzinfo=None) if finished else None
    counts = (report.read, report.stored, report.duplicates, report.quarantined)
    row = (report.ingest_id, started, end, paths[:1000], *(counts if finished else [None] * 4))
    return _table(INGEST_COLUMNS, [row])
