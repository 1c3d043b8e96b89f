"""The store: DuckDB tables for measurements, observations, verdicts and the quarantine."""

from ._queries import StatusRow, status, verdict_rows
from ._store import DB_ENV, DEFAULT_DB, Store, archive_root_for, default_db_path

__all__ = [
    "DB_ENV",
    "DEFAULT_DB",
    "StatusRow",
    "Store",
    "archive_root_for",
    "default_db_path",
    "status",
    "verdict_rows",
]
