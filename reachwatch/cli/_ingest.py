"""`reachwatch ingest`, `reprocess` and `export`: measurements into the store, in this process
or on a Dask cluster, and the store's tables out as Parquet for any engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .. import ReachwatchError
from ..archive import measurement_files
from ..pipeline import IngestReport
from ..pipeline import ingest as run_ingest
from ..store import DEFAULT_DB, INGEST_MEMORY_LIMIT, Store, export_parquet
from ._common import DbOption, console, errors

PathsArgument = Annotated[list[Path], typer.Argument(help="JSON, JSONL, .gz files or folders.")]


@contextmanager
def _progress(paths: list[Path], what: str) -> Iterator[Callable[[int], None]]:
    """A progress bar over the input's bytes (on stderr, gone when done)."""
    total = sum(p.stat().st_size for p in measurement_files(paths))
    columns = (TextColumn(f"[bold]{what}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
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


def ingest(paths: PathsArgument, db: DbOption = Path(DEFAULT_DB)) -> None:
    """Ingest OONI measurements: archive them, derive observations and verdicts, store them."""
    with (
        Store(db, memory_limit=INGEST_MEMORY_LIMIT) as store,
        _progress(paths, "ingest") as progress,
    ):
        report = run_ingest(paths, store, progress=progress)
    _print_report(report)


def reprocess(
    paths: PathsArgument,
    db: DbOption = Path(DEFAULT_DB),
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Start a local Dask cluster of this many worker processes."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Use the Dask cluster whose scheduler is at this address "
                     "(tcp://HOST:PORT); its workers must see the input paths."),
    ] = None,
) -> None:  # fmt: skip
    """Ingest on dask.distributed: workers analyse the input a partition (day x country of
    OONI's layout, else a file) at a time, this process archives and stores the results. The
    rows are those an in-process `ingest` stores."""
    if (workers is None) == (scheduler is None):
        raise ReachwatchError("give either --workers N (a local cluster) or --scheduler ADDRESS")
    from distributed import Client

    from ..pipeline import ingest_on
    from ..pipeline._dask import local_cluster

    with Store(db, memory_limit=INGEST_MEMORY_LIMIT) as store:
        if scheduler is not None:
            try:
                client = Client(scheduler, timeout=5)
            except OSError as exc:
                raise ReachwatchError(f"cannot reach the scheduler {scheduler}: {exc}") from None
            with client, _progress(paths, "reprocess") as progress:
                report = ingest_on(client, list(paths), store, progress=progress)
        else:
            assert workers is not None  # one of the two, checked above
            with (
                local_cluster(workers) as cluster,
                Client(cluster) as client,
                _progress(paths, "reprocess") as progress,
            ):
                report = ingest_on(client, list(paths), store, progress=progress)
    _print_report(report)


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
