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


def _filters(**wanted: str | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for column, value in wanted.items():
        if value is not None:
            clauses.append(f"v.{column} = ?")
            params.append(value)
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
    where, params = _filters(probe_cc=cc.upper() if cc else None, test_name=test, target=target)
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
    where, params = _filters(probe_cc=cc.upper() if cc else None, target=target)
    sql = f"""
        WITH v AS (
            SELECT v.*, m.probe_network_name
            FROM verdicts v JOIN measurements m USING (measurement_uid)
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
    where, params = _filters(probe_cc=cc.upper() if cc else None)
    if targets is not None:
        where += " AND v.target IN (SELECT unnest(?))"
        params.append(targets)
    sql = f"""
        SELECT v.probe_cc, v.probe_asn, m.probe_network_name, v.target,
               v.measurement_start_time, v.verdict, v.technique, v.measurement_uid
        FROM verdicts v JOIN measurements m USING (measurement_uid)
        WHERE {where} AND v.via IS NULL AND v.verdict IN ('ok', 'blocked')
        ORDER BY v.probe_cc, v.probe_asn, v.target, v.measurement_start_time, v.measurement_uid
    """
    return [SeriesRow(*row) for row in store.execute(sql, params).fetchall()]


def targets_measured(store: Store, cc: str | None = None) -> list[str]:
    """Every target with a verdict (in the country), sorted."""
    where, params = _filters(probe_cc=cc.upper() if cc else None)
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
