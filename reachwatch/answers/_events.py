"""Blocking events: when a target was blocked on a network, from start to end, and which
networks' changes coincided into one country-level event.

A series is the direct verdicts of one (country, network, target), ordered by time and uid (so
arrival order, late uploads included, changes nothing). `down` and `error` say nothing about
censorship and are left out. The series is decoded as a two-state hidden Markov model (open,
blocked) with the Viterbi algorithm: each verdict is taken as right with probability
1 - NOISE, and the state changes between two measurements `dt` apart with probability
1 - exp(-dt / TAU): the longer nothing was measured, the likelier a change. A lone `blocked`
among `ok`s costs less as noise than as two changes of state, so a few flaky measurements make
no event, while a run of them does, however densely the network is measured; an event also
needs MIN_BLOCKED blocked verdicts. The constants come from `bench/events.py` (bench/README.md:
recall, false alarms and the error of start and end against OONI's CUSUM)."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

NOISE = 0.1
"""Chance that one verdict disagrees with the state of the network (a flaky measurement)."""
TAU = timedelta(days=30)
"""Time scale of a change of state: between measurements dt apart, 1 - exp(-dt / TAU)."""
MIN_BLOCKED = 3
"""Blocked verdicts an event needs: two at the end of a sparse series are not yet a block."""
COINCIDE = timedelta(hours=48)
"""Network events of one target whose starts lie this close are one country-level event."""
FULL_CONFIDENCE_AT = 5
"""Blocked measurements an event needs for its confidence not to be lowered by their number."""


@dataclass(frozen=True, slots=True)
class Observation:
    """One direct verdict of a series; `at` is its measurement_start_time, timezone-aware UTC."""

    at: datetime
    verdict: str  # ok | blocked (down and error are left out of series)
    technique: str | None
    uid: str


@dataclass(frozen=True)
class NetworkEvent:
    """A period in which `target` was blocked on one network.

    `start` is the first blocked measurement, `start_after` the last `ok` before it (the block
    began between the two; None if the series begins blocked); `end` is the first `ok` after
    the last blocked measurement `end_after` (None while it is ongoing)."""

    cc: str
    asn: int
    network_name: str | None
    target: str
    start: datetime
    start_after: datetime | None
    end_after: datetime
    end: datetime | None
    technique: str | None
    confidence: float
    blocked: int  # blocked measurements inside the event
    measured: int  # all measurements inside it (ok ones read as noise included)
    measurements: tuple[str, ...]  # uids of the blocked measurements

    @property
    def ongoing(self) -> bool:
        return self.end is None

    @property
    def network(self) -> str:
        return f"AS{self.asn} {self.network_name}".strip() if self.network_name else f"AS{self.asn}"


@dataclass(frozen=True)
class Event:
    """A country-level event: the network events of one target whose starts coincide."""

    cc: str
    target: str
    parts: tuple[NetworkEvent, ...] = field(repr=False)

    @property
    def start(self) -> datetime:
        return min(p.start for p in self.parts)

    @property
    def start_after(self) -> datetime | None:
        first = min(self.parts, key=lambda p: p.start)
        return first.start_after

    @property
    def end_after(self) -> datetime:
        return max(p.end_after for p in self.parts)

    @property
    def end(self) -> datetime | None:
        if self.ongoing:
            return None
        return max(p.end for p in self.parts if p.end is not None)

    @property
    def ongoing(self) -> bool:
        return any(p.ongoing for p in self.parts)

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(sorted({p.network for p in self.parts}))

    @property
    def technique(self) -> str | None:
        return _commonest(Counter(p.technique for p in self.parts if p.technique))

    @property
    def confidence(self) -> float:
        return max(p.confidence for p in self.parts)

    @property
    def measurements(self) -> tuple[str, ...]:
        return tuple(sorted({uid for p in self.parts for uid in p.measurements}))


def detect(
    series: Sequence[Observation], noise: float = NOISE, tau: timedelta = TAU
) -> list[tuple[int, int]]:
    """The blocked stretches of `series` (sorted by time), as (first, last) indexes: the most
    likely sequence of states under the model above (the harness varies `noise` and `tau`)."""
    if not series:
        return []
    right, wrong = math.log(1 - noise), math.log(noise)

    def change(dt: timedelta) -> float:
        return min(0.5, max(1e-4, 1 - math.exp(-dt / tau)))

    def emit(state: int, obs: Observation) -> float:
        return right if (obs.verdict == "blocked") == bool(state) else wrong

    # a series starts blocked as likely as a change within a day would be
    opening = change(timedelta(days=1))
    score = [math.log(1 - opening) + emit(0, series[0]), math.log(opening) + emit(1, series[0])]
    back: list[tuple[int, int]] = []
    for previous, obs in itertools.pairwise(series):
        p = change(obs.at - previous.at)
        stay, move = math.log(1 - p), math.log(p)
        came: list[int] = []
        new: list[float] = []
        for state in (0, 1):
            from_same = score[state] + stay
            from_other = score[1 - state] + move
            best = state if from_same >= from_other else 1 - state
            came.append(best)
            new.append(max(from_same, from_other) + emit(state, obs))
        back.append((came[0], came[1]))  # where each state came from
        score = new
    state = 0 if score[0] >= score[1] else 1
    path = [state]
    for origins in reversed(back):
        state = origins[state]
        path.append(state)
    path.reverse()
    stretches: list[tuple[int, int]] = []
    first: int | None = None
    for index, blocked in enumerate(path):
        if blocked and first is None:
            first = index
        elif not blocked and first is not None:
            stretches.append((first, index - 1))
            first = None
    if first is not None:
        stretches.append((first, len(path) - 1))
    trimmed = [_trim(series, a, b) for a, b in stretches]
    return [(a, b) for a, b in trimmed if a >= 0 and _blocked(series, a, b) >= MIN_BLOCKED]


def _blocked(series: Sequence[Observation], first: int, last: int) -> int:
    return sum(1 for o in series[first : last + 1] if o.verdict == "blocked")


def _trim(series: Sequence[Observation], first: int, last: int) -> tuple[int, int]:
    """A stretch from its first blocked verdict to its last ((-1, -1) if it has none)."""
    blocked = [i for i in range(first, last + 1) if series[i].verdict == "blocked"]
    return (blocked[0], blocked[-1]) if blocked else (-1, -1)


def network_events(
    cc: str, asn: int, network_name: str | None, target: str, series: Sequence[Observation]
) -> list[NetworkEvent]:
    """The events of one series (it must be sorted by time, then uid)."""
    events = []
    for first, last in detect(series):
        inside = series[first : last + 1]
        blocked = [o for o in inside if o.verdict == "blocked"]
        share = len(blocked) / len(inside)
        confidence = share * min(1.0, len(blocked) / FULL_CONFIDENCE_AT)
        events.append(NetworkEvent(
            cc=cc, asn=asn, network_name=network_name, target=target,
            start=series[first].at,
            start_after=series[first - 1].at if first > 0 else None,
            end_after=series[last].at,
            end=series[last + 1].at if last + 1 < len(series) else None,
            technique=_commonest(Counter(o.technique for o in blocked if o.technique)),
            confidence=round(confidence, 2), blocked=len(blocked), measured=len(inside),
            measurements=tuple(o.uid for o in blocked),
        ))  # fmt: skip
    return events


def group(events: Iterable[NetworkEvent]) -> list[Event]:
    """Country-level events: per (country, target), network events whose starts lie within
    COINCIDE of the group's first start; ordered by start, then target."""
    by_target: dict[tuple[str, str], list[NetworkEvent]] = {}
    for event in events:
        by_target.setdefault((event.cc, event.target), []).append(event)
    grouped: list[Event] = []
    for (cc, target), parts in by_target.items():
        parts.sort(key=lambda p: (p.start, p.asn))
        current: list[NetworkEvent] = []
        for part in parts:
            if current and part.start - current[0].start > COINCIDE:
                grouped.append(Event(cc, target, tuple(current)))
                current = []
            current.append(part)
        if current:
            grouped.append(Event(cc, target, tuple(current)))
    grouped.sort(key=lambda e: (e.start, e.target))
    return grouped


def _commonest(counts: Counter[str]) -> str | None:
    if not counts:
        return None
    top = max(counts.values())
    return min(k for k, n in counts.items() if n == top)
