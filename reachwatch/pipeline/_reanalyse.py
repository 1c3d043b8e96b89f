"""Re-analysis: the observations and verdicts of stored measurements derived again from the
raw archive, after the pipeline changed (new fingerprints, a fixed rule), in this process, in
worker processes of its own or on a Dask cluster. The measurements themselves stay as they
are. They are read in the archive's order, so that each file (a can holds thousands) is read
once, not once per measurement."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from ..archive import ArchiveReader, RawLocation, RawRecord
from ..store import Store
from ._dask import LocalPool, _in_order, _Task
from ._ingest import _RECORD, BATCH_SIZE, Analysed, Progress, analyse

if TYPE_CHECKING:
    from distributed import Client

Located = tuple[str, str, int, int]  # uid, raw_path, raw_offset, raw_index


@dataclass
class ReanalysisReport:
    """What a re-analysis did: `kept` are measurements the pipeline now refuses or whose bytes
    cannot be read; their earlier rows stay, and the reasons say why."""

    measurements: int = 0
    observations: int = 0
    verdicts: int = 0
    changed: int = 0  # verdict rows (target, verdict, technique) that differ from before
    kept: int = 0
    reasons: list[str] = field(default_factory=list)  # the first 20


def analyse_archived(job: tuple[str, list[Located]]) -> Analysed:
    """What a worker runs: the archived bytes of these measurements, analysed again."""
    root, located = job
    return analyse(_records(Path(root), located), archived=True)


def _records(root: Path, located: list[Located]) -> Iterator[RawRecord]:
    with ArchiveReader(root) as reader:
        where = [RawLocation(path, offset, index) for _, path, offset, index in located]
        for (uid, path, offset, _), data in zip(located, reader.read_all(where), strict=True):
            if isinstance(data, BaseException):
                problem = f"archive unreadable at {path}@{offset}: {data}"
                yield RawRecord(path, uid, b"", problem)
            else:
                yield RawRecord(path, uid, data)


def reanalyse(
    store: Store,
    client: Client | LocalPool | None = None,
    *,
    cc: str | None = None,
    progress: Progress | None = None,
) -> ReanalysisReport:
    """Derive every stored measurement's observations and verdicts (in `cc`, or all) again
    from the archive; each batch replaces its measurements' rows in one transaction."""
    report = ReanalysisReport()
    tasks = _tasks(store, cc)
    results = _in_order(client, tasks, progress) if client else _here(tasks, progress)
    for chunk in results:
        _write(store, chunk, report)
    return report


def _here(tasks: Iterator[_Task], progress: Progress | None) -> Iterator[Analysed]:
    for function, argument, size in tasks:
        chunk = function(argument)
        if progress is not None:
            progress(size)
        yield chunk


def to_reanalyse(store: Store, cc: str | None = None) -> int:
    """How many measurements a re-analysis (in `cc`) goes through: a progress bar's total."""
    where, params = ("WHERE probe_cc = ?", [cc.upper()]) if cc else ("", [])
    found = store.execute(f"SELECT count(*) FROM measurements {where}", params).fetchone()
    return int(found[0]) if found else 0


def _tasks(store: Store, cc: str | None) -> Iterator[_Task]:
    """A task per batch of stored measurements (in `cc`) in the archive's order: an archive
    file (of an hour, country and test, or a can) at a time; its size is its number of
    measurements. The locations come in batches from a cursor of their own: the store is
    written between two batches, and no list holds every location."""
    where, params = ("WHERE probe_cc = ?", [cc.upper()]) if cc else ("", [])
    cursor = store.con.cursor()
    try:
        cursor.execute(
            "SELECT measurement_uid, raw_path, raw_offset, raw_index FROM measurements "
            f"{where} ORDER BY raw_path, raw_offset, raw_index",
            params,
        )
        root = str(store.archive_root)
        while batch := cursor.fetchmany(BATCH_SIZE):
            yield analyse_archived, (root, batch), len(batch)
    finally:
        cursor.close()


def _write(store: Store, chunk: Analysed, report: ReanalysisReport) -> None:
    """Replace the analysis of the chunk's measurements; keep (and report) the rows of those
    it refuses now, or whose bytes now give another uid than the one they are stored under."""
    for record, reason in chunk.rejected:
        _keep(report, f"{record.locator}: {reason}")
    uids = chunk.measurements.column("measurement_uid").to_pylist()
    stored_as = [s.rsplit(":", 1)[1] for s in chunk.measurements.column("source").to_pylist()]
    good = [row for row, (uid, was) in enumerate(zip(uids, stored_as, strict=True)) if uid == was]
    for row in set(range(len(uids))) - set(good):
        _keep(report, f"{stored_as[row]}: its archived bytes now give the uid {uids[row]}")
    rows = pa.array(good, pa.int32())
    observations = chunk.observations.filter(pc.is_in(chunk.observations[_RECORD], rows))
    verdicts = chunk.verdicts.filter(pc.is_in(chunk.verdicts[_RECORD], rows))
    observations, verdicts = observations.drop_columns([_RECORD]), verdicts.drop_columns([_RECORD])
    replaced = [uids[row] for row in good]
    judged = ("measurement_uid", "target", "verdict", "technique")
    before = set(store.execute(
        f"SELECT {', '.join(judged)} FROM verdicts "
        "WHERE measurement_uid IN (SELECT unnest(?::VARCHAR[]))", [replaced]
    ).fetchall())  # fmt: skip
    after = set(zip(*(verdicts.column(c).to_pylist() for c in judged), strict=True))
    report.changed += len(after - before)
    store.write_batch({"observations": observations, "verdicts": verdicts}, superseding=replaced)
    report.measurements += len(replaced)
    report.observations += observations.num_rows
    report.verdicts += verdicts.num_rows


def _keep(report: ReanalysisReport, reason: str) -> None:
    report.kept += 1
    if len(report.reasons) < 20:
        report.reasons.append(reason)
