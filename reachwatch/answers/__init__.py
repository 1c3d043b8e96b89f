"""Answers: blocking events with start and end, the answer card, and claims checked against
the evidence."""

from ._events import Event, NetworkEvent, Observation, detect, group, network_events
from ._evidence import event_record, events_for, network_series, series_for

__all__ = [
    "Event",
    "NetworkEvent",
    "Observation",
    "detect",
    "event_record",
    "events_for",
    "group",
    "network_events",
    "network_series",
    "series_for",
]
