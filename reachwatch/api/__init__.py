"""The public read API under /api/v1/ (FastAPI; OpenAPI at /openapi.json, docs at /docs),
and the collector probes submit to (OONI's flow: /report, /report/{id}, /report/{id}/close).

Every route is a thin layer over the store's query functions and the answers, the same ones
the CLI calls: a search of verdicts with OONI's measurement filters and pagination, an
aggregation by up to two axes (JSON or CSV), events, the answer card, and the claims with their
checks. The store is one DuckDB connection; requests take turns on it (a lock), which is what
DuckDB asks of a shared connection."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from fastapi.staticfiles import StaticFiles

from .. import ReachwatchError
from ..store import Store
from ..store._queries import AXES, VerdictFilter, aggregate_verdicts, search_verdicts
from ..web import STATIC, csv_response, web_routes
from ._alerts import Sender, alert_routes
from ._collector import RATE_PER_MINUTE, collector_routes

API = "/api/v1"
ALERT_INTERVAL = 30.0
MAX_LIMIT = 1000

# the filters every search and aggregation takes (OONI's names)
Cc = Annotated[str | None, Query(description="Country code, e.g. AZ", max_length=2)]
Asn = Annotated[str | None, Query(description="Network, e.g. AS29049")]
Test = Annotated[str | None, Query(description="Test name, e.g. web_connectivity")]
Target = Annotated[str | None, Query(description="A URL or an app feature, e.g. skype/calls")]
Since = Annotated[str | None, Query(description="From this date or time (UTC)")]
Until = Annotated[str | None, Query(description="Before this time, or to the end of this day")]
Verdict = Annotated[str | None, Query(description="ok, blocked, down or error")]
Technique = Annotated[str | None, Query(description="e.g. dns.nxdomain, udp.timeout")]


class _Shared:
    """The store, opened once, used by one request at a time."""

    def __init__(self, db: Path) -> None:
        self.store = Store(db)
        self.lock = threading.Lock()

    @contextmanager
    def use(self) -> Iterator[Store]:
        with self.lock:
            yield self.store


def _day(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError:
        raise HTTPException(422, f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None


def _filter(
    probe_cc: Cc = None,
    probe_asn: Asn = None,
    test_name: Test = None,
    target: Target = None,
    since: Since = None,
    until: Until = None,
    verdict: Verdict = None,
    technique: Technique = None,
) -> VerdictFilter:
    """The filters of a search or an aggregation (a dependency: one definition for both)."""
    asn = None
    if probe_asn is not None:
        digits = probe_asn.upper().removeprefix("AS")
        if not digits.isdigit():
            raise HTTPException(422, f"probe_asn: {probe_asn!r} is not an AS number like AS29049")
        asn = int(digits)
    if verdict is not None and verdict not in ("ok", "blocked", "down", "error"):
        raise HTTPException(422, f"verdict: {verdict!r} is not ok, blocked, down or error")
    until_day = _day(until, "until")
    if until is not None and len(until) == 10 and until_day is not None:
        try:
            until_day += timedelta(days=1)  # a day given as `until` is included whole, as OONI's
        except OverflowError:  # 9999-12-31: its whole day is all the time there is
            until_day = None
    return VerdictFilter(cc=probe_cc, asn=asn, test=test_name, target=target,
                         since=_day(since, "since"), until=until_day, verdict=verdict,
                         technique=technique)  # fmt: skip


Filters = Annotated[VerdictFilter, Depends(_filter)]


def create_app(
    db: Path,
    rate: int = RATE_PER_MINUTE,
    token: str | None = None,
    alert_interval: float = ALERT_INTERVAL,
) -> FastAPI:
    """The API over the store at `db`; the collector takes `rate` submissions a minute from a
    client; writing (claims, webhooks) needs `token` (off without one); webhooks are sent
    every `alert_interval` seconds and soon after new measurements."""
    shared = _Shared(db)
    app = FastAPI(
        title="reachwatch",
        summary="Is it blocked? Verdicts, events, answers and claims, with their evidence.",
        version="1",
    )
    app.state.shared = shared
    sender = Sender(shared.use, alert_interval)
    collector, close_intake = collector_routes(shared.use, rate, on_stored=sender.nudge)
    app.include_router(collector)
    app.include_router(alert_routes(shared.use, token))
    app.include_router(web_routes(shared.use))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.router.add_event_handler("startup", sender.start)
    app.router.add_event_handler("shutdown", sender.stop)
    app.router.add_event_handler("shutdown", close_intake)

    @app.exception_handler(ReachwatchError)
    async def reachwatch_error(request: Request, exc: ReachwatchError) -> PlainTextResponse:
        return PlainTextResponse(str(exc), status_code=400)

    @app.get(f"{API}/measurements")
    def measurements(
        request: Request,
        wanted: Filters,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """Verdicts per measurement and target, newest first, with OONI's filters and paging."""
        with shared.use() as store:
            rows, total = search_verdicts(store, wanted, limit=limit, offset=offset)
        following = None
        if offset + limit < total:
            following = str(request.url.include_query_params(offset=offset + limit))
        return {
            "metadata": {"count": total, "limit": limit, "offset": offset,
                         "next_url": following},
            "results": rows,
        }  # fmt: skip

    @app.get(f"{API}/aggregation", response_model=None)
    def aggregation(
        wanted: Filters,
        axis_x: Annotated[str | None, Query(description=f"One of {sorted(AXES)}")] = None,
        axis_y: Annotated[str | None, Query(description=f"One of {sorted(AXES)}")] = None,
        format: Annotated[str, Query(pattern="^(JSON|CSV)$")] = "JSON",
    ) -> dict[str, Any] | PlainTextResponse:
        """Counts of each verdict, overall or broken down by one or two axes (JSON or CSV)."""
        try:
            with shared.use() as store:
                rows = aggregate_verdicts(store, wanted, axis_x, axis_y)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        if format == "CSV":
            return csv_response(rows, "aggregation")
        return {"dimension_count": len([a for a in (axis_x, axis_y) if a]), "result": rows}

    @app.get(f"{API}/events")
    def events(probe_cc: Cc = None, target: Target = None) -> dict[str, Any]:
        """Blocking events with start and end, networks, technique, confidence and ids."""
        from ..answers import event_record, events_for

        with shared.use() as store:
            found = events_for(store, cc=probe_cc, targets=[target] if target else None)
        return {"results": [event_record(e) for e in found]}

    @app.get(f"{API}/answer")
    def answer(
        subject: Annotated[str, Query(description="An app (skype) or a domain")],
        probe_cc: Annotated[str, Query(min_length=2, max_length=2)],
        at: Annotated[str | None, Query(description="As of this date or time (UTC)")] = None,
    ) -> dict[str, Any]:
        """The answer card: is it blocked, where, since when, how, and the evidence."""
        from ..answers.card import answer as make_card
        from ..answers.card import card_record
        from ..probe.catalogue import default_catalogue

        if subject not in default_catalogue().apps and "." not in subject:
            raise HTTPException(422, f"subject: {subject!r} is neither an app nor a domain")
        moment = _day(at, "at")
        with shared.use() as store:
            card = make_card(store, subject, probe_cc,
                             moment.replace(tzinfo=UTC) if moment else None)  # fmt: skip
        return card_record(card)

    @app.get(f"{API}/claims")
    def claims(probe_cc: Cc = None, subject: Target = None) -> dict[str, Any]:
        """What sources claim, each checked against the evidence and against the others."""
        from ..answers.claims import claim_record, review_claims

        with shared.use() as store:
            review = review_claims(store, cc=probe_cc)
        shown = review.about(subject) if subject else list(review.claims)
        return {"results": [claim_record(c, review) for c in shown]}

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "today": date.today().isoformat()}

    return app
