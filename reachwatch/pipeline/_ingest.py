"""Ingest: files -> raw archive -> observations and verdicts -> store, in batches.

Each batch is archived (fsync) and then written to the store in one transaction, so an ingest
that stops halfway leaves whole batches behind and a second run only adds what is missing.
Every record read ends up counted once: stored, duplicate, or quarantined with its reason.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from os import PathLike
from typing import Any

import pyarrow as pa

from .._errors import InvalidMeasurement
from ..archive import ArchiveWriter, RawRecord, measurement_files, read_records
from ..model import ParsedMeasurement, Primitives, parse_measurement
from ..store import Store
from ..store._schema import (
    INGEST_COLUMNS,
    MEASUREMENT_COLUMNS,
    OBSERVATION_COLUMNS,
    QUARANTINE_COLUMNS,
    VERDICT_COLUMNS,
)
from ._observations import Observation, observations_of
from .fingerprints import Fingerprints, default_fingerprints
from .verdicts import verdicts_of

BATCH_SIZE = 2000
QUARANTINE_KEEP = 64 * 1024 * 1024


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


@dataclass(slots=True)
class _Analysed:
    """One measurement reduced to its rows, so its parsed form can be freed right away."""

    record: RawRecord
    uid: str
    partition: tuple[datetime, str, str]
    measurement: tuple[Any, ...]  # the measurements row without its raw location
    observations: list[Observation]
    verdicts: list[tuple[Any, ...]]


@dataclass
class _Batch:
    analysed: list[_Analysed] = field(default_factory=list)
    rejected: list[tuple[RawRecord, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.analysed) + len(self.rejected)


Progress = Callable[[int], None]


def ingest(
    paths: Iterable[str | PathLike[str]],
    store: Store,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
    fingerprints: Fingerprints | None = None,
) -> IngestReport:
    """Ingest every measurement under `paths` (files or folders); returns the counts."""
    files = measurement_files(paths)
    started = datetime.now(UTC).replace(tzinfo=None)
    run_id = f"{started:%Y%m%dT%H%M%S}Z-{uuid.uuid4().hex[:8]}"
    report = IngestReport(ingest_id=run_id, files=len(files))
    fps = fingerprints or default_fingerprints()
    job = _Job(store, ArchiveWriter(store.archive_root, run_id), report)
    batch = _Batch()
    for path in files:
        for record in read_records(path, on_bytes=progress):
            report.read += 1
            if record.problem:
                batch.rejected.append((record, record.problem))
            else:
                try:
                    batch.analysed.append(_analyse(record, parse_measurement(record.data), fps))
                except InvalidMeasurement as exc:
                    batch.rejected.append((record, exc.reason))
                except Exception as exc:  # a bug must not lose the record: keep it in quarantine
                    batch.rejected.append((record, f"analysis failed: {type(exc).__name__}: {exc}"))
            if len(batch) >= batch_size:
                job.flush(batch)
                batch = _Batch()
    job.flush(batch)
    store.write_batch({"ingests": _ingest_row(report, started, [str(p) for p in files])})
    return report


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

    def take(self, records: list[RawRecord]) -> list[tuple[str, bool] | InvalidMeasurement]:
        """Per record: its uid and whether it is new (False: it was already stored), or the
        InvalidMeasurement saying why it cannot be stored (nothing of it is written). The
        valid ones are archived and stored together: one sync, one transaction."""
        out: list[tuple[str, bool] | InvalidMeasurement] = []
        batch = _Batch()
        for record in records:
            try:
                analysed = _analyse(record, parse_measurement(record.data), self.fps)
            except InvalidMeasurement as exc:
                out.append(exc)
                continue
            batch.analysed.append(analysed)
            out.append((analysed.uid, False))
        self.report.read += len(batch.analysed)
        stored = self.job.flush(batch)
        results: list[tuple[str, bool] | InvalidMeasurement] = []
        claimed: set[str] = set()  # the same measurement twice in one batch: new only once
        for result in out:
            if isinstance(result, tuple):
                uid = result[0]
                result = (uid, uid in stored and uid not in claimed)
                claimed.add(uid)
            results.append(result)
        return results

    def close(self, source: str) -> None:
        """Record the intake's counts in the `ingests` table."""
        if self.report.read:
            self.job.store.write_batch(
                {"ingests": _ingest_row(self.report, self.started, [source])}
            )


def _analyse(record: RawRecord, pm: ParsedMeasurement, fps: Fingerprints) -> _Analysed:
    """Observations and verdicts of one measurement, as rows in the store's column order."""
    base = pm.base
    observations = observations_of(pm)
    keys = pm.keys
    via, run_id = (keys.x_via, keys.x_run) if isinstance(keys, Primitives) else (None, None)
    verdicts = [
        (
            pm.uid,
            v.target,
            v.verdict,
            v.technique,
            v.reason,
            v.probe_says,
            base.test_name,
            base.probe_cc,
            pm.probe_asn,
            pm.start_time,
            via,
            run_id,
        )
        for v in verdicts_of(pm, fps)
    ]
    measurement = (
        pm.uid,
        pm.uid_computed,
        base.report_id,
        base.test_name,
        base.test_version,
        pm.known_test,
        base.probe_cc,
        pm.probe_asn,
        base.probe_network_name,
        pm.input,
        pm.start_time,
        base.software_name,
        base.software_version,
        base.resolver_asn,
    )
    partition = (pm.start_time, base.probe_cc, base.test_name)
    return _Analysed(record, pm.uid, partition, measurement, observations, verdicts)


class _Job:
    def __init__(self, store: Store, writer: ArchiveWriter, report: IngestReport) -> None:
        self.store = store
        self.writer = writer
        self.report = report

    def flush(self, batch: _Batch) -> set[str]:
        """Archive (synced) and store the batch in one go; returns the uids it stored."""
        if not len(batch):
            return set()
        fresh: dict[str, _Analysed] = {}
        for item in batch.analysed:
            if item.uid in fresh:
                self.report.duplicates += 1
            else:
                fresh[item.uid] = item
        times = [item.partition[0] for item in fresh.values()]
        known = self.store.known_uids(list(fresh), min(times), max(times)) if times else set()
        for uid in known:
            del fresh[uid]
            self.report.duplicates += 1

        paths = [self.writer.add(*item.partition, item.record.data) for item in fresh.values()]
        offsets = self.writer.flush()
        index: Counter[str] = Counter()
        measurements = []
        observations: list[Observation] = []
        verdicts: list[tuple[Any, ...]] = []
        for item, path in zip(fresh.values(), paths, strict=True):
            record = item.record
            measurements.append(
                (
                    *item.measurement,
                    path,
                    offsets[path],
                    index[path],
                    len(record.data),
                    self.writer.run_id,
                    f"{record.source}:{record.locator}",
                )
            )
            index[path] += 1
            observations.extend(item.observations)
            verdicts.extend(item.verdicts)

        self.store.write_batch(
            {
                "measurements": _table(MEASUREMENT_COLUMNS, measurements),
                "observations": _table(OBSERVATION_COLUMNS, observations),
                "verdicts": _table(VERDICT_COLUMNS, verdicts),
                "quarantine": self._quarantine_table(batch.rejected),
            }
        )
        self.report.stored += len(measurements)
        self.report.observations += len(observations)
        self.report.verdicts += len(verdicts)
        return set(fresh)

    def _quarantine_table(self, rejected: list[tuple[RawRecord, str]]) -> pa.Table:
        now = datetime.now(UTC).replace(tzinfo=None)
        by_digest: dict[str, tuple[RawRecord, str]] = {}
        for record, reason in rejected:
            self.report.quarantined += 1
            self.report.reasons[_reason_kind(reason)] += 1
            digest = hashlib.sha256(record.data).hexdigest()
            by_digest.setdefault(digest, (record, reason))
        for digest in self.store.known_quarantine(list(by_digest)):
            del by_digest[digest]
        rows = [
            (
                digest,
                reason,
                record.source,
                record.locator,
                len(record.data),
                record.data[:QUARANTINE_KEEP],
                self.writer.run_id,
                now,
            )
            for digest, (record, reason) in by_digest.items()
        ]
        return _table(QUARANTINE_COLUMNS, rows)


_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "BOOLEAN": pa.bool_(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "UBIGINT": pa.uint64(),
    "DOUBLE": pa.float64(),
    "TIMESTAMP": pa.timestamp("us"),
    "BLOB": pa.binary(),
    "VARCHAR[]": pa.list_(pa.string()),
}


def _table(columns: dict[str, str], rows: list[Any]) -> pa.Table:
    """Rows (tuples in the schema's column order) -> an Arrow table of the schema's types."""
    names = list(columns)
    arrays = [
        # one C-level pass per column: several times faster than zip(*rows) on many rows
        pa.array(list(map(itemgetter(i), rows)), type=_ARROW_TYPES[kind.split()[0]])
        for i, kind in enumerate(columns.values())
    ]
    return pa.Table.from_arrays(arrays, names=names)


def _reason_kind(reason: str) -> str:
    """A short label for the summary: the reason up to its first colon."""
    return reason.split(":", 1)[0][:60]


def _ingest_row(report: IngestReport, started: datetime, paths: list[str]) -> pa.Table:
    finished = datetime.now(UTC).replace(tzinfo=None)
    row = (
        report.ingest_id,
        started,
        finished,
        paths[:1000],
        report.read,
        report.stored,
        report.duplicates,
        report.quarantined,
    )
    return _table(INGEST_COLUMNS, [row])
