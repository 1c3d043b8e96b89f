"""Answer card and aggregation latency over a large store.

    python -m bench latency [--rows 10000000] [--queries 200]

Builds (once, cached in bench/out/) a store of `--rows` measurements with one verdict each,
made in SQL so that it takes a minute, not a day: 60 countries of 4 networks, every feature of
every catalogue app and 300 sites, two years in time order (as an ingest appends them), one in
ten through a proxy paired with its direct twin, blocking windows of 30 to 90 days on one
network-target in eight, and 2% errors. Then times, through the same query layer the API and
the pages use, `--queries` answer cards (a random app in a random country at a random moment)
and as many aggregations (one country and target, by day and network, over a year), and prints
p50/p95/max. The store is opened read-only, as `reachwatch serve` opens it to read.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reachwatch.answers.card import answer
from reachwatch.probe.catalogue import default_catalogue
from reachwatch.store import Store
from reachwatch.store._queries import VerdictFilter, aggregate_verdicts

from .build import OUT

START = datetime(2023, 1, 1)
SPAN_DAYS = 730
COUNTRIES = 60
NETWORKS = 4
SITES = 300


def targets() -> list[str]:
    apps = default_catalogue().apps
    return [f"{key}/{feature}" for key, app in apps.items() for feature in app.features] + [
        f"https://site{k:03d}.example/" for k in range(SITES)
    ]


def countries() -> list[str]:
    from reachwatch.answers.claims._schema import country_codes

    return ["AZ", *sorted(c for c in country_codes() if c != "AZ")][:COUNTRIES]


def build(db: Path, rows: int) -> None:
    """`rows` measurements and their verdicts, generated inside DuckDB."""
    with Store(db) as store:
        con = store.con
        con.execute("CREATE TEMP TABLE t (k BIGINT, target VARCHAR)")
        con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(targets())))
        con.execute("CREATE TEMP TABLE c (k BIGINT, cc VARCHAR)")
        con.executemany("INSERT INTO c VALUES (?, ?)", list(enumerate(countries())))
        n_targets = len(targets())
        step = SPAN_DAYS * 86400 / rows
        con.execute(f"""
            CREATE TEMP TABLE g AS
            SELECT i,
                   TIMESTAMP '{START:%Y-%m-%d}'
                       + to_microseconds(CAST(i * {step} * 1e6 AS BIGINT)) AS ts,
                   c.cc, 10000 + c.k * 10 + (hash(i * 13) % {NETWORKS}) AS asn,
                   t.target,
                   hash(i * 17) % 10 = 0 AS proxied
            FROM range({rows}) r(i)
            JOIN c ON c.k = hash(i * 7) % {COUNTRIES}
            JOIN t ON t.k = hash(i * 11) % {n_targets}
        """)  # fmt: skip
        # one network-target in eight is blocked for a window of 30 to 90 days
        con.execute(f"""
            CREATE TEMP TABLE v AS
            SELECT g.*, format('{{}}_{{}}_{{:010d}}', strftime(ts, '%Y%m%d%H%M%S'), cc, i) AS uid,
                   CASE WHEN hash(i * 19) % 50 = 0 THEN 'error'
                        WHEN hash(cc || asn || target) % 8 = 0 AND NOT proxied
                             AND ts >= TIMESTAMP '{START:%Y-%m-%d}'
                                       + to_days(CAST(hash(asn || target) % 600 AS INTEGER))
                             AND ts <  TIMESTAMP '{START:%Y-%m-%d}'
                                       + to_days(CAST(hash(asn || target) % 600 + 30
                                                      + hash(target || asn) % 61 AS INTEGER))
                        THEN 'blocked' ELSE 'ok' END AS verdict
            FROM g
        """)  # fmt: skip
        con.execute("""
            INSERT INTO measurements (measurement_uid, uid_computed, test_name, known_test,
                probe_cc, probe_asn, probe_network_name, input, measurement_start_time,
                raw_path, raw_offset, raw_index, raw_size, ingest_id)
            SELECT uid, false, split_part(target, '/', 1), true, cc, asn, 'Network ' || asn,
                   target, ts, 'synthetic', 0, 0, 0, 'bench'
            FROM v ORDER BY i
        """)
        con.execute("""
            INSERT INTO verdicts (measurement_uid, target, verdict, technique, reason, test_name,
                probe_cc, probe_asn, measurement_start_time, via, run_id, probe_network_name)
            SELECT uid, target, verdict,
                   CASE WHEN verdict = 'blocked' THEN 'tcp.reset' END, 'synthetic',
                   split_part(target, '/', 1), cc, asn, ts,
                   CASE WHEN proxied THEN 'socks5://proxy' END,
                   CASE WHEN proxied THEN 'run-' || (i - 1) END, 'Network ' || asn
            FROM v ORDER BY i
        """)
        con.execute("CHECKPOINT")


def _pcts(values: list[float]) -> str:
    values = sorted(values)
    at = [values[min(len(values) - 1, int(q * len(values)))] * 1000 for q in (0.5, 0.95)]
    return f"p50 {at[0]:,.1f} ms, p95 {at[1]:,.1f} ms, max {values[-1] * 1000:,.1f} ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench latency")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    db = OUT / f"latency-{args.rows}.duckdb"
    if not db.exists():
        OUT.mkdir(exist_ok=True)
        t = time.perf_counter()
        build(db, args.rows)
        size = db.stat().st_size / 2**20
        print(f"built {args.rows:,} verdicts in {time.perf_counter() - t:.0f}s ({size:,.0f} MiB)")
    rng = random.Random(args.seed)
    apps = list(default_catalogue().apps)
    ccs = countries()
    sites = [t for t in targets() if "://" in t]
    with Store(db, read_only=True) as store:
        total = store.execute("SELECT count(*) FROM verdicts").fetchone()
        print(f"verdicts in the store: {total[0] if total else 0:,}")
        answer(store, "skype", "AZ")  # warm: the first query loads the catalogue and pages
        cards, features, aggregations = [], 0, []
        for _ in range(args.queries):
            at = START + timedelta(days=rng.randrange(60, SPAN_DAYS))
            t = time.perf_counter()
            card = answer(store, rng.choice(apps), rng.choice(ccs), at.replace(tzinfo=UTC))
            cards.append(time.perf_counter() - t)
            features += len(card.features)
            wanted = VerdictFilter(cc=rng.choice(ccs), target=rng.choice(sites),
                                   since=at - timedelta(days=365), until=at)  # fmt: skip
            t = time.perf_counter()
            aggregate_verdicts(store, wanted, "measurement_start_day", "probe_asn")
            aggregations.append(time.perf_counter() - t)
    print(f"answer cards ({args.queries}, {features / args.queries:.1f} features each): "
          f"{_pcts(cards)}")  # fmt: skip
    print(f"aggregations ({args.queries}, by day and network, one year): {_pcts(aggregations)}")
