"""From the store to the answers' series and events: one place that reads verdicts for them,
shared by the CLI, the answer card and the claims checker."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from ..store import Store
from ..store._queries import SeriesRow, direct_series
from ._events import Event, NetworkEvent, Observation, group, network_events

SeriesKey = tuple[str, int, str | None, str]  # country, AS number, network name, target


def _observation(row: SeriesRow) -> Observation:
    return Observation(row.at.replace(tzinfo=UTC), row.verdict, row.technique, row.measurement_uid)


def network_series(rows: list[SeriesRow]) -> dict[SeriesKey, list[Observation]]:
    """Rows (ordered as `direct_series` gives them) as one series per network and target; a
    network is named by the newest name its measurements gave."""
    series: dict[tuple[str, int, str], list[Observation]] = {}
    names: dict[tuple[str, int], str | None] = {}
    for row in rows:
        series.setdefault((row.probe_cc, row.probe_asn, row.target), []).append(_observation(row))
        if row.network_name:
            names[(row.probe_cc, row.probe_asn)] = row.network_name
    return {(cc, asn, names.get((cc, asn)), target): observations
            for (cc, asn, target), observations in series.items()}  # fmt: skip


def events_for(
    store: Store, *, cc: str | None = None, targets: list[str] | None = None
) -> list[Event]:
    """The country-level events of the targets (all of them when None) in `cc` (or everywhere)."""
    parts: list[NetworkEvent] = []
    for (country, asn, name, target), series in network_series(
        direct_series(store, cc=cc, targets=targets)
    ).items():
        parts += network_events(country, asn, name, target, series)
    return group(parts)


def series_for(store: Store, cc: str, targets: list[str]) -> dict[str, list[Observation]]:
    """Per target, every network's direct observations together, in time order."""
    pooled: dict[str, list[Observation]] = {}
    for row in direct_series(store, cc=cc, targets=targets):
        pooled.setdefault(row.target, []).append(_observation(row))
    for observations in pooled.values():
        observations.sort(key=lambda o: (o.at, o.uid))
    return pooled


def event_record(event: Event) -> dict[str, Any]:
    """An event as stable JSON (the `--format jsonl` and API shape)."""

    def when(value: Any) -> str | None:
        return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None

    return {
        "cc": event.cc,
        "target": event.target,
        "start": when(event.start),
        "start_after": when(event.start_after),
        "end_after": when(event.end_after),
        "end": when(event.end),
        "ongoing": event.ongoing,
        "networks": list(event.networks),
        "technique": event.technique,
        "confidence": event.confidence,
        "measurements": list(event.measurements),
        "per_network": [
            {
                "network": part.network,
                "start": when(part.start),
                "start_after": when(part.start_after),
                "end_after": when(part.end_after),
                "end": when(part.end),
                "technique": part.technique,
                "confidence": part.confidence,
                "blocked": part.blocked,
                "measured": part.measured,
            }
            for part in event.parts
        ],
    }
