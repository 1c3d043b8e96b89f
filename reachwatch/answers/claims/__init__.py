"""Claims: what sources say about blocking, checked against the evidence and each other.

`load_claims` reads a claims file (docs/claims.md); `check_claim` weighs one claim against the
events and verdicts of its country; `compare_claims` groups claims into episodes and named
events, finds where sources disagree, and which claims no other source bears out;
`review_claims` does both for the claims in a store."""

from ._compare import (
    Comparison,
    Conflict,
    Corroboration,
    Episode,
    NamedEvent,
    anchor,
    compare_claims,
    occasion,
)
from ._evidence import MIN_OK, Check, check_claim, check_claims, claim_period, claim_targets
from ._review import Review, claim_record, conflict_record, review_claims, says
from ._schema import (
    BLOCKING,
    EXTRA_APPS,
    FEATURES,
    STATUSES,
    Claim,
    ClaimsError,
    When,
    country_codes,
    known_apps,
    load_claims,
)

__all__ = [
    "BLOCKING",
    "EXTRA_APPS",
    "FEATURES",
    "MIN_OK",
    "STATUSES",
    "Check",
    "Claim",
    "ClaimsError",
    "Comparison",
    "Conflict",
    "Corroboration",
    "Episode",
    "NamedEvent",
    "Review",
    "When",
    "anchor",
    "check_claim",
    "check_claims",
    "claim_period",
    "claim_record",
    "claim_targets",
    "compare_claims",
    "conflict_record",
    "country_codes",
    "known_apps",
    "load_claims",
    "occasion",
    "review_claims",
    "says",
]
