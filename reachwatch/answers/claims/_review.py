"""The stored claims, each checked against the store's evidence and compared with the others:
what `reachwatch claims check` prints and the answer card shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ...store import Store, claim_rows, measured_targets
from .._evidence import events_for, series_for
from ._compare import Comparison, Conflict, compare_claims
from ._evidence import Check, check_claims, claim_targets
from ._schema import Claim


@dataclass(frozen=True)
class Review:
    """Claims with their checks (by id) and how they compare."""

    claims: tuple[Claim, ...]
    checks: dict[str, Check] = field(repr=False)
    comparison: Comparison = field(repr=False)

    def about(self, subject: str) -> list[Claim]:
        """The claims about an app, or a site (its domain, or `site:DOMAIN`)."""
        wanted = subject.lower().removeprefix("site:")
        return [c for c in self.claims if wanted in (c.app, c.site)]


def review_claims(store: Store, *, cc: str | None = None, now: datetime | None = None) -> Review:
    """The stored claims (of `cc`, or all), checked against the events and direct verdicts
    of their countries; compared with each other within the same selection."""
    claims = tuple(Claim.from_record(row) for row in claim_rows(store, cc=cc))
    checks: dict[str, Check] = {}
    for country in sorted({c.country for c in claims}):
        mine = [c for c in claims if c.country == country]
        known = measured_targets(store, country)
        targets = sorted({t for c in mine for t in claim_targets(c, known)})
        events = events_for(store, cc=country, targets=targets) if targets else []
        observations = series_for(store, country, targets) if targets else {}
        checks |= check_claims(mine, events, observations, now=now)
    return Review(claims, checks, compare_claims(claims))


def says(claim: Claim) -> str:
    """What a claim asserts, in one line: `skype (calls) blocked in AZ, 2017-05`."""
    period = f"{claim.start or ''}{' to ' + str(claim.end) if claim.end else ''}" or "undated"
    features = f" ({', '.join(claim.features)})" if claim.features else ""
    return f"{claim.subject}{features} {claim.asserted_status} in {claim.country}, {period}"


def conflict_record(conflict: Conflict) -> dict[str, Any]:
    """A disagreement between claims, as stable JSON."""
    return {"kind": conflict.kind, "subject": conflict.subject, "claims": conflict.claims,
            "reason": conflict.reason}  # fmt: skip


def claim_record(claim: Claim, review: Review) -> dict[str, Any]:
    """A claim with its check, its corroboration and its conflicts, as stable JSON (the
    `claims check --format jsonl` rows and the answer card's claims)."""
    check = review.checks[claim.id]
    backed = review.comparison.corroboration[claim.id]
    return {
        "type": "claim",
        "id": claim.id,
        "country": claim.country,
        "subject": claim.subject,
        "says": says(claim),
        "asserted_status": claim.asserted_status,
        "features": claim.features,
        "start": str(claim.start) if claim.start else None,
        "end": str(claim.end) if claim.end else None,
        "publisher": claim.publisher,
        "source": claim.source,
        "url": claim.url,
        "quote": claim.quote,
        "check": {"outcome": check.outcome, "reason": check.reason, "targets": check.targets,
                  "measurements": check.measurements},
        "corroborated_by": backed.by,
        "corroboration": backed.reason,
        "conflicts": [conflict_record(c) for c in review.comparison.conflicts_of(claim.id)],
    }  # fmt: skip
