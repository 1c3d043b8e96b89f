"""The ingest on workers: a dask.distributed cluster's, or processes of this machine (a
`LocalPool`, no cluster to start). Workers analyse partitions, this process writes them.

Analysis (reading, parsing, observations, verdicts, compressing for the archive) is pure and
costs nearly all the time, so it runs on the workers; DuckDB has one writer, so the archive
and the store are written here, partition after partition in a fixed order. The rows are
those of an in-process `ingest` of the same files, whatever the workers and their number.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .._errors import ReachwatchError
from ..archive import measurement_files, read_records
from ..store import Store
from ._ingest import (
    BATCH_SIZE,
    COMMIT_ROWS,
    Analysed,
    IngestReport,
    Progress,
    analyse,
    batched,
    write_all,
)

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

_Task = tuple[Callable[[Any], Analysed], Any, int]  # function, its argument, bytes it covers


class LocalPool(ProcessPoolExecutor):
    """Worker processes on this machine: every core analyses, with no cluster to start.

    They are forked from a server process that imported the pipeline once (not from this
    process, whose threads a fork would copy mid-step), so each starts in milliseconds.
    Lighter than a local Dask cluster: no scheduler, results come back through a pipe."""

    def __init__(self, workers: int) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["reachwatch.pipeline"])
        super().__init__(workers, mp_context=context, initializer=_worker_started,
                         initargs=(os.getpid(),))  # fmt: skip
        self.workers = workers


def _worker_started(ingest: int) -> None:
    """A pool's worker ends with the process it works for."""
    threading.Thread(target=_end_with, args=(ingest,), name="reachwatch-ingest-watch",
                     daemon=True).start()  # fmt: skip


def _end_with(pid: int) -> None:
    """Wait for process `pid` to end, then end this one. Killed (kill -9), an ingest cannot
    stop its workers, and a worker waiting for its next task would wait forever: it holds
    both ends of its task pipe, so it never sees the end of it."""
    try:
        watched = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(1)
    except (OSError, AttributeError):  # no pidfd (not Linux, or before 5.3): look each second
        while True:
            time.sleep(1)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
    select.select([watched], [], [])  # readable once the process has ended
    os._exit(1)


PARTITION_BYTES = 64 << 20
"""A partition whose files hold more is sent to the workers in batches of records."""

_OONI_LAYOUT = re.compile(r"(?:^|/)raw/(\d{8})/\d{2}/([A-Z]{2})/")


def partitions(files: list[Path]) -> list[list[Path]]:
    """Files grouped into partitions: a day x country of OONI's raw layout (`raw/YYYYMMDD/HH/
    CC/...`) is one; any other file is one by itself. Order follows the files'."""
    groups: dict[tuple[str, ...], list[Path]] = {}
    for path in files:
        found = _OONI_LAYOUT.search(path.as_posix())
        key = found.groups() if found else (str(path),)
        groups.setdefault(key, []).append(path)
    return list(groups.values())


def local_cluster(workers: int) -> LocalCluster:
    """A cluster of worker processes on this machine, one thread each (analysis holds the GIL).

    Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in its workers so that they hand memory back to
    the system often. Setting it at all fixes glibc's mmap threshold at 128 KiB, so every large
    buffer (a measurement, an inflated block) is mapped and faulted in afresh: analysis took
    60% more CPU in such a worker (17 times the page faults). Workers here keep glibc's
    defaults; the other variables Dask sets stay.

    Dask's workers also sample their own stacks every 10 ms for its dashboard's profile, which
    this cluster has no use for: without it, ingesting 100,000 bench measurements took 3.5%
    less CPU (2 workers, two runs each way)."""
    import dask
    from distributed import LocalCluster

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    settings = {"distributed.nanny.pre-spawn-environ": environ,
                "distributed.worker.profile.enabled": False}  # fmt: skip
    with dask.config.set(settings):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address=None)  # fmt: skip


def analyse_partition(files: list[str]) -> Analysed:
    """What a worker runs: one partition's records, analysed. Its files are inflated as they
    are read, not ahead in a thread: the other cores have workers of their own."""
    return analyse(record for path in files for record in read_records(Path(path), ahead=False))


def ingest_on(
    client: Client | LocalPool,
    paths: Iterable[str | PathLike[str]],
    store: Store,
    *,
    commit_rows: int = COMMIT_ROWS,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest `paths` with the workers of `client` (a Dask client or a `LocalPool`)
    analysing, a partition per task.

    The workers read the files of a partition themselves (on a cluster, the paths must be
    where they can see them); a partition too large for one task (one huge file, say) is read
    here and sent in batches instead, so no task's result outgrows a batch's. At most a few
    tasks more than there are workers are in flight: this process holds a bounded amount
    whatever the input size. Commits come every `commit_rows` rows, as in `ingest`."""
    files = measurement_files(paths)
    tasks = _tasks(partitions(files), progress)
    return write_all(_in_order(client, tasks, progress), store, files, commit_rows)


def _tasks(parts: list[list[Path]], progress: Progress | None) -> Iterator[_Task]:
    """What to submit, in order: a partition's paths, or batches of its records."""
    for files in parts:
        size = sum(p.stat().st_size for p in files)
        if size <= PARTITION_BYTES:
            yield analyse_partition, [str(p) for p in files], size
            continue
        for path in files:
            for batch in batched(read_records(path, on_bytes=progress), BATCH_SIZE):
                yield analyse, batch, 0


def _in_order(
    client: Client | LocalPool, tasks: Iterator[_Task], progress: Progress | None
) -> Iterator[Analysed]:
    """Each task's result in submission order, with a bounded window of tasks running."""
    submit: Callable[[Callable[[Any], Analysed], Any], _Pending]
    if isinstance(client, LocalPool):
        window, submit = client.workers + 2, client.submit
    else:  # not pure: the same paths given twice are two tasks, not one result reused
        window = max(1, sum(client.nthreads().values())) + 2
        submit = partial(client.submit, pure=False)
    running: deque[tuple[_Pending, int]] = deque()
    for function, argument, size in tasks:
        running.append((submit(function, argument), size))
        while len(running) >= window or (running and running[0][0].done()):
            yield _result(*running.popleft(), progress)
    while running:
        yield _result(*running.popleft(), progress)


class _Pending(Protocol):
    """A Dask future or a concurrent.futures one: all `_in_order` asks of either."""

    def done(self) -> bool: ...
    def result(self) -> Any: ...


def _result(future: _Pending, size: int, progress: Progress | None) -> Analysed:
    try:
        chunk: Analysed = future.result()
    except BrokenProcessPool:
        raise ReachwatchError(
            "a worker process died (killed, or out of memory): what was written before stays "
            "stored; run the same command again to add the rest"
        ) from None
    if progress is not None and size:
        progress(size)
    return chunk
