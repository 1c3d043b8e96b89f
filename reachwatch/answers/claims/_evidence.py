"""A claim against the evidence: `supported`, `contradicted` or `unverified`, with the reason in
words and the measurements behind it.

The evidence is the country's events and its direct verdicts per target. A claim's period is
its dates widened by their precision (May 2017 is 1-31 May). With no end it runs to the date
the claim was published; with no publication date either, to FOLLOWING after its start (a
block said to begin in May 2017 speaks of May and the weeks after, not of the years after); a
claim with no date at all is weighed against all the evidence. A claim checks the catalogue
targets of its app (narrowed to its features; `login` is the app's messaging and web), or the
URL targets on its site's domain. Times are compared as naive UTC; aware ones are converted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from ...probe.catalogue import Catalogue, default_catalogue
from .._events import Event, Observation
from ._schema import EXTRA_APPS, Claim, When

MIN_OK = 3
"""Direct `ok` verdicts a period needs before they can bear out or contradict a claim."""
SHOWN = 5
"""Measurement ids a check carries, at most."""
FOLLOWING = timedelta(days=30)
"""How long after its start a claim with neither end nor publication date speaks of; a lift,
likewise, is borne out by `ok` verdicts from its date to this long after it."""
OUTCOMES = ("supported", "contradicted", "unverified")


@dataclass(frozen=True)
class Check:
    """The verdict of the evidence on one claim."""

    claim: str  # its id
    outcome: str  # supported | contradicted | unverified
    reason: str  # one sentence a person can check against the measurements
    targets: tuple[str, ...] = ()
    measurements: tuple[str, ...] = ()  # uids of a few measurements behind the outcome


def check_claim(
    claim: Claim,
    events: Sequence[Event],
    observations: Mapping[str, Sequence[Observation]],
    *,
    now: datetime | None = None,
    catalogue: Catalogue | None = None,
) -> Check:
    """Weigh `claim` against `events` (any country; those of the claim's are used) and the
    direct verdicts per target of the claim's country, `observations`."""
    catalogue = catalogue or default_catalogue()
    known = {*observations, *(e.target for e in events)}
    targets = claim_targets(claim, known, catalogue)
    if not targets:
        return Check(claim.id, "unverified", _unmeasured(claim, catalogue))
    evidence = _Evidence(claim, targets, events, observations, catalogue)
    now = _naive(now) if now else datetime.now(UTC).replace(tzinfo=None)
    if claim.asserted_status == "lifted":
        return evidence.lifted(now)
    start, until = claim_period(claim, now)
    if claim.blocking:
        return evidence.blocking(start, until)
    return evidence.open(start, until)


def check_claims(
    claims: Iterable[Claim],
    events: Sequence[Event],
    observations: Mapping[str, Sequence[Observation]],
    *,
    now: datetime | None = None,
    catalogue: Catalogue | None = None,
) -> dict[str, Check]:
    """`check_claim` for claims of one country, by claim id."""
    return {
        c.id: check_claim(c, events, observations, now=now, catalogue=catalogue) for c in claims
    }


def claim_targets(
    claim: Claim, known: Iterable[str], catalogue: Catalogue | None = None
) -> tuple[str, ...]:
    """What the claim is about, as targets: the app's catalogue features (narrowed to the
    claim's), or the `known` URL targets on its site (or an extra app's sites) and subdomains."""
    app = (catalogue or default_catalogue()).apps.get(claim.app or "")
    if app is not None:
        wanted = {f for name in claim.features or app.features
                  for f in (("messaging", "web") if name == "login" else (name,))}  # fmt: skip
        return tuple(f"{app.key}/{f}" for f in app.features if f in wanted)
    domains = EXTRA_APPS[claim.app] if claim.app else (claim.site or "",)
    return tuple(sorted(t for t in set(known) if _on(t, domains)))


def claim_period(claim: Claim, now: datetime) -> tuple[datetime | None, datetime]:
    """[start, until) of the claim: its dates widened by their precision; without an end, to
    its publication (unless that came before the start), else to FOLLOWING after the start;
    with no date at all, from the beginning (None) to its publication or `now`."""
    start = claim.start.first if claim.start else None
    if claim.end is not None:
        return start, claim.end.after
    published = claim.published.after if claim.published else None
    if published is not None and (start is None or published > start):
        return start, published
    if claim.start is not None:
        return start, claim.start.after + FOLLOWING
    return None, _naive(now)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _on(target: str, domains: Iterable[str]) -> bool:
    if "://" not in target:
        return False
    host = (urlsplit(target).hostname or "").lower()
    return any(host == d or host.endswith("." + d) for d in domains)


def _unmeasured(claim: Claim, catalogue: Catalogue) -> str:
    app = catalogue.apps.get(claim.app or "")
    if app is not None:
        return (f"reachwatch does not measure {claim.app} {', '.join(claim.features)} "
                f"(the catalogue has {claim.app}: {', '.join(app.features)})")  # fmt: skip
    domains = (claim.site,) if claim.site else EXTRA_APPS[claim.app or ""]
    return (f"no measurements of {', '.join(domains)} in {claim.country}: measure it "
            f"(reachwatch probe https://{domains[0]}/)")  # fmt: skip


def _day(moment: datetime | None) -> str:
    return "now (ongoing)" if moment is None else moment.strftime("%Y-%m-%d")


def _feature(target: str) -> str:
    return target.split("/", 1)[1] if "/" in target and "://" not in target else target


def _bounds(event: Event) -> tuple[datetime, datetime | None]:
    return _naive(event.start), _naive(event.end) if event.end else None


def _describe(event: Event) -> str:
    start, end = _bounds(event)
    technique = f" ({event.technique})" if event.technique else ""
    return (f"{event.target} was blocked from {_day(start)} to {_day(end)} on "
            f"{', '.join(event.networks)}{technique}")  # fmt: skip


def _period(start: datetime | None, until: datetime) -> str:
    if start is None:
        return f"until {_day(until)} (the claim gives no date, so all of it counts)"
    return f"from {_day(start)} to {_day(until - timedelta(microseconds=1))}"


def _offset(event: Event, claimed: When) -> str:
    """How far the event began from the claimed start, if outside its precision ('' if not)."""
    began = _naive(event.start)
    if began < claimed.first:
        days, side = (claimed.first.date() - began.date()).days, "before"
    elif began >= claimed.after:
        days, side = (began.date() - claimed.after.date()).days + 1, "after"
    else:
        return ""
    return f"; it began {days} day{'s' * (days != 1)} {side} the claimed start ({claimed})"


class _Evidence:
    """The events and verdicts that bear on one claim."""

    def __init__(
        self,
        claim: Claim,
        targets: tuple[str, ...],
        events: Sequence[Event],
        observations: Mapping[str, Sequence[Observation]],
        catalogue: Catalogue,
    ) -> None:
        self.claim = claim
        self.targets = targets
        self.events = [e for e in events if e.cc == claim.country]
        self.observations = observations
        # the app's other features: calls blocked while login worked is evidence too
        app = catalogue.apps.get(claim.app or "")
        features = app.features if app else {}
        self.others = tuple(t for t in (f"{claim.app}/{f}" for f in features) if t not in targets)

    def overlapping(
        self, targets: Iterable[str], start: datetime | None, until: datetime
    ) -> list[Event]:
        wanted = set(targets)
        out = []
        for event in self.events:
            began, ended = _bounds(event)
            if (event.target in wanted and began < until
                    and (start is None or ended is None or ended > start)):  # fmt: skip
                out.append(event)
        return out

    def verdicts(self, start: datetime | None, until: datetime, ok_only: bool) -> list[Observation]:
        return sorted(
            (o for t in self.targets for o in self.observations.get(t, ())
             if (start is None or _naive(o.at) >= start) and _naive(o.at) < until
             and (o.verdict == "ok" or not ok_only)),
            key=lambda o: (_naive(o.at), o.uid),
        )  # fmt: skip

    def result(self, outcome: str, reason: str, uids: Iterable[str]) -> Check:
        return Check(self.claim.id, outcome, reason, self.targets, tuple(uids)[:SHOWN])

    def too_few(self, start: datetime | None, until: datetime) -> Check:
        measured = self.verdicts(start, until, ok_only=False)
        where = f"{', '.join(self.targets)} in {self.claim.country} {_period(start, until)}"
        if not measured:
            return self.result("unverified", f"no measurements of {where}: measure them there", ())
        ok = sum(o.verdict == "ok" for o in measured)
        return self.result(
            "unverified",
            f"only {len(measured)} measurement{'s' * (len(measured) != 1)} of {where} ({ok} ok), "
            f"too few to tell (it takes {MIN_OK} ok and no block): measure them there",
            (o.uid for o in measured),
        )

    def blocking(self, start: datetime | None, until: datetime) -> Check:
        """blocked/restricted: an event in the period bears it out; only `ok` contradicts it,
        above all `ok` on the claimed features while another feature of the app was blocked."""
        claim = self.claim
        hits = self.overlapping(self.targets, start, until)
        if hits:
            claimed = claim.start
            if claimed is None:
                event = min(hits, key=lambda e: _naive(e.start))
                reason = _describe(event)
            else:
                event = min(hits, key=lambda e: abs(_naive(e.start) - claimed.first))
                reason = _describe(event) + _offset(event, claimed)
            seen = {n.split()[0] for n in event.networks}
            if claim.networks and not seen & set(claim.networks):
                reason += f"; the claim names {', '.join(claim.networks)}, not those networks"
            others = [t for t in self.targets if t != event.target]
            working = self.ok_during(event, others, start, until)
            if not claim.features and working:
                reason += (f"; only {_feature(event.target)}: "
                           f"{' and '.join(map(_feature, working))} worked meanwhile")  # fmt: skip
            return self.result("supported", reason, event.measurements)
        ok = self.verdicts(start, until, ok_only=True)
        if len(ok) < MIN_OK:
            return self.too_few(start, until)
        for event in self.overlapping(self.others, start, until):
            working = self.ok_during(event, self.targets, start, until)
            if working:
                feature = _feature(event.target)
                verb = "were" if feature.endswith("s") else "was"
                during = sorted((o for found in working.values() for o in found),
                                key=lambda o: (_naive(o.at), o.uid))  # fmt: skip
                return self.result(
                    "contradicted",
                    f"{feature} {verb} blocked but {' and '.join(map(_feature, working))} "
                    f"worked: {_describe(event)}, while {', '.join(working)} answered ok "
                    f"{len(during)} times during it",
                    (*event.measurements[:2], *(o.uid for o in during)),
                )
        return self.result(
            "contradicted",
            f"{len(ok)} measurements of {', '.join(self.targets)} in {claim.country} "
            f"{_period(start, until)} were ok and no block was detected",
            (o.uid for o in ok),
        )

    def ok_during(
        self, event: Event, targets: Iterable[str], start: datetime | None, until: datetime
    ) -> dict[str, list[Observation]]:
        """The `ok` verdicts of each of `targets` during `event`, within the period."""
        began, ended = _bounds(event)
        low = max(began, start) if start else began
        high = min(ended, until) if ended else until
        found: dict[str, list[Observation]] = {}
        for target in targets:
            ok = [o for o in self.observations.get(target, ())
                  if o.verdict == "ok" and low <= _naive(o.at) < high]  # fmt: skip
            if ok:
                found[target] = ok
        return found

    def open(self, start: datetime | None, until: datetime) -> Check:
        """accessible/denied: an event in the period contradicts it; `ok` bears it out."""
        hits = self.overlapping(self.targets, start, until)
        if hits:
            event = hits[0]
            return self.result(
                "contradicted",
                f"{_describe(event)}, although the claim says {self.claim.asserted_status}",
                event.measurements,
            )
        return self.borne_out_by_ok(start, until, "no block was detected")

    def lifted(self, now: datetime) -> Check:
        """lifted: an event still going after the lift contradicts it; `ok` soon after bears it
        out. The lift's date is the claim's `end`, or its `start`."""
        lift = self.claim.end or self.claim.start
        if lift is None:
            return self.result("unverified", "the claim does not say when it was lifted", ())
        for event in self.overlapping(self.targets, lift.after, now):
            began, _ = _bounds(event)
            if began < lift.after:
                return self.result(
                    "contradicted",
                    f"{_describe(event)}: still blocked after {lift}, when the claim says it "
                    "was lifted",
                    event.measurements,
                )
        start, until = lift.first, min(lift.after + FOLLOWING, max(now, lift.after))
        return self.borne_out_by_ok(start, until, f"no block went on past {lift}")

    def borne_out_by_ok(self, start: datetime | None, until: datetime, what: str) -> Check:
        """`supported` by enough `ok` measurements in the period, else too few to tell."""
        ok = self.verdicts(start, until, ok_only=True)
        if len(ok) < MIN_OK:
            return self.too_few(start, until)
        return self.result(
            "supported",
            f"{len(ok)} measurements of {', '.join(self.targets)} in {self.claim.country} "
            f"{_period(start, until)} were ok and {what}",
            (o.uid for o in ok),
        )
