"""Synthetic verdict histories written straight into a store: the answers read verdicts, so
their tests need neither measurements nor a pipeline run to set up a history."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from reachwatch.store import Store

NETWORKS = {29049: "Delta Telecom", 31721: "Azercell", 28787: "Baktelekom"}


@dataclass(frozen=True)
class Row:
    asn: int
    target: str
    at: datetime  # naive UTC
    verdict: str
    technique: str | None = None
    via: str | None = None
    run_id: str | None = None
    cc: str = "AZ"

    @property
    def uid(self) -> str:
        key = f"{self.asn}{self.target}{self.at}{self.via}".encode()
        return f"{self.at:%Y%m%d%H%M%S}_{self.cc}_{hashlib.sha256(key).hexdigest()[:12]}"


def write(db: Path, rows: list[Row]) -> None:
    """Store the rows (one measurement each), in the order given."""
    with Store(db) as store:
        for row in rows:
            store.execute(
                "INSERT INTO measurements (measurement_uid, uid_computed, test_name, known_test, "
                "probe_cc, probe_asn, probe_network_name, measurement_start_time, raw_path, "
                "raw_offset, raw_index, raw_size, ingest_id) "
                "VALUES (?, false, ?, true, ?, ?, ?, ?, 'synthetic', 0, 0, 0, 'test')",
                [row.uid, row.target.split("/")[0], row.cc, row.asn, NETWORKS.get(row.asn),
                 row.at],
            )  # fmt: skip
            store.execute(
                "INSERT INTO verdicts (measurement_uid, target, verdict, technique, reason, "
                "test_name, probe_cc, probe_asn, measurement_start_time, via, run_id, "
                "probe_network_name) VALUES (?, ?, ?, ?, 'synthetic', ?, ?, ?, ?, ?, ?, ?)",
                [row.uid, row.target, row.verdict, row.technique, row.target.split("/")[0],
                 row.cc, row.asn, row.at, row.via, row.run_id, NETWORKS.get(row.asn)],
            )  # fmt: skip


def series(
    asn: int,
    target: str,
    start: datetime,
    days: int,
    per_day: int,
    blocked: tuple[datetime, datetime] | None = None,
    technique: str = "udp.timeout",
) -> list[Row]:
    """Evenly spaced direct verdicts, `blocked` inside the window, `ok` outside."""
    step = timedelta(days=1) / per_day
    rows = []
    for k in range(days * per_day):
        at = start + k * step
        inside = blocked is not None and blocked[0] <= at < blocked[1]
        rows.append(Row(asn, target, at, "blocked" if inside else "ok",
                        technique if inside else None))  # fmt: skip
    return rows
