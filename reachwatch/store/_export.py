"""The store's tables as Parquet, so Spark, Dask, Polars or DuckDB elsewhere read them as they
are. The large tables are split by day and country in Hive's layout (`day=2024-05-01/
probe_cc=AZ/`), the partitions the pipeline works in, so a reader skips what it does not need."""

from __future__ import annotations

from pathlib import Path

from .._errors import StoreError
from ._schema import TABLES
from ._store import Store

_KEPT_BACK = {"webhooks": "secret"}
"""Columns that stay in the store: a webhook's secret signs its deliveries, and an export is
made to be shared."""

_PARTITIONED = {
    "measurements": "SELECT *, CAST(measurement_start_time AS DATE) AS day FROM measurements",
    "verdicts": "SELECT *, CAST(measurement_start_time AS DATE) AS day FROM verdicts",
    # observations carry only their measurement's uid: its day and country come from there
    "observations": "SELECT o.*, CAST(m.measurement_start_time AS DATE) AS day, m.probe_cc "
    "FROM observations o JOIN measurements m USING (measurement_uid)",
}


def export_parquet(store: Store, folder: Path) -> dict[str, int]:
    """Write every table under `folder` (which must be new or empty); returns rows per table.
    Nothing already in a folder is overwritten."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise StoreError(f"{folder}: not an empty folder; export writes into a new one")
    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for name in TABLES:
        rows = store.execute(f"SELECT count(*) FROM {name}").fetchone()
        counts[name] = int(rows[0]) if rows else 0
        if name in _PARTITIONED:
            if counts[name]:  # an empty table has no partition to write
                target = str(folder / name).replace("'", "''")
                store.execute(f"COPY ({_PARTITIONED[name]}) TO '{target}' "
                              "(FORMAT parquet, PARTITION_BY (day, probe_cc))")  # fmt: skip
        else:
            target = str(folder / f"{name}.parquet").replace("'", "''")
            kept_back = f" EXCLUDE ({_KEPT_BACK[name]})" if name in _KEPT_BACK else ""
            store.execute(f"COPY (SELECT *{kept_back} FROM {name}) TO '{target}' "
                          "(FORMAT parquet)")  # fmt: skip
    return counts
