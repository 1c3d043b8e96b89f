"""Blocking-event detection against OONI's CUSUM, on series whose truth is known and on real ones.

    python -m bench events [--seed N] [--quick]

Three kinds of input, each series given to both detectors:

- **synthetic** (deterministic for the seed; `--quick` draws 6 networks per condition instead of
  48): per network 8 weeks of measurements of one target, under every combination of
  measurements per day (0.5 to 24, each time jittered by up to 40% of the interval, 0-2 gaps of
  1-4 days without any), noise (a verdict flips ok<->blocked with probability 0-20%) and error
  rate (0-30% of measurements come back `error` or `down`). Truth: 0-2 long blocks (2-21 days;
  one may outlast the series) and 0-2 short blocks (2-12 h), at least 2 days apart. A third of
  the networks have no outage, a third 1-3 outages of 1-6 h whose measurements come back `down`
  ("dropped"), a third 1-3 whose measurements come back `blocked` ("bursts": failures that look
  like blocking but are not censorship), each at least a day from any block. A short block is a
  true event, scored apart as "short"; an outage is not: a detection overlapping only a burst
  is a false alarm. `down` and `error` verdicts are left out of the series, as the store does.
- **lab** (skipped by `--quick`): the az-2017 scenario run in the lab (root) and ingested into a
  temporary store; truth is its policies' windows per network and target (a policy without a
  window blocks all along; targets no policy names are never blocked). Ours comes from
  `events_for`; the baseline gets the same direct series (`direct_series`).
- **real** (no ground truth): OONI's rows in bench/data/ooni-summaries (copies, CC BY-NC-SA),
  twitter.com on MTN Uganda from OONI's per-measurement analysis and 1,080 fastpath rows from
  47 countries, made ok/blocked/error by `_uganda_verdict` and `_fastpath_verdict`; a series
  per (country, AS, input), an input-less row (an app's test) named by its test.

Scoring. A detection is the closed interval it calls blocked: ours from its first blocked
measurement to its last; the baseline's from its estimated start hour to the end of the last
measured hour before its estimated end. A true event with at least one measurement left inside
it is found when a detection overlaps it (events nobody measured are not counted); a detection
overlapping no true event is a false alarm, counted per network-week (the span from a series'
first measurement to its last). Start error: from the true start to the earliest overlapping
detection's start (ours: the first blocked measurement, `NetworkEvent.start`; the baseline: its
estimated change hour). End error, for true events that end before the series' last
measurement: to the latest overlapping detection's end (ours: the first `ok` after,
`NetworkEvent.end`), or, when that detection is still ongoing, to the series' last measurement
(a lower bound). Medians are of absolute errors, in hours, over found events, long and short.

OONI's baseline as read here ("two-state CUSUM on hourly means, levels 0 and 0.7, threshold
3.5"): x is the share of blocked verdicts in each clock hour that has measurements (hours without
any are skipped, not read as 0). In the open state S = max(0, S + x - 0.35) (0.35, midway between
the levels, is the reference value of a CUSUM for a shift from 0 to 0.7); when S > 3.5 a start
is alerted, its change point the first measured hour after the last one where S was 0; the state
becomes blocked with S = 0, and S = max(0, S + 0.35 - x) until it exceeds 3.5: the end alert,
its change point found the same way; then open again with S = 0. One alert per change; an event
runs from a start alert to the next end alert (ongoing without one) and is dated by their change
points; each series on its own (no grouping across networks).

Goals (the issue's), on the synthetic set: recall >= 95% over true long events with >= 4
measurements inside them; fewer false alarms per network-week than the baseline; median start
and end error <= 24 h where there are >= 4 measurements a day. The sweep of the detector's
constants picks, among settings meeting the recall and error goals, the one with the fewest
false alarms (then the higher recall)."""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import tempfile
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reachwatch.answers._events import NOISE, TAU, Observation, detect
from reachwatch.answers._evidence import events_for, network_series
from reachwatch.lab.run import run_scenario
from reachwatch.lab.scenario import load_scenario
from reachwatch.pipeline import ingest
from reachwatch.store import Store
from reachwatch.store._queries import direct_series

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WEEK = timedelta(weeks=1)
BEGIN = datetime(2026, 1, 5, tzinfo=UTC)
DAYS = 56
RATES = (0.5, 1, 2, 4, 8, 24)
NOISES = (0.0, 0.05, 0.1, 0.2)
ERRORS = (0.0, 0.1, 0.3)
OUTAGES = ("none", "dropped", "bursts")
SWEEP_NOISE = (0.05, 0.1, 0.2)
SWEEP_TAU = tuple(timedelta(days=d) for d in (7, 14, 30, 60))
MARGIN = 2 * DAY  # between true events, so one detection cannot stand for two
ENOUGH = 4  # measurements: the goals' floor, inside an event and per day
RECALL_GOAL = 0.95
ERROR_GOAL = 24.0  # hours
LEVEL_BLOCKED = 0.7
THRESHOLD = 3.5
ROOT = Path(__file__).resolve().parent.parent
AZ = ROOT / "reachwatch" / "lab" / "scenarios" / "az-2017.yaml"
SUMMARIES = Path(__file__).parent / "data" / "ooni-summaries"  # copies, with their attribution


@dataclass(frozen=True)
class Truth:
    """A true blocked period [start, end); `end` may lie past the series (still blocked)."""

    start: datetime
    end: datetime
    kind: str  # long | short


@dataclass(frozen=True)
class Span:
    """A detected event: [first, last] is what it calls blocked, start and end its estimates of
    the two changes (end None: ongoing)."""

    first: datetime
    last: datetime
    start: datetime
    end: datetime | None


@dataclass
class Case:
    """One network's series of one target, the truth behind it and what it was drawn under."""

    levels: dict[str, str]
    series: list[Observation]
    truth: list[Truth]


@dataclass
class Tally:
    """What one detector got right and wrong over some series; tallies add up."""

    events: Counter[str] = field(default_factory=Counter)  # long, short, long4 (>= 4 inside)
    found: Counter[str] = field(default_factory=Counter)
    false_alarms: int = 0
    weeks: float = 0.0
    start_errors: list[float] = field(default_factory=list)
    end_errors: list[float] = field(default_factory=list)

    def __iadd__(self, other: Tally) -> Tally:
        self.events += other.events
        self.found += other.found
        self.false_alarms += other.false_alarms
        self.weeks += other.weeks
        self.start_errors += other.start_errors
        self.end_errors += other.end_errors
        return self

    def recall(self, kind: str) -> float | None:
        return self.found[kind] / self.events[kind] if self.events[kind] else None

    def alarms(self) -> float | None:
        return self.false_alarms / self.weeks if self.weeks else None

    def start_error(self) -> float | None:
        return statistics.median(self.start_errors) if self.start_errors else None

    def end_error(self) -> float | None:
        return statistics.median(self.end_errors) if self.end_errors else None


def ours(series: Sequence[Observation], noise: float = NOISE, tau: timedelta = TAU) -> list[Span]:
    """reachwatch's detector, read as `network_events` reads it."""
    spans = []
    for first, last in detect(series, noise, tau):
        end = series[last + 1].at if last + 1 < len(series) else None
        spans.append(Span(series[first].at, series[last].at, series[first].at, end))
    return spans


def cusum(series: Sequence[Observation]) -> list[Span]:
    """OONI's two-state CUSUM on hourly means, as the module docstring reads it."""
    counts: dict[datetime, list[int]] = {}
    for obs in series:
        tally = counts.setdefault(obs.at.replace(minute=0, second=0, microsecond=0), [0, 0])
        tally[0] += obs.verdict == "blocked"
        tally[1] += 1
    hours = sorted(counts)
    reference = LEVEL_BLOCKED / 2
    spans: list[Span] = []
    blocked, total, last_zero, began = False, 0.0, -1, 0
    for index, hour in enumerate(hours):
        blocked_count, measured = counts[hour]
        share = blocked_count / measured
        total = max(0.0, total + (reference - share if blocked else share - reference))
        if total == 0:
            last_zero = index
        elif total > THRESHOLD:
            if blocked:
                start, end = hours[began], hours[last_zero + 1]
                spans.append(Span(start, hours[last_zero] + HOUR, start, end))
            else:
                began = last_zero + 1
            blocked, total, last_zero = not blocked, 0.0, index
    if blocked:
        spans.append(Span(hours[began], hours[-1] + HOUR, hours[began], None))
    return spans


def score(case: Case, spans: Sequence[Span]) -> Tally:
    """One series' detections against its truth (see the module docstring)."""
    tally = Tally()
    if not case.series:
        return tally
    times = [o.at for o in case.series]
    tally.weeks = (times[-1] - times[0]) / WEEK

    def overlaps(span: Span, truth: Truth) -> bool:
        return span.first < truth.end and truth.start <= span.last

    for truth in case.truth:
        inside = bisect_left(times, truth.end) - bisect_left(times, truth.start)
        if not inside:
            continue
        kinds = [truth.kind] + (["long4"] if truth.kind == "long" and inside >= ENOUGH else [])
        hits = [s for s in spans if overlaps(s, truth)]
        tally.events.update(kinds)
        if not hits:
            continue
        tally.found.update(kinds)
        tally.start_errors.append(abs(min(s.start for s in hits) - truth.start) / HOUR)
        if truth.end <= times[-1]:
            ends = [s.end for s in hits]
            late = times[-1] if None in ends else max(e for e in ends if e is not None)
            tally.end_errors.append(abs(late - truth.end) / HOUR)
    tally.false_alarms = sum(not any(overlaps(s, t) for t in case.truth) for s in spans)
    return tally


# --- synthetic series ---------------------------------------------------------------------


def synthetic(seed: int, per_condition: int) -> list[Case]:
    """Every condition's networks; each network drawn from its own seed, so a quick run's series
    are the first of a full run's."""
    cases = []
    for rate in RATES:
        for noise in NOISES:
            for error in ERRORS:
                for k in range(per_condition):
                    rng = random.Random(f"{seed}/{rate}/{noise}/{error}/{k}")
                    cases.append(_network(rng, rate, noise, error, OUTAGES[k % len(OUTAGES)]))
    return cases


def _network(rng: random.Random, rate: float, noise: float, error: float, outage: str) -> Case:
    end = BEGIN + DAYS * DAY
    busy: list[tuple[datetime, datetime]] = []

    def place(
        length: timedelta, margin: timedelta, overrun: bool
    ) -> tuple[datetime, datetime] | None:
        """A period at least `margin` clear of those placed before (None after 100 tries)."""
        for _ in range(100):
            start = BEGIN + DAY + (DAYS - 2) * DAY * rng.random()
            stop = start + length
            if (overrun or stop < end) and all(
                stop + margin <= a or b + margin <= start for a, b in busy
            ):
                busy.append((start, stop))
                return start, stop
        return None

    longs = [place(rng.uniform(2, 21) * DAY, MARGIN, True) for _ in range(rng.choice((0, 1, 1, 2)))]
    shorts = [place(rng.uniform(2, 12) * HOUR, MARGIN, False) for _ in range(rng.choice((0, 1, 2)))]
    count = rng.choice((1, 2, 3)) if outage != "none" else 0
    outages = [p for p in (place(rng.uniform(1, 6) * HOUR, DAY, False) for _ in range(count)) if p]
    truth = [Truth(*p, "long") for p in longs if p] + [Truth(*p, "short") for p in shorts if p]
    gaps = []
    for _ in range(rng.choice((0, 1, 2))):
        start = BEGIN + DAYS * DAY * rng.random()
        gaps.append((start, start + rng.uniform(1, 4) * DAY))
    interval = DAY / rate
    series = []
    for k in range(int(DAYS * rate)):
        at = BEGIN + interval * (k + 0.5 + rng.uniform(-0.4, 0.4))
        if any(a <= at < b for a, b in gaps):
            continue
        if any(a <= at < b for a, b in outages):
            verdict = "down" if outage == "dropped" else "blocked"
        else:
            blocked = any(t.start <= at < t.end for t in truth) != (rng.random() < noise)
            verdict = "blocked" if blocked else "ok"
        if rng.random() < error:
            verdict = rng.choice(("error", "down"))
        if verdict in ("ok", "blocked"):  # what the store keeps for a series
            series.append(Observation(at, verdict, None, f"m{k}"))
    levels = {
        "measurements per day": f"{rate:g}",
        "noise": f"{noise:.0%}",
        "errors dropped": f"{error:.0%}",
        "outages": outage,
    }
    return Case(levels, series, truth)


# --- tables -------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """A Markdown table (what bench/README.md keeps)."""
    print("| " + " | ".join(headers) + " |")
    print("| " + " | ".join("---" for _ in headers) + " |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pair(a: str, b: str) -> str:
    return f"{a} / {b}"


def _tally_row(label: str, mine: Tally, base: Tally) -> list[str]:
    return [
        label,
        f"{mine.events['long']} / {mine.events['short']}",
        _pair(_pct(mine.recall("long")), _pct(base.recall("long"))),
        _pair(_pct(mine.recall("short")), _pct(base.recall("short"))),
        _pair(_num(mine.alarms(), 4), _num(base.alarms(), 4)),
        _pair(_num(mine.start_error()), _num(base.start_error())),
        _pair(_num(mine.end_error()), _num(base.end_error())),
    ]


TALLY_HEADERS = (
    "true events long / short",
    "long recall",
    "short recall",
    "false alarms / network-week",
    "median start error (h)",
    "median end error (h)",
)


def _total(tallies: Iterable[Tally]) -> Tally:
    total = Tally()
    for tally in tallies:
        total += tally
    return total


def by_level(cases: list[Case], mine: list[Tally], base: list[Tally], factor: str) -> None:
    levels = list(dict.fromkeys(c.levels[factor] for c in cases))
    rows = []
    for level in levels:
        picked = [i for i, c in enumerate(cases) if c.levels[factor] == level]
        rows.append(
            _tally_row(level, _total(mine[i] for i in picked), _total(base[i] for i in picked))
        )
    rows.append(_tally_row("all", _total(mine), _total(base)))
    print(f"Synthetic, by {factor} (each cell: ours / OONI's CUSUM):\n")
    table((factor, *TALLY_HEADERS), rows)


def alarm_grid(cases: list[Case], mine: list[Tally], base: list[Tally]) -> None:
    """False alarms by sampling and noise together: where each detector's come from."""
    rates = list(dict.fromkeys(c.levels["measurements per day"] for c in cases))
    noises = list(dict.fromkeys(c.levels["noise"] for c in cases))
    rows = []
    for rate in rates:
        row = [rate]
        for noise in noises:
            picked = [
                i
                for i, c in enumerate(cases)
                if (c.levels["measurements per day"], c.levels["noise"]) == (rate, noise)
            ]
            a, b = _total(mine[i] for i in picked), _total(base[i] for i in picked)
            row.append(_pair(_num(a.alarms(), 4), _num(b.alarms(), 4)))
        rows.append(row)
    print("False alarms per network-week by sampling and noise (ours / OONI's CUSUM):\n")
    table(("measurements per day", *(f"noise {n}" for n in noises)), rows)


@dataclass(frozen=True)
class Goals:
    """The issue's goals for one setting, from its tallies over all series and over those
    sampled at least ENOUGH times a day."""

    recall: float | None
    false_alarms: int
    weeks: float
    start_error: float | None
    end_error: float | None
    short_recall: float | None

    @classmethod
    def of(cls, cases: list[Case], tallies: list[Tally]) -> Goals:
        total = _total(tallies)
        dense = _total(
            t
            for c, t in zip(cases, tallies, strict=True)
            if float(c.levels["measurements per day"]) >= ENOUGH
        )
        return cls(
            total.recall("long4"),
            total.false_alarms,
            total.weeks,
            dense.start_error(),
            dense.end_error(),
            total.recall("short"),
        )

    @property
    def alarms(self) -> float:
        return self.false_alarms / self.weeks

    def recall_met(self) -> bool:
        return self.recall is not None and self.recall >= RECALL_GOAL

    def errors_met(self) -> bool:
        return all(e is not None and e <= ERROR_GOAL for e in (self.start_error, self.end_error))

    def met(self, base: Goals) -> list[bool]:
        """Recall, fewer false alarms than `base`, errors."""
        return [self.recall_met(), self.alarms < base.alarms, self.errors_met()]


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def goals(mine: Goals, base: Goals) -> None:
    recall, fewer, errors = mine.met(base)
    print(f"Goals, detector at its current noise={NOISE:g}, tau={TAU.days}d (synthetic set):")
    print(
        f"- recall >= 95% over long events with >= {ENOUGH} measurements inside: "
        f"{_pct(mine.recall)} (OONI {_pct(base.recall)}): {_met(recall)}"
    )
    print(
        f"- fewer false alarms than the baseline: {mine.false_alarms} vs {base.false_alarms} in "
        f"{mine.weeks:,.0f} network-weeks ({mine.alarms:.4f} vs {base.alarms:.4f} per "
        f"network-week): {_met(fewer)}"
    )
    print(
        f"- median start and end error <= 24 h at >= {ENOUGH} measurements a day: start "
        f"{_num(mine.start_error)} h, end {_num(mine.end_error)} h (OONI "
        f"{_num(base.start_error)} h, {_num(base.end_error)} h): {_met(errors)}"
    )
    print()


def sweep(results: dict[tuple[float, timedelta], Goals], base: Goals) -> None:
    """Every setting's figures and the best: among those meeting the recall and error goals,
    the fewest false alarms (then the higher recall)."""

    def rank(key: tuple[float, timedelta]) -> tuple[bool, float, float]:
        g = results[key]
        meets = g.recall_met() and g.errors_met()
        return (meets, -g.alarms if meets else 0.0, g.recall or 0.0)

    best = max(results, key=rank)
    rows = []
    for key, g in results.items():
        mark = " (current)" if key == (NOISE, TAU) else ""
        mark += " **best**" if key == best else ""
        rows.append(
            [
                f"{key[0]:g}",
                f"{key[1].days}d{mark}",
                _pct(g.recall),
                _pct(g.short_recall),
                f"{g.alarms:.4f} ({g.false_alarms})",
                _num(g.start_error),
                _num(g.end_error),
                f"{sum(g.met(base))} of 3",
            ]
        )
    print("Sweep of the detector's constants on the synthetic set:\n")
    table(
        (
            "noise",
            "tau",
            f"long recall (>= {ENOUGH} inside)",
            "short recall",
            "false alarms / network-week (count)",
            f"start error (h, >= {ENOUGH}/day)",
            f"end error (h, >= {ENOUGH}/day)",
            "goals met",
        ),
        rows,
    )
    same = [f"noise={k[0]:g}, tau={k[1].days}d" for k in results if results[k] == results[best]]
    print(
        f"Best by that criterion: {' and '.join(same)}"
        f"{' (identical figures)' if len(same) > 1 else ''}; "
        f"current: noise={NOISE:g}, tau={TAU.days}d; OONI's CUSUM: {base.alarms:.4f} "
        f"({base.false_alarms}) false alarms per network-week\n"
    )


# --- the lab ------------------------------------------------------------------------------


def lab() -> tuple[list[Case], list[list[Span]], list[list[Span]]]:
    """az-2017 run in the lab and ingested: per (network, target) series, truth and both
    detectors' events (ours through `events_for`, as the answers read them)."""
    scenario = load_scenario(AZ)
    finish = scenario.start + scenario.days * DAY
    truths: dict[tuple[int, str], list[Truth]] = {}
    for policy in scenario.policies:
        start, end = policy.window.start or scenario.start, policy.window.end or finish
        kind = "long" if end - start >= 2 * DAY else "short"
        for target in policy.targets:
            key = (scenario.network(policy.network).asn, target)
            truths.setdefault(key, []).append(Truth(start, end, kind))
    with tempfile.TemporaryDirectory(prefix="reachwatch-bench-events-") as folder:
        result = run_scenario(scenario, Path(folder))
        with Store(Path(folder) / "events.duckdb") as store:
            ingest([result.measurements], store)
            events = events_for(store, cc=scenario.country)
            series = network_series(direct_series(store, cc=scenario.country))
    found: dict[tuple[int, str], list[Span]] = {}
    for event in events:
        for p in event.parts:
            found.setdefault((p.asn, p.target), []).append(
                Span(p.start, p.end_after, p.start, p.end)
            )
    cases, mine, base = [], [], []
    for (_, asn, name, target), observations in sorted(
        series.items(), key=lambda kv: (kv[0][1], kv[0][3])
    ):
        cases.append(
            Case(
                {"network": name or f"AS{asn}", "target": target},
                observations,
                truths.get((asn, target), []),
            )
        )
        mine.append(sorted(found.get((asn, target), []), key=lambda s: s.start))
        base.append(cusum(observations))
    return cases, mine, base


def _spans(spans: Sequence[Span]) -> str:
    def when(at: datetime | None) -> str:
        return "ongoing" if at is None else f"{at:%m-%d %H:%M}"

    return ", ".join(f"{when(s.start)} to {when(s.end)}" for s in spans) or "none"


def lab_tables(cases: list[Case], mine: list[list[Span]], base: list[list[Span]]) -> None:
    rows = []
    for case, a, b in zip(cases, mine, base, strict=True):
        truth = ", ".join(f"{t.start:%m-%d} to {t.end:%m-%d}" for t in case.truth) or "never"
        rows.append(
            [
                case.levels["network"],
                case.levels["target"],
                str(len(case.series)),
                truth,
                _spans(a),
                _spans(b),
            ]
        )
    print("Lab, az-2017 (direct verdicts per network and target; dates are 2017):\n")
    table(("network", "target", "ok/blocked", "truly blocked", "ours", "OONI's CUSUM"), rows)
    mine_t = [score(c, s) for c, s in zip(cases, mine, strict=True)]
    base_t = [score(c, s) for c, s in zip(cases, base, strict=True)]
    table(("lab", *TALLY_HEADERS), [_tally_row("az-2017", _total(mine_t), _total(base_t))])


# --- real series --------------------------------------------------------------------------


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _uganda_verdict(row: dict[str, str]) -> str:
    """OONI's analysis gives each layer likelihoods of blocked, down and ok; like OONI's
    aggregation API, a layer is likely blocked above 0.5. Ok needs every layer ok; anything else
    (no analysis of a layer, or likely down) is an error."""
    layers = ("dns", "tcp", "tls")
    if any(float(row[f"{layer}_blocked"]) > 0.5 for layer in layers):
        return "blocked"
    return "ok" if all(float(row[f"{layer}_ok"]) > 0.5 for layer in layers) else "error"


def _fastpath_verdict(row: dict[str, str]) -> str:
    """The fastpath's flags: a failed measurement is an error, an anomaly (or a confirmed
    blocking) is blocked, the rest ok."""
    if row["msm_failure"] == "t":
        return "error"
    return "blocked" if "t" in (row["anomaly"], row["confirmed"]) else "ok"


RealSeries = dict[tuple[str, str, str], list[Observation]]


def real(path: Path, verdict: Callable[[dict[str, str]], str]) -> tuple[RealSeries, Counter[str]]:
    """Per (country, AS, input) the ok/blocked observations of `path`, and the verdicts'
    counts; an input-less row (an app's test) is named by its test."""
    with path.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    verdicts: Counter[str] = Counter()
    series: RealSeries = {}
    for row in rows:
        value = verdict(row)
        verdicts[value] += 1
        if value in ("ok", "blocked"):
            key = (row["probe_cc"], row["probe_asn"], row["input"] or row["test_name"])
            obs = Observation(
                _at(row["measurement_start_time"]), value, None, row["measurement_uid"]
            )
            series.setdefault(key, []).append(obs)
    for observations in series.values():
        observations.sort(key=lambda o: (o.at, o.uid))
    return series, verdicts


def real_row(label: str, series: RealSeries, verdicts: Counter[str]) -> list[str]:
    weeks = sum((s[-1].at - s[0].at) / WEEK for s in series.values())
    counts = {"ours": 0, "OONI": 0}
    agree = {"ours": 0, "OONI": 0}
    for observations in series.values():
        found = {"ours": ours(observations), "OONI": cusum(observations)}
        for name, other in (("ours", "OONI"), ("OONI", "ours")):
            counts[name] += len(found[name])
            agree[name] += sum(
                any(s.first <= o.last and o.first <= s.last for o in found[other])
                for s in found[name]
            )
    enough = sum(len(s) >= ENOUGH for s in series.values())
    per_week = {k: _num(v / weeks, 3) if weeks else "-" for k, v in counts.items()}
    return [
        label,
        f"{len(series)} ({enough})",
        f"{verdicts['ok']} / {verdicts['blocked']} / {verdicts['error']}",
        f"{weeks:.1f}",
        _pair(str(counts["ours"]), str(counts["OONI"])),
        _pair(per_week["ours"], per_week["OONI"]),
        _pair(f"{agree['ours']}/{counts['ours']}", f"{agree['OONI']}/{counts['OONI']}"),
    ]


def real_events(series: RealSeries) -> None:
    rows = []
    for (_, _, target), observations in sorted(series.items()):
        for name, spans in (("ours", ours(observations)), ("OONI", cusum(observations))):
            for span in spans:
                end = "ongoing" if span.end is None else f"{span.end:%Y-%m-%d %H:%M}"
                inside = [o for o in observations if span.first <= o.at <= span.last]
                blocked = sum(o.verdict == "blocked" for o in inside)
                rows.append([target, name, f"{span.start:%Y-%m-%d %H:%M}", end, str(blocked)])
    print("Uganda, every event either detector found:\n")
    table(("input", "detector", "start", "end", "blocked measurements inside"), rows)


# --- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench events")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="fewer networks, no lab")
    args = parser.parse_args(argv)
    began = time.monotonic()
    cases = synthetic(args.seed, 6 if args.quick else 48)
    observed = sum(len(c.series) for c in cases)
    print(
        f"Synthetic: {len(cases)} networks x {DAYS} days, {observed:,} ok/blocked measurements "
        f"after dropping errors and outages (seed {args.seed})\n"
    )
    base = [score(c, cusum(c.series)) for c in cases]
    results: dict[tuple[float, timedelta], Goals] = {}
    current: list[Tally] = []
    for noise in SWEEP_NOISE:
        for tau in SWEEP_TAU:
            tallies = [score(c, ours(c.series, noise, tau)) for c in cases]
            results[(noise, tau)] = Goals.of(cases, tallies)
            if (noise, tau) == (NOISE, TAU):
                current = tallies
    if not current:  # the module's constants lie outside the sweep
        current = [score(c, ours(c.series)) for c in cases]
    for factor in cases[0].levels:
        by_level(cases, current, base, factor)
    alarm_grid(cases, current, base)
    baseline = Goals.of(cases, base)
    goals(Goals.of(cases, current), baseline)
    sweep(results, baseline)
    if args.quick:
        print("Lab: skipped (--quick)\n")
    else:
        lab_began = time.monotonic()
        lab_tables(*lab())
        print(f"(lab run and ingest: {time.monotonic() - lab_began:.0f} s)\n")
    print("Real series (no ground truth; cells: ours / OONI's CUSUM):\n")
    uganda, uganda_verdicts = real(SUMMARIES / "ug-analysis_rows.csv", _uganda_verdict)
    fastpath, fastpath_verdicts = real(SUMMARIES / "fastpath_rows.csv", _fastpath_verdict)
    table(
        (
            "data",
            f"series (with >= {ENOUGH} ok/blocked)",
            "rows ok / blocked / error",
            "network-weeks",
            "events",
            "events / network-week",
            "events overlapping the other's",
        ),
        [
            real_row("ug-analysis (MTN Uganda, twitter.com)", uganda, uganda_verdicts),
            real_row("fastpath (47 countries)", fastpath, fastpath_verdicts),
        ],
    )
    real_events(uganda)
    print(f"({time.monotonic() - began:.0f} s in all)")
