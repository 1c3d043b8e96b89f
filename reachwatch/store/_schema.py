"""The store's tables. Column order here is the order the pipeline's batches are built in."""

from __future__ import annotations

SCHEMA_VERSION = "7"

MEASUREMENT_COLUMNS: dict[str, str] = {
    # unique by construction (the ingest checks before it writes), without an index: an index
    # would hold every uid in memory, and memory must not grow with the archive
    "measurement_uid": "VARCHAR NOT NULL",
    "uid_computed": "BOOLEAN NOT NULL",
    "report_id": "VARCHAR",
    "test_name": "VARCHAR NOT NULL",
    "test_version": "VARCHAR",
    "known_test": "BOOLEAN NOT NULL",
    "probe_cc": "VARCHAR NOT NULL",
    "probe_asn": "UBIGINT NOT NULL",
    "probe_network_name": "VARCHAR",
    "input": "VARCHAR",
    "measurement_start_time": "TIMESTAMP NOT NULL",
    "uid_time": "TIMESTAMP",  # UID_TIME of measurement_uid: what duplicates are looked for by
    "software_name": "VARCHAR",
    "software_version": "VARCHAR",
    "resolver_asn": "VARCHAR",
    "raw_path": "VARCHAR NOT NULL",
    "raw_offset": "BIGINT NOT NULL",
    "raw_index": "INTEGER NOT NULL",
    "raw_size": "INTEGER NOT NULL",
    "ingest_id": "VARCHAR NOT NULL",
    "source": "VARCHAR",
}

OBSERVATION_COLUMNS: dict[str, str] = {
    "measurement_uid": "VARCHAR NOT NULL",
    "idx": "INTEGER NOT NULL",
    "kind": "VARCHAR NOT NULL",  # dns | tcp | tls | http | udp
    "scope": "VARCHAR",  # the tor target or dnscheck lookup it belongs to, if any
    "hostname": "VARCHAR",
    "query_type": "VARCHAR",
    "engine": "VARCHAR",
    "resolver": "VARCHAR",
    "ip": "VARCHAR",
    "port": "INTEGER",
    "answers": "VARCHAR[]",
    "failure": "VARCHAR",  # OONI's failure string, exactly as the probe wrote it
    "tls_version": "VARCHAR",
    "http_url": "VARCHAR",
    "http_status": "INTEGER",
    "http_body_length": "BIGINT",
    "t0": "DOUBLE",
    "t": "DOUBLE",
}

VERDICT_COLUMNS: dict[str, str] = {
    "measurement_uid": "VARCHAR NOT NULL",
    "target": "VARCHAR NOT NULL",
    "verdict": "VARCHAR NOT NULL",  # ok | blocked | down | error
    "technique": "VARCHAR",  # stage.kind, only for blocked
    "reason": "VARCHAR NOT NULL",  # one line a person can check against the observations
    "probe_says": "VARCHAR",  # the probe's own conclusion, kept for comparison
    "test_name": "VARCHAR NOT NULL",
    "probe_cc": "VARCHAR NOT NULL",
    "probe_asn": "UBIGINT NOT NULL",
    "measurement_start_time": "TIMESTAMP NOT NULL",
    "via": "VARCHAR",  # the proxy or interface the measurement went through; NULL: direct
    "run_id": "VARCHAR",  # pairs a measurement through a tunnel with its direct twin
    # the measurement's, repeated so that reading verdicts never joins the measurements
    "probe_network_name": "VARCHAR",
}

QUARANTINE_COLUMNS: dict[str, str] = {
    "sha256": "VARCHAR PRIMARY KEY",
    "reason": "VARCHAR NOT NULL",
    "source": "VARCHAR",
    "locator": "VARCHAR",
    "size": "BIGINT NOT NULL",
    "raw": "BLOB NOT NULL",  # all of it, or its head when the rest is in the archive
    "ingest_id": "VARCHAR NOT NULL",
    "quarantined_at": "TIMESTAMP NOT NULL",
    "raw_path": "VARCHAR",  # the archive file holding all of it (a gzip member), if too large
    "raw_offset": "BIGINT",
}

INGEST_COLUMNS: dict[str, str] = {
    "ingest_id": "VARCHAR PRIMARY KEY",
    "started_at": "TIMESTAMP NOT NULL",
    "finished_at": "TIMESTAMP",
    "paths": "VARCHAR[]",
    "read": "BIGINT",
    "stored": "BIGINT",
    "duplicates": "BIGINT",
    "quarantined": "BIGINT",
}

CLAIM_COLUMNS: dict[str, str] = {
    # what a source says (reachwatch.answers.claims.Claim.record()); docs/claims.md
    "id": "VARCHAR PRIMARY KEY",
    "country": "VARCHAR NOT NULL",
    "asserted_status": "VARCHAR NOT NULL",
    "app": "VARCHAR",
    "site": "VARCHAR",
    "source": "VARCHAR",
    "publisher": "VARCHAR",
    "kind": "VARCHAR",
    "url": "VARCHAR",
    "published": "DATE",
    "published_precision": "VARCHAR",  # day | month | year
    "features": "VARCHAR[]",
    "period_start": "DATE",  # the date as written; its precision widens it
    "period_start_precision": "VARCHAR",
    "period_end": "DATE",
    "period_end_precision": "VARCHAR",
    "networks": "VARCHAR[]",
    "technique": "VARCHAR",
    "reason": "VARCHAR",
    "blocker": "VARCHAR",
    "event": "VARCHAR",
    "event_phase": "VARCHAR",
    "circumvention": "VARCHAR[]",
    "quote": "VARCHAR",
    "note": "VARCHAR",
    "source_file": "VARCHAR NOT NULL",  # the claims file it was added from
    "digest": "VARCHAR NOT NULL",  # of the claim's content: the same claim again changes nothing
    "added_at": "TIMESTAMP NOT NULL",  # when this version was stored
}

WEBHOOK_COLUMNS: dict[str, str] = {
    "id": "VARCHAR PRIMARY KEY",
    "url": "VARCHAR NOT NULL",
    "secret": "VARCHAR NOT NULL",  # signs every delivery (HMAC-SHA256)
    "probe_cc": "VARCHAR",  # only events of this country (all if NULL)
    "target": "VARCHAR",  # only events of this target (all if NULL)
    "created_at": "TIMESTAMP NOT NULL",
}

DELIVERY_COLUMNS: dict[str, str] = {
    "webhook_id": "VARCHAR NOT NULL",
    "event_key": "VARCHAR NOT NULL",  # country, target and start of the event
    "phase": "VARCHAR NOT NULL",  # started | ended
    "status": "VARCHAR NOT NULL",  # delivered | failed | known (it predates the webhook)
    "attempts": "INTEGER NOT NULL",
    "last_error": "VARCHAR",
    "happened_at": "TIMESTAMP NOT NULL",
}

TABLES: dict[str, dict[str, str]] = {
    "measurements": MEASUREMENT_COLUMNS,
    "observations": OBSERVATION_COLUMNS,
    "verdicts": VERDICT_COLUMNS,
    "quarantine": QUARANTINE_COLUMNS,
    "ingests": INGEST_COLUMNS,
    "claims": CLAIM_COLUMNS,
    "webhooks": WEBHOOK_COLUMNS,
    "deliveries": DELIVERY_COLUMNS,
}


def create_table(name: str) -> str:
    body = ", ".join(f"{col} {kind}" for col, kind in TABLES[name].items())
    return f"CREATE TABLE IF NOT EXISTS {name} ({body})"


UID_TIME = "coalesce(try_strptime(left({uid}, 14), '%Y%m%d%H%M%S'), TIMESTAMP '1970-01-01')"
"""The time a measurement_uid begins with (OONI's and reachwatch's: YYYYMMDDHHMMSS...), 1970
for any other: a uid that comes again is found by it whatever start time comes with it, and
it rises as a feed goes on, so DuckDB's zone maps skip what lies outside a batch's range."""

MIGRATIONS: dict[str, list[str]] = {
    # 1 -> 2: measurements through a tunnel (circumvention)
    "1": [
        "ALTER TABLE verdicts ADD COLUMN IF NOT EXISTS via VARCHAR",
        "ALTER TABLE verdicts ADD COLUMN IF NOT EXISTS run_id VARCHAR",
    ],
    # 2 -> 3: what sources claim
    "2": [create_table("claims")],
    # 3 -> 4: alerts (webhooks and what was sent to them)
    "3": [create_table("webhooks"), create_table("deliveries")],
    # 4 -> 5: the network's name beside each verdict (answers read no other table)
    "4": [
        "ALTER TABLE verdicts ADD COLUMN IF NOT EXISTS probe_network_name VARCHAR",
        "UPDATE verdicts SET probe_network_name = m.probe_network_name FROM measurements m "
        "WHERE m.measurement_uid = verdicts.measurement_uid",
    ],
    # 5 -> 6: large quarantined records kept in the archive, not in DuckDB
    "5": [
        "ALTER TABLE quarantine ADD COLUMN IF NOT EXISTS raw_path VARCHAR",
        "ALTER TABLE quarantine ADD COLUMN IF NOT EXISTS raw_offset BIGINT",
    ],
    # 6 -> 7: duplicates looked for by the uid's own time, not the measurement's start time
    "6": [
        "ALTER TABLE measurements ADD COLUMN IF NOT EXISTS uid_time TIMESTAMP",
        f"UPDATE measurements SET uid_time = {UID_TIME.format(uid='measurement_uid')}",
    ],
}
"""Per schema version, the statements that bring a store to the next one."""


def create_statements() -> list[str]:
    statements = ["CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)"]
    return statements + [create_table(name) for name in TABLES]
