"""Claims against each other: episodes, named events, where sources disagree, and which claims
no other source bears out.

A claim's *anchor* is what it pins down in time, widened by precision: start to end; with only
a start, the start's own range (a block said to begin in May 2017 says nothing of 2018); with
only an end, the end's. An *episode* is the claims of one country whose anchors overlap or lie
within NEAR of each other, across apps. A *named event* is the claims of one country that tie
themselves to the same occasion: the `event` field, else a name found in `reason` (see
`occasion`). Undated claims join no episode, only named events."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ._schema import Claim, When

NEAR = timedelta(days=30)
"""Claims of one country whose anchors lie this close are about the same episode."""
OCCASIONS = frozenset({
    "games", "olympics", "cup", "championship", "championships", "summit", "forum", "contest",
    "prix", "festival", "election", "elections", "referendum", "congress", "conference",
    "protests", "war",
})  # fmt: skip
"""Last words of the occasions a reason may name ("the 4th Islamic Solidarity Games")."""
_CONNECTORS = frozenset({"of", "and", "de", "for"})


@dataclass(frozen=True)
class Conflict:
    """Where claims disagree: `kind` is start, end, status, scope or event-dates."""

    kind: str
    subject: str | None  # the app (or site:domain) it is about; None across apps
    claims: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Episode:
    """Claims of one country about one stretch of time, with where they disagree."""

    country: str
    first: datetime  # the span of the claims' anchors: [first, until)
    until: datetime
    claims: tuple[str, ...]
    subjects: tuple[str, ...]
    starts: tuple[str, ...]  # the distinct asserted starts, earliest first
    ends: tuple[str, ...]
    conflicts: tuple[Conflict, ...]


@dataclass(frozen=True)
class NamedEvent:
    """Claims of one country tied to the same named occasion (the Islamic Solidarity Games)."""

    country: str
    name: str  # as the first of its claims writes it
    claims: tuple[str, ...]
    conflicts: tuple[Conflict, ...]


@dataclass(frozen=True)
class Corroboration:
    """The other sources whose claims match one claim; `by` empty: no other source."""

    claim: str
    by: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Comparison:
    """Every claim against every other: the answer card and `claims check` read this."""

    episodes: tuple[Episode, ...]
    events: tuple[NamedEvent, ...]
    corroboration: dict[str, Corroboration] = field(repr=False)

    def conflicts(self) -> list[Conflict]:
        """Every disagreement, episodes' first."""
        found = [c for e in self.episodes for c in e.conflicts]
        return list(dict.fromkeys([*found, *(c for e in self.events for c in e.conflicts)]))

    def conflicts_of(self, claim_id: str) -> list[Conflict]:
        return [c for c in self.conflicts() if claim_id in c.claims]

    def episode_of(self, claim_id: str) -> Episode | None:
        return next((e for e in self.episodes if claim_id in e.claims), None)


def compare_claims(claims: Sequence[Claim]) -> Comparison:
    """Group `claims` into episodes and named events, find their disagreements, and match
    each claim with other sources'."""
    return Comparison(
        episodes=tuple(_episode(group) for group in _episodes(claims)),
        events=tuple(_named_event(group) for group in _named_events(claims)),
        corroboration={c.id: _corroboration(c, claims) for c in claims},
    )


def anchor(claim: Claim) -> tuple[datetime, datetime] | None:
    """[first, after) of what the claim pins down in time; None if it gives no date."""
    if claim.start is not None:
        return claim.start.first, (claim.end or claim.start).after
    if claim.end is not None:
        return claim.end.first, claim.end.after
    return None


def occasion(claim: Claim) -> tuple[str, str] | None:
    """(key, name) of the occasion the claim ties itself to: its `event`, else the first name in
    its `reason` made of capitalised words ending in an occasion word (OCCASIONS), joined by
    of/and/de/for. The key is the name in lower case without a leading ordinal or `the`, so
    "the 4th Islamic Solidarity Games" and "Islamic Solidarity Games" are one occasion."""
    name = claim.event or _named_occasion(claim.reason or "")
    if name is None:
        return None
    words = re.findall(r"\w+", name.lower())
    while words and (words[0] == "the" or re.fullmatch(r"\d+(st|nd|rd|th)?", words[0])):
        words.pop(0)
    return (" ".join(words), name) if words else None


def _named_occasion(text: str) -> str | None:
    words = re.findall(r"[\w'’-]+", text)
    for i, word in enumerate(words):
        if word[0].isupper() and word.lower() in OCCASIONS:
            first = i
            while first > 0:
                before = words[first - 1]
                if before[0].isupper():
                    first -= 1
                elif before in _CONNECTORS and first > 1 and words[first - 2][0].isupper():
                    first -= 2
                else:
                    break
            if first < i:
                return " ".join(words[first : i + 1])
    return None


def _publisher(claim: Claim) -> str:
    return claim.publisher or claim.url or claim.id


def _span(claim: Claim) -> str:
    """The claim's dates as it gives them: '2020-09-27 to 2020-11-11', '2017-05', 'undated'."""
    if claim.start and claim.end:
        return f"{claim.start} to {claim.end}"
    if claim.start or claim.end:
        return str(claim.start or f"until {claim.end}")
    return "undated"


def _clusters(
    items: Iterable[tuple[datetime, datetime, Claim]], gap: timedelta
) -> list[list[tuple[datetime, datetime, Claim]]]:
    """Items chained while each begins before the cluster's end plus `gap`, in time order."""
    clusters: list[list[tuple[datetime, datetime, Claim]]] = []
    end = datetime.min
    for item in sorted(items, key=lambda i: (i[0], i[1], i[2].id)):
        if clusters and item[0] < end + gap:
            clusters[-1].append(item)
            end = max(end, item[1])
        else:
            clusters.append([item])
            end = item[1]
    return clusters


def _episodes(claims: Sequence[Claim]) -> list[list[Claim]]:
    dated = [(*a, c) for c in claims if (a := anchor(c)) is not None]
    groups: list[list[Claim]] = []
    for country in sorted({c.country for _, _, c in dated}):
        mine = [item for item in dated if item[2].country == country]
        groups += [[c for _, _, c in cluster] for cluster in _clusters(mine, NEAR)]
    return groups


def _by_subject(claims: Iterable[Claim]) -> dict[str, list[Claim]]:
    out: dict[str, list[Claim]] = {}
    for claim in claims:
        out.setdefault(claim.subject, []).append(claim)
    return out


def _episode(claims: list[Claim]) -> Episode:
    anchors = [a for c in claims if (a := anchor(c)) is not None]
    conflicts: list[Conflict] = []
    for subject, mine in _by_subject(claims).items():
        blocking = [c for c in mine if c.blocking]
        conflicts += _dates(subject, "start", blocking, lambda c: c.start)
        conflicts += _dates(subject, "end", blocking, lambda c: c.end)
        conflicts += _dated_status(subject, mine)
        conflicts += _scope(subject, mine)
    return Episode(
        country=claims[0].country,
        first=min(a[0] for a in anchors),
        until=max(a[1] for a in anchors),
        claims=tuple(c.id for c in claims),
        subjects=tuple(dict.fromkeys(c.subject for c in claims)),
        starts=_distinct(c.start for c in claims),
        ends=_distinct(c.end for c in claims),
        conflicts=tuple(conflicts),
    )


def _distinct(whens: Iterable[When | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(w) for w in sorted(w for w in whens if w is not None)))


def _dates(
    subject: str, kind: str, claims: list[Claim], pick: Callable[[Claim], When | None]
) -> list[Conflict]:
    """Blocking claims whose starts (or ends) do not overlap, even widened by precision."""
    items = [(w.first, w.after, c) for c in claims if (w := pick(c)) is not None]
    clusters = _clusters(items, timedelta(0))
    if len(clusters) < 2:
        return []
    said = "; ".join(
        f"{'/'.join(_distinct(pick(c) for _, _, c in cluster))} "
        f"({', '.join(c.id for _, _, c in cluster)})"
        for cluster in clusters
    )
    return [Conflict(kind, subject, tuple(c.id for _, _, c in items),
                     f"sources give the {subject} block different {kind}s: {said}")]  # fmt: skip


def _dated_status(subject: str, claims: list[Claim]) -> list[Conflict]:
    """Open claims (accessible, denied, lifted) against blocking claims of the same time: for
    `lifted`, a block said to go on after the lift's date."""
    conflicts = []
    blocking = [(c, a) for c in claims if c.blocking and (a := anchor(c)) is not None]
    for claim in claims:
        if claim.blocking or (own := anchor(claim)) is None:
            continue
        if claim.asserted_status == "lifted":
            lift = claim.end or claim.start
            assert lift is not None  # anchored
            against = [c for c, (_, after) in blocking if after > lift.after]
            said = f"says {subject} was lifted as of {lift}, yet"
            then = "after that"
        else:
            against = [c for c, (first, after) in blocking if first < own[1] and own[0] < after]
            said = f"says {subject} was {claim.asserted_status} in {_span(claim)}, yet"
            then = "then"
        if against:
            ids = ", ".join(f"{c.id} ({_span(c)})" for c in against)
            conflicts.append(Conflict("status", subject, (claim.id, *(c.id for c in against)),
                                      f"{claim.id} {said} {ids} say{'s' * (len(against) == 1)} "
                                      f"it was blocked {then}"))  # fmt: skip
    return conflicts


def _say(claims: list[Claim]) -> str:
    return ", ".join(c.id for c in claims) + (" says" if len(claims) == 1 else " say")


def _scope_of(claim: Claim) -> str | None:
    """`calls` for a claim that only calls were blocked, `app` for one that the app itself
    (login, messaging) was, None for others (no features: the source does not say)."""
    if claim.features == ("calls",):
        return "calls"
    return "app" if {"login", "messaging"} & set(claim.features) else None


def _scope(subject: str, claims: list[Claim]) -> list[Conflict]:
    """Blocking claims that only calls were blocked, against claims that the app itself was."""
    calls = [c for c in claims if c.blocking and _scope_of(c) == "calls"]
    whole = [c for c in claims if c.blocking and _scope_of(c) == "app"]
    if not calls or not whole:
        return []
    return [Conflict(
        "scope", subject, tuple(c.id for c in (*calls, *whole)),
        f"{_say(calls)} only {subject} calls were blocked; "
        f"{_say(whole)} {subject} itself was "
        f"({'/'.join(sorted({f for c in whole for f in c.features}))})",
    )]  # fmt: skip


def _named_events(claims: Sequence[Claim]) -> list[list[Claim]]:
    groups: dict[tuple[str, str], list[Claim]] = {}
    for claim in claims:
        found = occasion(claim)
        if found is not None:
            groups.setdefault((claim.country, found[0]), []).append(claim)
    return list(groups.values())


def _named_event(claims: list[Claim]) -> NamedEvent:
    found = occasion(claims[0])
    assert found is not None  # grouped by it
    name = found[1]
    conflicts: list[Conflict] = []
    clusters = _clusters(((*a, c) for c in claims if (a := anchor(c)) is not None), NEAR)
    if len(clusters) > 1:
        said = "; ".join(
            f"{'/'.join(_distinct(w for _, _, c in cluster for w in (c.start, c.end)))} "
            f"({', '.join(c.id for _, _, c in cluster)})"
            for cluster in clusters
        )
        ids = tuple(c.id for cluster in clusters for _, _, c in cluster)
        conflicts.append(Conflict("event-dates", None, ids,
                                  f"claims put the {name} at different times: {said}"))  # fmt: skip
    for subject, mine in _by_subject(claims).items():
        conflicts += _phase_status(subject, name, mine)
        conflicts += _scope(subject, mine)
    return NamedEvent(claims[0].country, name, tuple(c.id for c in claims), tuple(conflicts))


def _phase_status(subject: str, name: str, claims: list[Claim]) -> list[Conflict]:
    """Undated or not: claims that put opposite statuses on the same phase of the occasion."""
    conflicts = []
    for phase in ("before", "during", "after"):
        mine = [c for c in claims if c.event_phase == phase]
        blocked = [c for c in mine if c.blocking]
        open_ = [c for c in mine if not c.blocking]
        if blocked and open_:
            conflicts.append(Conflict(
                "status", subject, tuple(c.id for c in (*open_, *blocked)),
                f"{phase} the {name}: {', '.join(f'{c.id} ({c.asserted_status})' for c in open_)}"
                f" against {', '.join(f'{c.id} ({c.asserted_status})' for c in blocked)}: "
                f"{'lifted' if any(c.asserted_status == 'lifted' for c in open_) else 'open'} "
                f"or the block remained",
            ))  # fmt: skip
    return conflicts


def _corroboration(claim: Claim, claims: Sequence[Claim]) -> Corroboration:
    own = anchor(claim)
    if own is None:
        return Corroboration(claim.id, (), "undated: no other source can be matched to it")
    others = []
    for other in claims:
        theirs = anchor(other)
        if (theirs is not None and other.country == claim.country
                and _publisher(other) != _publisher(claim)
                and theirs[0] < own[1] and own[0] < theirs[1]):  # fmt: skip
            others.append(other)
    by = [o for o in others if o.subject == claim.subject and o.blocking == claim.blocking
          and {_scope_of(o), _scope_of(claim)} != {"calls", "app"}]  # fmt: skip
    if by:
        return Corroboration(claim.id, tuple(o.id for o in by),
                             "also said by " + ", ".join(f"{o.id} ({_publisher(o)})"
                                                          for o in by))  # fmt: skip
    status = "blocked" if claim.blocking else "not blocked"
    reason = (f"no other source: no other publisher says {claim.subject} was {status} in "
              f"{claim.country} around {_span(claim)}")  # fmt: skip
    if others:
        reason += "; the only other claims about then: " + ", ".join(
            f"{o.id} ({o.subject} {o.asserted_status} {_span(o)})" for o in others
        )
    else:
        reason += f"; no other source says anything about {claim.country} then"
    return Corroboration(claim.id, (), reason)
