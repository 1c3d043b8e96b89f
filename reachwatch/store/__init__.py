"""The store: DuckDB tables for measurements, observations, verdicts, the quarantine and claims."""

from ._claims import ClaimsAdded, add_claims, claim_rows, measured_targets
from ._export import export_parquet
from ._queries import StatusRow, status, verdict_rows
from ._store import (
    DB_ENV,
    DEFAULT_DB,
    Store,
    archive_root_for,
    default_db_path,
)

__all__ = [
    "DB_ENV",
    "DEFAULT_DB",
    "ClaimsAdded",
    "StatusRow",
    "Store",
    "add_claims",
    "archive_root_for",
    "claim_rows",
    "default_db_path",
    "export_parquet",
    "measured_targets",
    "status",
    "verdict_rows",
]
