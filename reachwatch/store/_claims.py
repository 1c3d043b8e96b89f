"""The claims table: what sources say, added from claims files and read back for checking.

Rows are plain dicts of the table's columns (reachwatch.answers.claims.Claim.record() makes
them, Claim.from_record() reads them), so the store does not depend on the answers layer."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson

from .._errors import StoreError
from ._schema import CLAIM_COLUMNS
from ._store import Store

_BOOKKEEPING = ("source_file", "digest", "added_at")
CLAIM_FIELDS = tuple(c for c in CLAIM_COLUMNS if c not in _BOOKKEEPING)
"""The columns that are the claim itself; a claim is the same when these are."""


@dataclass(frozen=True)
class ClaimsAdded:
    """What `add_claims` did, by claim id."""

    added: tuple[str, ...]
    updated: tuple[str, ...]  # stored before with other content: the new version replaced it
    unchanged: tuple[str, ...]


def _digest(record: Mapping[str, Any]) -> str:
    """A fingerprint of the claim's content (its fields, not where or when it was added)."""
    content = {name: record.get(name) for name in CLAIM_FIELDS}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def add_claims(store: Store, records: Iterable[Mapping[str, Any]], source_file: str) -> ClaimsAdded:
    """Store claims in one transaction: a new id is added, the same id with the same content
    changes nothing, the same id with other content replaces the stored version."""
    added: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    columns = ", ".join(CLAIM_COLUMNS)
    marks = ", ".join("?" for _ in CLAIM_COLUMNS)
    now = datetime.now(UTC).replace(tzinfo=None)
    store.execute("BEGIN TRANSACTION")
    try:
        for record in records:
            digest = _digest(record)
            row = store.execute("SELECT digest FROM claims WHERE id = ?", [record["id"]]).fetchone()
            if row is not None and row[0] == digest:
                unchanged.append(record["id"])
                continue
            (added if row is None else updated).append(record["id"])
            values = {**record, "source_file": source_file, "digest": digest, "added_at": now}
            store.execute(
                f"INSERT OR REPLACE INTO claims ({columns}) VALUES ({marks})",
                [values.get(name) for name in CLAIM_COLUMNS],
            )
        store.execute("COMMIT")
    except Exception as exc:
        store.execute("ROLLBACK")
        if isinstance(exc, duckdb.Error):
            raise StoreError(f"{store.path}: adding claims failed, none stored: {exc}") from None
        raise
    return ClaimsAdded(tuple(added), tuple(updated), tuple(unchanged))


def claim_rows(
    store: Store, *, cc: str | None = None, subject: str | None = None
) -> list[dict[str, Any]]:
    """Stored claims as dicts of their columns, by country then id; `subject` is an app name
    or a site's domain."""
    clauses, params = ["TRUE"], []
    if cc is not None:
        clauses.append("country = ?")
        params.append(cc.upper())
    if subject is not None:
        clauses.append("(app = ? OR site = ?)")
        params += [subject, subject.lower()]
    cursor = store.execute(
        f"SELECT * FROM claims WHERE {' AND '.join(clauses)} ORDER BY country, id", params
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def measured_targets(store: Store, cc: str) -> list[str]:
    """The targets measured directly in a country: site claims are checked against its URLs."""
    rows = store.execute(
        "SELECT DISTINCT target FROM verdicts WHERE probe_cc = ? AND via IS NULL ORDER BY target",
        [cc.upper()],
    ).fetchall()
    return [row[0] for row in rows]
