"""The answer card: "is X blocked in Y?" answered from the evidence, as of a moment.

Per feature of an app (or per URL of a site) and per network: `blocked` while an event is
ongoing, `accessible` when the recent measurements show no event, `unknown` when there are
too few recent measurements or none recent enough (FRESH_DAYS, MIN_RECENT); across the
networks of the country a feature is `blocked` when every network that can tell is blocked,
`partially blocked` when some are, `accessible` when none is, `unknown` when none can tell.
Events are computed from what was measured up to that moment only, so an answer "as of" a past
date is what the evidence said then. It never guesses: an `unknown` says why."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from ..probe.catalogue import default_catalogue
from ..store import Store
from ..store._queries import direct_series, targets_measured, tunnel_outcomes
from ._events import Event, NetworkEvent, Observation, group, network_events
from ._evidence import network_series
from .claims import claim_record, review_claims

FRESH_DAYS = 7
"""Evidence older than this (before the moment asked about) no longer says what is true now."""
MIN_RECENT = 2
"""Measurements a network needs within FRESH_DAYS for its status to be known."""


@dataclass(frozen=True)
class NetworkStatus:
    asn: int
    network: str
    status: str  # blocked | accessible | unknown
    why: str
    newest: datetime | None  # the newest measurement up to the moment asked about
    since: datetime | None  # start of the ongoing event
    technique: str | None
    recent: int  # measurements within FRESH_DAYS
    measurements: tuple[str, ...]  # uids behind the status (the event's, or the recent ones)


@dataclass(frozen=True)
class FeatureStatus:
    target: str
    status: str  # blocked | partially blocked | accessible | unknown
    networks: tuple[NetworkStatus, ...]
    since: datetime | None
    technique: str | None
    newest: datetime | None
    tunnels: dict[str, int] = field(default_factory=dict)  # restored / not-restored / ...


@dataclass(frozen=True)
class Card:
    subject: str
    cc: str
    at: datetime
    features: tuple[FeatureStatus, ...]
    episodes: tuple[Event, ...]  # every event of these targets up to `at`, ongoing ones included
    measured: int  # direct ok/blocked measurements up to `at`
    networks: tuple[str, ...]
    unmeasured: tuple[str, ...]  # the app's catalogue features nobody measured here
    claims: tuple[dict[str, Any], ...] = ()  # what sources say, each checked (claim_record)

    @property
    def status(self) -> str:
        """The headline: the worst known status of any feature."""
        order = ("blocked", "partially blocked", "accessible")
        known = [f.status for f in self.features if f.status != "unknown"]
        return next((s for s in order if s in known), "unknown")


def subject_targets(store: Store, subject: str, cc: str) -> tuple[list[str], list[str]]:
    """The measured targets an app key or a domain stands for in `cc`, and (for an app) its
    catalogue features nobody measured there."""
    apps = default_catalogue().apps
    if subject in apps:
        features = [f"{subject}/{name}" for name in apps[subject].features]
        measured = targets_measured(store, cc, containing=f"{subject}/")
        found = [t for t in measured if t.startswith(f"{subject}/")]
        return found, [f for f in features if f not in found]
    domain = subject.lower().strip(".")
    found = []
    for target in targets_measured(store, cc, containing=domain):
        host = (urlsplit(target).hostname or "") if "://" in target else ""
        if host == domain or host.endswith("." + domain):
            found.append(target)
    return found, []


def answer(store: Store, subject: str, cc: str, at: datetime | None = None) -> Card:
    """The card for `subject` (an app key such as `skype`, or a domain) in country `cc`."""
    cc = cc.upper()
    at = at or datetime.now(UTC)
    targets, unmeasured = subject_targets(store, subject, cc)
    series = network_series(direct_series(store, cc=cc, targets=targets)) if targets else {}
    parts: list[NetworkEvent] = []
    statuses: dict[str, list[NetworkStatus]] = {}
    networks: set[str] = set()
    measured = 0
    for (country, asn, name, target), observations in series.items():
        upto = [o for o in observations if o.at <= at]
        if not upto:
            continue
        measured += len(upto)
        found = network_events(country, asn, name, target, upto)
        parts += found
        network = _network_status(found, upto, at, asn, name)
        networks.add(network.network)
        statuses.setdefault(target, []).append(network)
    events = group(parts)
    features = []
    for target in targets:
        per_network = tuple(sorted(statuses.get(target, []), key=lambda s: s.network))
        blocked = [s for s in per_network if s.status == "blocked"]
        known = [s for s in per_network if s.status != "unknown"]
        if not known:
            status = "unknown"
        elif len(blocked) == len(known):
            status = "blocked"
        else:
            status = "partially blocked" if blocked else "accessible"
        since = min((s.since for s in blocked if s.since), default=None)
        tunnels = {}
        if since is not None:
            # what a tunnel did where the direct path was blocked
            tunnels = tunnel_outcomes(
                store, cc=cc, targets=[target], since=since.replace(tzinfo=None),
                until=at.replace(tzinfo=None), asns=[s.asn for s in blocked],
            ).get(target, {})  # fmt: skip
        features.append(FeatureStatus(
            target=target, status=status, networks=per_network, since=since,
            technique=_first(s.technique for s in blocked),
            newest=max((s.newest for s in per_network if s.newest), default=None),
            tunnels=tunnels,
        ))  # fmt: skip
    review = review_claims(store, cc=cc, now=at)
    claims = tuple(claim_record(c, review) for c in review.about(subject))
    return Card(
        subject=subject, cc=cc, at=at, features=tuple(features), episodes=tuple(events),
        measured=measured, networks=tuple(sorted(networks)), unmeasured=tuple(unmeasured),
        claims=claims,
    )  # fmt: skip


def _network_status(
    events: list[NetworkEvent], upto: list[Observation], at: datetime, asn: int, name: str | None
) -> NetworkStatus:
    label = f"AS{asn} {name}".strip() if name else f"AS{asn}"
    newest = upto[-1].at
    recent = [o for o in upto if at - o.at <= timedelta(days=FRESH_DAYS)]
    if len(recent) < MIN_RECENT:
        age = (at - newest).days
        why = (f"only {len(recent)} measurement(s) in the {FRESH_DAYS} days before; the newest "
               f"is {age} days old")  # fmt: skip
        return NetworkStatus(asn, label, "unknown", why, newest, None, None, len(recent),
                             tuple(o.uid for o in recent))  # fmt: skip
    ongoing = events[-1] if events and events[-1].ongoing else None
    if ongoing is not None:
        why = f"blocked since {ongoing.start:%Y-%m-%d %H:%M} ({ongoing.blocked} measurements)"
        return NetworkStatus(asn, label, "blocked", why, newest, ongoing.start, ongoing.technique,
                             len(recent), ongoing.measurements)  # fmt: skip
    why = f"{len(recent)} recent measurements, no ongoing event"
    return NetworkStatus(asn, label, "accessible", why, newest, None, None, len(recent),
                         tuple(o.uid for o in recent))  # fmt: skip


def _first(values: Any) -> Any:
    return next((v for v in values if v), None)


def card_record(card: Card) -> dict[str, Any]:
    """The card as stable JSON (`--format json` and the API)."""
    from ._evidence import event_record

    def when(value: datetime | None) -> str | None:
        return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None

    return {
        "subject": card.subject,
        "cc": card.cc,
        "at": when(card.at),
        "status": card.status,
        "features": [
            {
                "target": f.target,
                "status": f.status,
                "since": when(f.since),
                "technique": f.technique,
                "newest_evidence": when(f.newest),
                "tunnels": f.tunnels,
                "networks": [
                    {
                        **asdict(n),
                        "newest": when(n.newest),
                        "since": when(n.since),
                        "measurements": list(n.measurements),
                    }
                    for n in f.networks
                ],
            }
            for f in card.features
        ],
        "episodes": [event_record(e) for e in card.episodes],
        "measured": card.measured,
        "networks": list(card.networks),
        "unmeasured": list(card.unmeasured),
        "claims": list(card.claims),
        "thresholds": {"fresh_days": FRESH_DAYS, "min_recent": MIN_RECENT},
    }
