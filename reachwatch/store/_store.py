"""The embedded store: one DuckDB file, plus the raw archive folder beside it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from .._errors import StoreError
from ._schema import MIGRATIONS, SCHEMA_VERSION, TABLES, UID_TIME, create_statements

DEFAULT_DB = "reachwatch.duckdb"
MEMORY_LIMIT = "256MB"
"""DuckDB's buffer pool; it spills beyond it, so a query of any size stays within bounds."""
INGEST_MEMORY_LIMIT = "128MB"
"""An ingest only appends: a smaller pool keeps its peak RSS bounded at any input size (256 MB
let a million-measurement ingest reach 526 MB), while answers over millions of rows keep the
larger one (at 128 MB their p95 grew by a quarter)."""
INGEST_THREADS = 1
"""An ingest's transactions are small appends: a second DuckDB thread gains them nothing and
competes with analysis for the cores (4% more CPU per measurement, ingesting 30,000)."""
INGEST_CHECKPOINT = "256MB"
"""How much an ingest writes to the WAL before DuckDB checkpoints it into the file (DuckDB's
default is 16 MB). A checkpoint costs more the larger the tables: writing 400,000
measurements (4,000 real ones under 100 sets of uids) took 64 us of CPU each at the default,
46 at 256 MB. A crash replays at most that much WAL on the next open."""
INGEST_BLOCK_MEMORY = INGEST_MEMORY_LIMIT
"""Memory an ingest's DuckDB keeps for its blocks once it has used it, instead of handing it
back to its allocator, which returned the pages to the system and faulted them in again at
every batch: ingesting 100,000 measurements with 2 worker processes, the writing process
spent 12 to 15 us of system time a measurement instead of 22 to 26."""
DB_ENV = "REACHWATCH_DB"


def default_db_path() -> Path:
    """`REACHWATCH_DB` when set, else `reachwatch.duckdb` in the current folder."""
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB)


def archive_root_for(db_path: Path) -> Path:
    """The raw archive lives next to its database: `reachwatch.duckdb` -> `reachwatch-archive/`."""
    return db_path.with_name(db_path.stem + "-archive")


class Store:
    """Tables of DESIGN.md in one DuckDB file. Writes go through `write_batch`, one transaction."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        read_only: bool = False,
        memory_limit: str = MEMORY_LIMIT,
        threads: int | None = None,
        checkpoint: str | None = None,
        block_memory: str | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self._holding = False  # a transaction of held batches is open (`write_batch`)
        if read_only and not self.path.exists():
            raise StoreError(f"{self.path}: no such database (run `reachwatch ingest` first)")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            config: dict[str, str | bool | int | float | list[str]] = {"memory_limit": memory_limit}
            if threads:
                config["threads"] = threads
            if checkpoint:
                config["checkpoint_threshold"] = checkpoint
            if block_memory:
                config["block_allocator_memory"] = block_memory
            self.con = duckdb.connect(str(self.path), read_only=read_only, config=config)
        except duckdb.Error as exc:
            raise StoreError(f"{self.path}: cannot open the database: {exc}") from None
        try:
            if not read_only:
                self._create()
            self._check_version()
        except BaseException:  # a store that cannot be used must not stay open (and locked)
            self.con.close()
            raise
        self.archive_root = archive_root_for(self.path)

    def _create(self) -> None:
        for statement in create_statements():
            self.con.execute(statement)
        self._migrate()
        self.con.execute(
            "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING",
            [SCHEMA_VERSION],
        )

    def _migrate(self) -> None:
        """Bring an older store up to this schema in place, keeping everything in it."""
        row = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or row[0] not in MIGRATIONS:
            return
        self.con.execute("BEGIN TRANSACTION")
        for version in range(int(row[0]), int(SCHEMA_VERSION)):
            for statement in MIGRATIONS[str(version)]:
                self.con.execute(statement)
        self.con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [SCHEMA_VERSION])
        self.con.execute("COMMIT")

    def _check_version(self) -> None:
        try:
            row = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except duckdb.CatalogException:
            raise StoreError(f"{self.path}: not a reachwatch database") from None
        if row is None or row[0] != SCHEMA_VERSION:
            found = row[0] if row else "none"
            raise StoreError(
                f"{self.path}: schema version {found}, this reachwatch needs {SCHEMA_VERSION}"
                + (" (any `reachwatch ingest` upgrades it)" if found in MIGRATIONS else "")
            )

    @classmethod
    def for_ingest(cls, path: Path | str | None = None) -> Store:
        """The store as an ingest (or a re-analysis) writes it: a small pool, one thread,
        checkpoints far apart, its blocks kept."""
        return cls(path, memory_limit=INGEST_MEMORY_LIMIT, threads=INGEST_THREADS,
                   checkpoint=INGEST_CHECKPOINT, block_memory=INGEST_BLOCK_MEMORY)  # fmt: skip

    def close(self) -> None:
        """Close the database; batches still held roll back (only `commit` keeps them)."""
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------------

    def uid_times(self, uids: pa.ChunkedArray) -> pa.Array:
        """Each uid's UID_TIME, as the store computes it (one definition, also for the rows
        a migration gave it)."""
        rows = self.con.execute(
            f"SELECT {UID_TIME.format(uid='u')} FROM (SELECT unnest(?::VARCHAR[]) AS u)",
            [uids.to_pylist()],
        ).fetchall()
        return pa.array([row[0] for row in rows], pa.timestamp("us"))

    def known_uids(self, uids: list[str], first: datetime, last: datetime) -> set[str]:
        """Which of these measurement_uids, whose UID_TIMEs lie between `first` and `last`,
        are stored.

        The time range lets DuckDB skip every row group outside it (zone maps): the check costs
        what the batch's time span holds, not the whole table.
        """
        if not uids:
            return set()
        rows = self.con.execute(
            "SELECT measurement_uid FROM measurements "
            "WHERE uid_time BETWEEN ? AND ? "
            "AND measurement_uid IN (SELECT unnest(?::VARCHAR[]))",
            [first, last, uids],
        ).fetchall()
        return {row[0] for row in rows}

    def known_quarantine(self, digests: list[str]) -> set[str]:
        if not digests:
            return set()
        rows = self.con.execute(
            "SELECT sha256 FROM quarantine WHERE sha256 IN (SELECT unnest(?::VARCHAR[]))",
            [digests],
        ).fetchall()
        return {row[0] for row in rows}

    def write_batch(
        self,
        tables: dict[str, Any],
        *,
        replace: bool = False,
        superseding: Sequence[str] = (),
        hold: bool = False,
    ) -> None:
        """Append Arrow tables (name -> table) in one transaction: all of a batch or none.
        With `replace`, a row whose key is stored takes the place of the stored one; with
        `superseding` (measurement uids), the rows of these measurements in the tables
        written are deleted first: their analysis is replaced whole.

        With `hold`, the transaction stays open and the next batch joins it; the next batch
        written without `hold`, or `commit`, commits them all. A failed batch rolls back every
        batch held with it, so a held transaction only ever holds whole batches. DuckDB writes
        the row groups of a large transaction straight into the file, compressed once, where a
        small one goes through the WAL and is compressed again at the checkpoint."""
        insert = "INSERT OR REPLACE" if replace else "INSERT"
        with self._whole():
            if not self._holding:
                self.con.execute("BEGIN TRANSACTION")
                self._holding = True
            if superseding:
                for name in tables:
                    self.con.execute(
                        f"DELETE FROM {name} WHERE measurement_uid IN "
                        "(SELECT unnest(?::VARCHAR[]))",
                        [list(superseding)],
                    )
            for name, table in tables.items():
                if table is None or table.num_rows == 0:
                    continue
                columns = ", ".join(TABLES[name])
                self.con.register("_batch", table)
                try:
                    self.con.execute(
                        f"{insert} INTO {name} ({columns}) SELECT {columns} FROM _batch"
                    )
                finally:  # in a failed transaction, too: never in place of its error
                    with contextlib.suppress(duckdb.Error):
                        self.con.unregister("_batch")
        if not hold:
            self.commit()

    def commit(self) -> None:
        """Commit the batches held (`write_batch(hold=True)`), if any."""
        if self._holding:
            with self._whole():
                self.con.execute("COMMIT")
            self._holding = False

    @contextlib.contextmanager
    def _whole(self) -> Iterator[None]:
        """A step of a transaction: if it fails (or is interrupted), the transaction rolls back
        with every batch it held, so none is ever stored in part."""
        try:
            yield
        except BaseException as exc:
            self._holding = False
            with contextlib.suppress(duckdb.Error):  # a COMMIT that failed has rolled back
                self.con.execute("ROLLBACK")
            if isinstance(exc, duckdb.Error):
                raise StoreError(f"{self.path}: write failed, nothing of this batch (or of the "
                                 f"batches held with it) stored: {exc}") from None  # fmt: skip
            raise

    def execute(self, sql: str, params: list[Any] | None = None) -> duckdb.DuckDBPyConnection:
        return self.con.execute(sql, params or [])
