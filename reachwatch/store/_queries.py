"""The query layer the CLI (and later the API and web pages) share: one function per question."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ._store import Store

VERDICT_FIELDS = (
    "measurement_uid",
    "test_name",
    "probe_cc",
    "probe_asn",
    "measurement_start_time",
    "target",
    "verdict",
    "technique",
    "reason",
    "probe_says",
    "via",
)
# what going through the tunnel changed, against the direct twin of the same run
_CIRCUMVENTION = """
    CASE WHEN v.via IS NULL OR d.verdict IS NULL THEN NULL
         WHEN v.verdict = 'error' AND v.reason LIKE '%command_not_supported%' THEN 'unsupported'
         WHEN d.verdict = 'ok' THEN 'not-needed'
         WHEN d.verdict = 'blocked' AND v.verdict = 'ok' THEN 'restored'
         WHEN d.verdict = 'blocked' AND v.verdict = 'blocked' THEN 'not-restored'
    END"""


@dataclass(frozen=True)
class VerdictFilter:
    """What a search or an aggregation keeps: OONI's measurement filters, plus ours."""

    cc: str | None = None
    asn: int | None = None
    test: str | None = None
    target: str | None = None
    since: datetime | None = None  # naive UTC, inclusive
    until: datetime | None = None  # naive UTC, exclusive
    verdict: str | None = None
    technique: str | None = None
    uid: str | None = None  # one measurement's verdicts
    direct_only: bool = False

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("probe_cc", self.cc.upper() if self.cc else None),
                              ("probe_asn", self.asn), ("test_name", self.test),
                              ("target", self.target), ("verdict", self.verdict),
                              ("technique", self.technique),
                              ("measurement_uid", self.uid)):  # fmt: skip
            if value is not None:
                clauses.append(f"v.{column} = ?")
                params.append(value)
        if self.since is not None:
            clauses.append("v.measurement_start_time >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("v.measurement_start_time < ?")
            params.append(self.until)
        if self.direct_only:
            clauses.append("v.via IS NULL")
        return (" AND ".join(clauses) or "TRUE"), params


def verdict_rows(
    store: Store,
    *,
    cc: str | None = None,
    test: str | None = None,
    target: str | None = None,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Verdicts, oldest first, as plain dicts in OONI's conventions (`probe_asn` as 'AS123');
    those made through a tunnel carry `via` and `circumvention`: restored, not-restored,
    not-needed or unsupported, against the direct measurement of the same run."""
    where, params = VerdictFilter(cc=cc, test=test, target=target).where()
    sql = f"""
        SELECT {", ".join("v." + f for f in VERDICT_FIELDS)}, {_CIRCUMVENTION} AS circumvention
        FROM verdicts v LEFT JOIN (
            SELECT run_id, target, any_value(verdict) AS verdict FROM verdicts
            WHERE via IS NULL AND run_id IS NOT NULL GROUP BY run_id, target
        ) d ON v.via IS NOT NULL AND d.run_id = v.run_id AND d.target = v.target
        WHERE {where}
        ORDER BY v.measurement_start_time, v.measurement_uid, v.target, v.via NULLS FIRST"""
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    cursor = store.execute(sql, params)
    while rows := cursor.fetchmany(10_000):
        for row in rows:
            item = dict(zip((*VERDICT_FIELDS, "circumvention"), row, strict=True))
            item["probe_asn"] = f"AS{item['probe_asn']}"
            item["measurement_start_time"] = _ooni_time(item["measurement_start_time"])
            yield item


@dataclass(frozen=True, slots=True)
class StatusRow:
    """The latest verdict for one target on one network, with the counts behind it."""

    target: str
    probe_cc: str
    probe_asn: str
    network_name: str | None
    verdict: str
    technique: str | None
    measured_at: str
    measurement_uid: str
    ok: int
    blocked: int
    down: int
    error: int


def status(store: Store, *, cc: str | None = None, target: str | None = None) -> list[StatusRow]:
    """Per target and network: the newest verdict and how many of each verdict there were."""
    where, params = VerdictFilter(cc=cc, target=target).where()
    sql = f"""
        WITH v AS (
            SELECT * FROM verdicts v
            WHERE {where} AND v.via IS NULL  -- the network's own path, not a tunnel's
        ),
        counts AS (
            SELECT target, probe_cc, probe_asn,
                   count(*) FILTER (WHERE verdict = 'ok') AS ok,
                   count(*) FILTER (WHERE verdict = 'blocked') AS blocked,
                   count(*) FILTER (WHERE verdict = 'down') AS down,
                   count(*) FILTER (WHERE verdict = 'error') AS error
            FROM v GROUP BY ALL
        ),
        latest AS (
            SELECT target, probe_cc, probe_asn, probe_network_name, verdict, technique,
                   measurement_start_time, measurement_uid
            FROM v
            QUALIFY row_number() OVER (
                PARTITION BY target, probe_cc, probe_asn
                ORDER BY measurement_start_time DESC, measurement_uid DESC) = 1
        )
        SELECT l.target, l.probe_cc, l.probe_asn, l.probe_network_name, l.verdict, l.technique,
               l.measurement_start_time, l.measurement_uid, c.ok, c.blocked, c.down, c.error
        FROM latest l JOIN counts c USING (target, probe_cc, probe_asn)
        ORDER BY l.probe_cc, l.target, l.probe_asn
    """
    return [
        StatusRow(
            target=row[0],
            probe_cc=row[1],
            probe_asn=f"AS{row[2]}",
            network_name=row[3],
            verdict=row[4],
            technique=row[5],
            measured_at=_ooni_time(row[6]),
            measurement_uid=row[7],
            ok=row[8],
            blocked=row[9],
            down=row[10],
            error=row[11],
        )
        for row in store.execute(sql, params).fetchall()
    ]


def _ooni_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True, slots=True)
class SeriesRow:
    """One direct `ok` or `blocked` verdict, as the answers' series are made of."""

    probe_cc: str
    probe_asn: int
    network_name: str | None
    target: str
    at: datetime  # naive UTC, as stored
    verdict: str
    technique: str | None
    measurement_uid: str


def direct_series(
    store: Store, *, cc: str | None = None, targets: list[str] | None = None
) -> list[SeriesRow]:
    """The direct verdicts that say something about censorship (`ok`, `blocked`), ordered by
    country, network, target, time and uid: the same rows in the same order however and
    whenever they arrived."""
    where, params = VerdictFilter(cc=cc).where()
    if targets is not None:
        where += " AND v.target IN (SELECT unnest(?))"
        params.append(targets)
    sql = f"""
        SELECT v.probe_cc, v.probe_asn, v.probe_network_name, v.target,
               v.measurement_start_time, v.verdict, v.technique, v.measurement_uid
        FROM verdicts v
        WHERE {where} AND v.via IS NULL AND v.verdict IN ('ok', 'blocked')
        ORDER BY v.probe_cc, v.probe_asn, v.target, v.measurement_start_time, v.measurement_uid
    """
    return [SeriesRow(*row) for row in store.execute(sql, params).fetchall()]


def targets_measured(store: Store, cc: str | None = None, containing: str = "") -> list[str]:
    """Every target with a verdict (in the country; whose name contains `containing`), sorted.
    Narrowing here is what keeps an answer fast in a large store: the distinct targets of a
    whole country cost a scan and a hash of all its rows."""
    where, params = VerdictFilter(cc=cc).where()
    if containing:
        where += " AND contains(v.target, ?)"
        params.append(containing)
    sql = f"SELECT DISTINCT target FROM verdicts v WHERE {where} ORDER BY target"
    return [row[0] for row in store.execute(sql, params).fetchall()]


def tunnel_outcomes(
    store: Store,
    *,
    cc: str,
    targets: list[str],
    since: datetime,
    until: datetime,
    asns: list[int] | None = None,
) -> dict[str, dict[str, int]]:
    """Per target, how measurements through a tunnel (proxy, VPN) between `since` and `until`
    (on the networks `asns`, or all) compared with their direct twins: restored, not-restored,
    not-needed, unsupported."""
    sql = f"""
        SELECT v.target, {_CIRCUMVENTION} AS outcome, count(*)
        FROM verdicts v LEFT JOIN (
            SELECT run_id, target, any_value(verdict) AS verdict FROM verdicts
            WHERE via IS NULL AND run_id IS NOT NULL GROUP BY run_id, target
        ) d ON d.run_id = v.run_id AND d.target = v.target
        WHERE v.probe_cc = ? AND v.target IN (SELECT unnest(?)) AND v.via IS NOT NULL
          AND v.measurement_start_time >= ? AND v.measurement_start_time <= ?
          AND (? OR v.probe_asn IN (SELECT unnest(?)))
        GROUP BY ALL
    """
    found: dict[str, dict[str, int]] = {}
    params = [cc.upper(), targets, since, until, asns is None, asns or []]
    for target, outcome, count in store.execute(sql, params).fetchall():
        if outcome:
            found.setdefault(target, {})[outcome] = count
    return found


def search_verdicts(
    store: Store, wanted: VerdictFilter, *, limit: int = 100, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """A page of verdicts, newest first (OONI's order), and how many match in all."""
    where, params = wanted.where()
    total = store.execute(f"SELECT count(*) FROM verdicts v WHERE {where}", params).fetchone()
    sql = f"""
        SELECT {", ".join("v." + f for f in VERDICT_FIELDS)}, v.probe_network_name
        FROM verdicts v
        WHERE {where}
        ORDER BY v.measurement_start_time DESC, v.measurement_uid, v.target
        LIMIT ? OFFSET ?"""
    rows = []
    for row in store.execute(sql, [*params, limit, offset]).fetchall():
        item = dict(zip((*VERDICT_FIELDS, "probe_network_name"), row, strict=True))
        item["probe_asn"] = f"AS{item['probe_asn']}"
        item["measurement_start_time"] = _ooni_time(item["measurement_start_time"])
        rows.append(item)
    return rows, int(total[0]) if total else 0


AXES = {
    "measurement_start_day": "CAST(v.measurement_start_time AS DATE)",
    "probe_cc": "v.probe_cc",
    "probe_asn": "v.probe_asn",
    "target": "v.target",
    "technique": "v.technique",
    "test_name": "v.test_name",
}
"""What an aggregation can be broken down by (OONI's axis names where OONI has them)."""


def aggregate_verdicts(
    store: Store, wanted: VerdictFilter, axis_x: str | None = None, axis_y: str | None = None
) -> list[dict[str, Any]]:
    """Counts of each verdict, overall or per value of one or two axes."""
    axes = [a for a in (axis_x, axis_y) if a]
    for axis in axes:
        if axis not in AXES:
            raise ValueError(f"unknown axis {axis!r} (expected one of {sorted(AXES)})")
    where, params = wanted.where()
    chosen = ", ".join(f"{AXES[a]} AS {a}" for a in axes)
    sql = f"""
        SELECT {chosen + "," if chosen else ""}
               count(*) AS measurement_count,
               count(*) FILTER (WHERE v.verdict = 'ok') AS ok_count,
               count(*) FILTER (WHERE v.verdict = 'blocked') AS blocked_count,
               count(*) FILTER (WHERE v.verdict = 'down') AS down_count,
               count(*) FILTER (WHERE v.verdict = 'error') AS error_count
        FROM verdicts v WHERE {where}
        {"GROUP BY " + ", ".join(axes) + " ORDER BY " + ", ".join(axes) if axes else ""}"""
    cursor = store.execute(sql, params)
    names = [d[0] for d in cursor.description]
    out = []
    for row in cursor.fetchall():
        item = dict(zip(names, row, strict=True))
        if "measurement_start_day" in item:
            item["measurement_start_day"] = str(item["measurement_start_day"])
        if item.get("probe_asn") is not None:
            item["probe_asn"] = f"AS{item['probe_asn']}"
        out.append(item)
    return out
