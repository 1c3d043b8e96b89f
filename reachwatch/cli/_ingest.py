"""`reachwatch ingest`, `reprocess` and `export`: measurements into the store, in this process,
in worker processes of this machine or on a Dask cluster, and the store's tables out as
Parquet for any engine."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from .. import ReachwatchError
from ..archive import measurement_files
from ..pipeline import (
    COMMIT_ROWS,
    IngestReport,
    LocalPool,
    ingest_on,
    reanalyse,
    to_reanalyse,
)
from ..pipeline import ingest as run_ingest
from ..store import DEFAULT_DB, Store, export_parquet
from ._common import DbOption, console, errors

if TYPE_CHECKING:
    from distributed import Client

PathsArgument = Annotated[list[Path], typer.Argument(help="JSON, JSONL, .gz files or folders.")]
JobsOption = Annotated[
    int | None,
    typer.Option(min=1, help="Worker processes that analyse while this one writes (no cluster); "
                 "default: one per core for a large input, else none."),
]  # fmt: skip
CommitOption = Annotated[
    int,
    typer.Option(min=1, help="Rows an ingest writes between commits: more is faster, fewer "
                 "loses less to a crash (the next run adds it again)."),
]  # fmt: skip
LARGE_BYTES = 64 << 20
"""Input above which an ingest starts worker processes by default: below it, starting them
costs about what they save."""
LARGE_COUNT = 20_000
"""Stored measurements above which a re-analysis starts worker processes by default."""


def _pool(jobs: int | None, large: bool) -> LocalPool | None:
    """The worker processes asked for (`--jobs`), or by default one per core for large work."""
    if jobs is None:
        jobs = _cores() if large else 1
    return LocalPool(jobs) if jobs > 1 else None


def _cores() -> int:
    """The cores this process may run on (all of them where the system cannot say)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _size(files: list[Path]) -> int:
    return sum(p.stat().st_size for p in files)


@contextmanager
def _progress(what: str, total: int, in_bytes: bool = True) -> Iterator[Callable[[int], None]]:
    """A progress bar over the input's bytes or over a count (on stderr, gone when done)."""
    count = DownloadColumn() if in_bytes else MofNCompleteColumn()
    columns = (TextColumn(f"[bold]{what}"), BarColumn(), count, TimeRemainingColumn())
    with Progress(*columns, console=errors, transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


def _print_report(report: IngestReport) -> None:
    """The counts, and whether they reconcile (exit 1 when they do not)."""
    console.print(f"[bold]ingest[/] {report.ingest_id}")
    table = Table(show_header=False)
    for label, value in (
        ("files", report.files),
        ("read", report.read),
        ("stored", report.stored),
        ("duplicates", report.duplicates),
        ("quarantined", report.quarantined),
        ("observations", report.observations),
        ("verdicts", report.verdicts),
    ):
        table.add_row(label, f"{value:,}")
    console.print(table)
    for reason, count in report.reasons.most_common():
        console.print(f"  quarantined {count:,}: {reason}")
    check = "=" if report.reconciled else "!="
    console.print(
        f"read {report.read:,} {check} stored {report.stored:,} + duplicates "
        f"{report.duplicates:,} + quarantined {report.quarantined:,}"
    )
    if not report.reconciled:
        raise typer.Exit(1)


def ingest(
    paths: PathsArgument,
    db: DbOption = Path(DEFAULT_DB),
    jobs: JobsOption = None,
    commit_rows: CommitOption = COMMIT_ROWS,
) -> None:
    """Ingest OONI measurements: archive them, derive observations and verdicts, store them."""
    files = measurement_files(paths)  # walked once: the bar's total and the ingest's input
    size = _size(files)
    with (
        Store.for_ingest(db) as store,
        _workers(None, None, jobs, size > LARGE_BYTES) as client,
        _progress("ingest", size) as progress,
    ):
        report = _ingest(client, files, store, progress, commit_rows)
    _print_report(report)


def _ingest(
    client: Client | LocalPool | None,
    files: list[Path],
    store: Store,
    progress: Callable[[int], None],
    commit_rows: int,
) -> IngestReport:
    """The files ingested with the workers given, else in this process."""
    if client is None:
        return run_ingest(files, store, progress=progress, commit_rows=commit_rows)
    return ingest_on(client, files, store, progress=progress, commit_rows=commit_rows)


def reprocess(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Measurements to ingest; none: analyse the stored ones again."),
    ] = None,
    db: DbOption = Path(DEFAULT_DB),
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Start a local Dask cluster of this many worker processes."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Use the Dask cluster whose scheduler is at this address "
                     "(tcp://HOST:PORT); its workers must see the input paths and the archive."),
    ] = None,
    cc: Annotated[str | None, typer.Option(help="Only this country's (with no paths).")] = None,
    jobs: JobsOption = None,
    commit_rows: CommitOption = COMMIT_ROWS,
) -> None:  # fmt: skip
    """Run the pipeline over partitions (day x country): on dask.distributed with --workers or
    --scheduler, else in worker processes of this machine (--jobs) or in this process. With
    PATHs it ingests them: workers analyse, this process archives and stores, and the rows are
    those `ingest` stores. With none it derives every stored measurement's observations and
    verdicts again from the raw archive (after new fingerprints or a changed rule) and says
    how many verdicts changed."""
    files = measurement_files(paths or [])
    with Store.for_ingest(db) as store:
        total = _size(files) if files else to_reanalyse(store, cc)
        large = total > (LARGE_BYTES if files else LARGE_COUNT)
        with _workers(workers, scheduler, jobs, large) as client:
            if files:
                with _progress("reprocess", total) as progress:
                    report = _ingest(client, files, store, progress, commit_rows)
            else:
                with _progress("analyse again", total, in_bytes=False) as progress:
                    again = reanalyse(store, client, cc=cc, progress=progress)
    if files:
        _print_report(report)
        return
    console.print(
        f"analysed again: {again.measurements:,} measurements, {again.observations:,} "
        f"observations, {again.verdicts:,} verdicts; {again.changed:,} verdicts changed"
    )
    if again.kept:
        console.print(f"kept as they were: {again.kept:,} measurements")
        for reason in again.reasons:
            console.print(f"  {reason}")


@contextmanager
def _workers(
    workers: int | None, scheduler: str | None, jobs: int | None, large: bool
) -> Iterator[Client | LocalPool | None]:
    """The Dask client the options ask for, else a pool of this machine's processes (`_pool`),
    else None: this process does the work."""
    if sum(option is not None for option in (workers, scheduler, jobs)) > 1:
        raise ReachwatchError("give one of --workers N (a local Dask cluster), --scheduler "
                              "ADDRESS or --jobs N (processes without a cluster)")  # fmt: skip
    if workers is None and scheduler is None:
        with _pool(jobs, large) or nullcontext() as pool:
            yield pool
        return
    from distributed import Client

    from ..pipeline._dask import local_cluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=5)
        except OSError as exc:
            raise ReachwatchError(f"cannot reach the scheduler {scheduler}: {exc}") from None
        with client:
            yield client
        return
    assert workers is not None  # one of the two, checked above
    with local_cluster(workers) as cluster, Client(cluster) as client:
        yield client


def export(
    parquet: Annotated[Path, typer.Option(help="Write the tables as Parquet into this folder.")],
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """Export the store's tables as Parquet, measurements, observations and verdicts
    partitioned by day and country (Hive layout), so any engine can read them."""
    with Store(db, read_only=True) as store:
        counts = export_parquet(store, parquet)
    table = Table("table", "rows", title=f"exported to {parquet}")
    for name, rows in counts.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
