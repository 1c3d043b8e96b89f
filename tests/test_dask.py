"""The ingest on dask.distributed stores what the in-process ingest stores, row for row, and
the tables export to Parquet that reads back the same. A real LocalCluster of 2 worker
processes, started by `reachwatch reprocess --workers 2` as a user starts it."""

from __future__ import annotations

import gzip
import hashlib
import os
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import duckdb
import orjson
import pytest

from bench.build import variants
from reachwatch import ReachwatchError
from reachwatch.archive import ArchiveReader, RawLocation
from reachwatch.model import parse_measurement
from reachwatch.pipeline import ingest
from reachwatch.pipeline._dask import partitions
from reachwatch.store import Store

from .conftest import reachwatch

SAMPLES = Path(__file__).parent.parent / "samples"
PER_RUN = {  # columns that name the run or where its bytes went, not what was measured
    "measurements": {"raw_path", "raw_offset", "raw_index", "ingest_id"},
    "quarantine": {"ingest_id", "quarantined_at", "raw_path", "raw_offset"},
}
COMPARED = ("measurements", "observations", "verdicts", "quarantine")


def checksum(con: duckdb.DuckDBPyConnection, source: str, columns: list[str]) -> tuple[int, str]:
    """Rows and a digest of them, whatever their order."""
    rows = con.execute(f"SELECT {', '.join(columns)} FROM {source}").fetchall()
    lines = sorted(repr(row) for row in rows)
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


def columns_of(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    names = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    return [n for n in names if n not in PER_RUN.get(table, set())]


def checksums(db: Path) -> dict[str, tuple[int, str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {t: checksum(con, t, columns_of(con, t)) for t in COMPARED}


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 measurements in OONI's raw layout over three days and many countries, the bundled
    real samples beside them, and a plain file with duplicates and broken records."""
    root = tmp_path_factory.mktemp("feed")
    measured = variants(600, days=3, seed=11)
    files: dict[Path, list[bytes]] = defaultdict(list)
    for m in measured:
        when = datetime.strptime(m["measurement_start_time"], "%Y-%m-%d %H:%M:%S")
        folder = root / "raw" / f"{when:%Y%m%d}" / f"{when:%H}" / m["probe_cc"] / m["test_name"]
        files[folder / "part.jsonl.gz"].append(orjson.dumps(m))
    for path, lines in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    extra = [orjson.dumps(m) for m in measured[:25]] + [b'{"not": "a measurement"}', b"{broken"]
    (root / "extra.jsonl").write_bytes(b"\n".join(extra) + b"\n")
    return root


def test_partitions_are_day_by_country_of_oonis_layout(feed: Path) -> None:
    files = sorted(p for p in feed.rglob("*") if p.is_file())
    parts = partitions(files)
    for part in parts:
        keys = {(p.parts[-5], p.parts[-3]) for p in part if "raw" in p.parts}
        assert len(keys) <= 1  # one day and one country, or a file of its own
    assert sum(len(p) for p in parts) == len(files)
    assert [feed / "extra.jsonl"] in parts
    assert len(parts) > 20


def test_dask_stores_what_the_in_process_ingest_stores(feed: Path, tmp_path: Path) -> None:
    inputs = [str(feed), str(SAMPLES)]
    local = tmp_path / "local.duckdb"
    with Store(local) as store:
        report = ingest(inputs, store)
    assert report.reconciled and report.stored > 600 and report.duplicates >= 25
    assert report.quarantined >= 2

    spread = tmp_path / "dask.duckdb"
    done = reachwatch("reprocess", *inputs, "--db", str(spread), "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert f"stored {report.stored:,} + duplicates {report.duplicates:,}" in done.stdout
    assert checksums(spread) == checksums(local)

    # every stored measurement's bytes come back from the archive, as the measurement
    with Store(spread, read_only=True) as store:
        rows = store.execute(
            "SELECT measurement_uid, raw_path, raw_offset, raw_index, raw_size FROM measurements "
            "ORDER BY raw_path, raw_offset, raw_index"
        ).fetchall()
        with ArchiveReader(store.archive_root) as reader:
            found = reader.read_all([RawLocation(*row[1:4]) for row in rows])
            for (uid, *_, size), data in zip(rows, found, strict=True):
                assert isinstance(data, bytes), (uid, data)
                assert len(data) == size and parse_measurement(data).uid == uid

    again = reachwatch("reprocess", *inputs, "--db", str(spread), "--workers", "2")
    assert "stored 0 +" in again.stdout  # a second run adds nothing
    assert checksums(spread) == checksums(local)


def test_worker_processes_without_a_cluster_store_what_one_process_stores(
    feed: Path, tmp_path: Path
) -> None:
    """`reachwatch ingest --jobs 2`: processes of this machine analyse, no cluster; the same
    rows, and `reprocess --jobs 2` analyses them again to the same verdicts."""
    inputs = [str(feed), str(SAMPLES)]
    local = tmp_path / "local.duckdb"
    with Store(local) as store:
        report = ingest(inputs, store)
    pooled = tmp_path / "pool.duckdb"
    done = reachwatch("ingest", *inputs, "--db", str(pooled), "--jobs", "2")
    assert done.returncode == 0, done.stderr
    assert f"stored {report.stored:,} + duplicates {report.duplicates:,}" in done.stdout
    assert checksums(pooled) == checksums(local)
    with Store(pooled) as store:
        store.execute("UPDATE verdicts SET verdict = 'blocked' WHERE verdict = 'ok' "
                      "AND measurement_uid IN (SELECT measurement_uid FROM verdicts "
                      "WHERE verdict = 'ok' ORDER BY 1 LIMIT 5)")  # fmt: skip
    again = reachwatch("reprocess", "--db", str(pooled), "--jobs", "2")
    assert again.returncode == 0, again.stderr
    assert "analysed again" in again.stdout and " 0 verdicts changed" not in again.stdout
    assert checksums(pooled) == checksums(local)


def test_worker_processes_start_by_default_only_for_large_work() -> None:
    """Below 64 MB of input starting them costs about what they save; `--jobs` decides."""
    from reachwatch.cli._ingest import _pool

    assert _pool(None, large=False) is None and _pool(1, large=True) is None
    cores = len(os.sched_getaffinity(0))
    default = _pool(None, large=True)
    assert (default.workers if default else 1) == cores
    asked = _pool(3, large=False)
    assert asked is not None and asked.workers == 3
    for pool in (default, asked):
        if pool:
            pool.shutdown()


def test_a_worker_process_that_dies_stops_the_ingest_with_whole_batches_stored(
    tmp_path: Path,
) -> None:
    """A worker killed mid-task (here it exits): a clear error, nothing half-written (the
    partition analysed before it is stored whole or not at all); running again adds the rest."""
    from reachwatch.pipeline import LocalPool, _dask
    from reachwatch.pipeline._ingest import write_all

    local = tmp_path / "local.duckdb"
    with Store(local) as store:
        expected = ingest([SAMPLES], store).stored
    files = _dask.measurement_files([SAMPLES])
    good = (_dask.analyse_partition, [str(p) for p in files], 1)
    db = tmp_path / "killed.duckdb"
    with LocalPool(2) as pool, Store(db) as store:
        with pytest.raises(ReachwatchError, match="a worker process died"):
            write_all(_dask._in_order(pool, iter([good, (os._exit, 9, 1)]), None), store, files)
        stored = store.execute("SELECT count(*) FROM measurements").fetchone()
        assert stored is not None and stored[0] in (0, expected)
        again = ingest([SAMPLES], store)
        assert again.reconciled and again.stored + again.duplicates == again.read
    assert checksums(db) == checksums(local)


def test_parquet_export_reads_back_the_same_tables(feed: Path, tmp_path: Path) -> None:
    db = tmp_path / "p.duckdb"
    with Store(db) as store:
        ingest([feed], store)
    out = tmp_path / "parquet"
    done = reachwatch("export", "--parquet", str(out), "--db", str(db))
    assert done.returncode == 0, done.stderr
    days = {p.name for p in (out / "verdicts").iterdir()}
    assert days == {"day=2024-05-01", "day=2024-05-02", "day=2024-05-03"}
    assert (out / "verdicts" / "day=2024-05-01" / "probe_cc=AZ").is_dir()
    with duckdb.connect(str(db), read_only=True) as con:
        for table in ("measurements", "observations", "verdicts"):
            columns = columns_of(con, table)
            exported = (f"read_parquet('{out}/{table}/**/*.parquet', hive_partitioning = true, "
                        "hive_types_autocast = false)")  # fmt: skip
            assert checksum(con, exported, columns) == checksum(con, table, columns), table
        quarantine = columns_of(con, "quarantine")
        assert checksum(con, f"'{out}/quarantine.parquet'", quarantine) == checksum(
            con, "quarantine", quarantine
        )
    hooks = duckdb.sql(f"DESCRIBE SELECT * FROM '{out}/webhooks.parquet'").fetchall()
    assert "url" in {c[0] for c in hooks} and "secret" not in {c[0] for c in hooks}
    refused = reachwatch("export", "--parquet", str(out), "--db", str(db))
    assert refused.returncode != 0 and "not an empty folder" in refused.stderr


def test_reprocess_says_what_it_needs(tmp_path: Path) -> None:
    both = reachwatch("reprocess", str(SAMPLES), "--db", str(tmp_path / "x.duckdb"),
                      "--workers", "2", "--scheduler", "tcp://127.0.0.1:9")  # fmt: skip
    assert both.returncode != 0 and "give one of" in both.stderr
    nowhere = reachwatch("reprocess", str(SAMPLES), "--db", str(tmp_path / "x.duckdb"),
                         "--scheduler", "tcp://127.0.0.1:9")  # fmt: skip
    assert nowhere.returncode != 0 and "cannot reach the scheduler" in nowhere.stderr
    jobs = reachwatch("reprocess", "--db", str(tmp_path / "x.duckdb"), "--jobs", "2",
                      "--workers", "2")  # fmt: skip
    assert jobs.returncode != 0 and "give one of" in jobs.stderr


def test_stored_measurements_are_analysed_again_from_the_archive(
    feed: Path, tmp_path: Path
) -> None:
    """After the pipeline changed, `reprocess` with no paths derives observations and verdicts
    again from the raw archive, here and on Dask; what it cannot read keeps its rows."""
    db = tmp_path / "again.duckdb"
    with Store(db) as store:
        ingest([feed, SAMPLES], store)
    expected = checksums(db)

    def tamper() -> int:
        """What an older pipeline might have said: some verdicts otherwise, observations gone;
        returns how many verdicts it changed."""
        with Store(db) as store:
            updated = store.execute(
                "UPDATE verdicts SET verdict = 'blocked', technique = 'dns.old' WHERE "
                "measurement_uid IN (SELECT measurement_uid FROM verdicts WHERE verdict = 'ok' "
                "ORDER BY measurement_uid LIMIT 40)"
            ).fetchone()
            store.execute("DELETE FROM observations WHERE idx = 0")
        assert updated is not None and updated[0] >= 40 and checksums(db) != expected
        return int(updated[0])

    changed = tamper()
    here = reachwatch("reprocess", "--db", str(db))
    assert here.returncode == 0, here.stderr
    assert f"{changed} verdicts changed" in here.stdout
    assert checksums(db) == expected
    tamper()
    spread = reachwatch("reprocess", "--db", str(db), "--workers", "2")
    assert spread.returncode == 0, spread.stderr
    assert f"{changed} verdicts changed" in spread.stdout
    assert checksums(db) == expected
    assert "0 verdicts changed" in reachwatch("reprocess", "--db", str(db), "--cc", "AZ").stdout

    with Store(db) as store:  # an archive file lost: its measurements keep the rows they had
        lost, count = store.execute("SELECT raw_path, count(*) FROM measurements GROUP BY ALL "
                                    "ORDER BY 2 DESC, 1 LIMIT 1").fetchone() or ("", 0)  # fmt: skip
        (store.archive_root / lost).unlink()
    tamper()
    partly = reachwatch("reprocess", "--db", str(db))
    assert partly.returncode == 0, partly.stderr
    assert f"kept as they were: {count} measurements" in partly.stdout
    assert "archive unreadable" in partly.stdout


def test_a_partition_too_large_for_one_task_goes_in_batches(
    feed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read here and sent in batches of records: the same rows, each result a batch's size."""
    from distributed import Client

    from reachwatch.pipeline import _dask, ingest_on

    local = tmp_path / "local.duckdb"
    with Store(local) as store:
        ingest([feed], store)
    files = sorted(p for p in feed.rglob("*") if p.is_file())
    sizes = sorted(sum(p.stat().st_size for p in part) for part in partitions(files))
    monkeypatch.setattr(_dask, "PARTITION_BYTES", sizes[len(sizes) // 2])  # half are larger
    monkeypatch.setattr(_dask, "BATCH_SIZE", 7)
    tasks = list(_dask._tasks(partitions(files), None))
    batches = [argument for function, argument, _ in tasks if function is _dask.analyse]
    assert batches and max(map(len, batches)) == 7  # records, read here
    assert any(function is _dask.analyse_partition for function, _, _ in tasks)  # small ones
    spread = tmp_path / "spread.duckdb"
    progressed: list[int] = []
    with _dask.local_cluster(2) as cluster, Client(cluster) as client, Store(spread) as store:
        report = ingest_on(client, [feed], store, progress=progressed.append)
    assert report.reconciled
    assert checksums(spread) == checksums(local)
    assert sum(progressed) == sum(p.stat().st_size for p in feed.rglob("*") if p.is_file())


def _worker_settings() -> tuple[bool, str | None]:
    import dask

    return dask.config.get("distributed.worker.profile.enabled"), os.environ.get(
        "MALLOC_TRIM_THRESHOLD_"
    )


def test_the_local_clusters_workers_keep_glibcs_malloc_and_take_no_profile() -> None:
    """What `local_cluster` changes of Dask's defaults reaches its worker processes: no fixed
    trim threshold (it fixes glibc's mmap threshold too) and no stack sampling."""
    import dask
    from distributed import Client

    from reachwatch.pipeline._dask import local_cluster

    assert "MALLOC_TRIM_THRESHOLD_" in dask.config.get("distributed.nanny.pre-spawn-environ")
    assert dask.config.get("distributed.worker.profile.enabled")  # Dask's defaults, here
    with local_cluster(2) as cluster, Client(cluster) as client:
        assert list(client.run(_worker_settings).values()) == [(False, None)] * 2
