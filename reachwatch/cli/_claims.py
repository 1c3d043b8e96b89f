"""`reachwatch claims ...`: what sources say, added to the store from claims files, then checked
against the evidence and against each other."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from ..store import DEFAULT_DB, Store, add_claims
from ._common import CcFilter, DbOption, console, errors

if TYPE_CHECKING:
    from ..answers.claims import Claim, Conflict, Review

claims_app = typer.Typer(
    help="What sources claim: add claims files, check them against the evidence and each other.",
    no_args_is_help=True,
)

OUTCOME_STYLE = {"supported": "green", "contradicted": "bold red", "unverified": "yellow"}


class ClaimsFormat(StrEnum):
    table = "table"
    jsonl = "jsonl"


@claims_app.command("add")
def claims_add(
    file: Annotated[Path, typer.Argument(help="A claims file (YAML; docs/claims.md).")],
    db: DbOption = Path(DEFAULT_DB),
) -> None:
    """Add a file's claims to the store. The same claim again changes nothing; a claim whose id
    is stored with other content replaces it, and is listed as updated."""
    from ..answers.claims import load_claims

    claims = load_claims(file)  # refused whole, before anything is stored
    with Store(db) as store:
        done = add_claims(store, [c.record() for c in claims], str(file))
    console.print(
        f"{escape(str(file))}: {len(done.added)} added, {len(done.updated)} updated, "
        f"{len(done.unchanged)} unchanged"
    )
    for ident in done.updated:
        console.print(f"updated {escape(ident)}: the new version replaced the stored one")


@claims_app.command("check")
def claims_check(
    db: DbOption = Path(DEFAULT_DB),
    cc: CcFilter = None,
    app: Annotated[
        str | None, typer.Option(help="Only claims about this app or site, e.g. skype, x.com.")
    ] = None,
    fmt: Annotated[
        ClaimsFormat, typer.Option("--format", help="table or jsonl.")
    ] = ClaimsFormat.table,
) -> None:
    """Each stored claim against the events and verdicts in the store (supported, contradicted
    or unverified, and why), the other sources that say the same, and the episodes and named
    events it belongs to with where sources disagree."""
    from ..answers.claims import claim_record, conflict_record, review_claims

    with Store(db, read_only=True) as store:
        review = review_claims(store, cc=cc)
    shown = review.about(app) if app else list(review.claims)
    ids = {c.id for c in shown}
    episodes = [e for e in review.comparison.episodes if ids & set(e.claims)]
    events = [e for e in review.comparison.events if ids & set(e.claims)]
    if fmt is ClaimsFormat.jsonl:
        out = sys.stdout.buffer
        for claim in shown:
            out.write(orjson.dumps(claim_record(claim, review)) + b"\n")
        for episode in episodes:
            out.write(orjson.dumps({
                "type": "episode", "country": episode.country, "first": _day(episode.first),
                "last": _last(episode.until), "claims": episode.claims,
                "subjects": episode.subjects, "starts": episode.starts, "ends": episode.ends,
                "conflicts": [conflict_record(c) for c in episode.conflicts],
            }) + b"\n")  # fmt: skip
        for event in events:
            out.write(orjson.dumps({
                "type": "event", "country": event.country, "name": event.name,
                "claims": event.claims, "conflicts": [conflict_record(c) for c in event.conflicts],
            }) + b"\n")  # fmt: skip
        return
    if not shown:
        errors.print("no claims match")
        return
    _print_claims(shown, review)
    for episode in episodes:
        console.print(
            f"\n[bold]episode[/] {episode.country} {_day(episode.first)} to "
            f"{_last(episode.until)}: {escape(', '.join(episode.subjects))} "
            f"({_count(episode.claims)}; starts {', '.join(episode.starts) or '-'}; "
            f"ends {', '.join(episode.ends) or '-'})"
        )
        _print_conflicts(episode.conflicts)
    for event in events:
        console.print(
            f"\n[bold]named event[/] {escape(event.name)} in {event.country} "
            f"({_count(event.claims)})"
        )
        _print_conflicts(event.conflicts)


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _last(until: datetime) -> str:
    """The last day of a span that ends before `until`."""
    return _day(until - timedelta(microseconds=1))


def _count(claims: tuple[str, ...]) -> str:
    return f"{len(claims)} claim{'s' * (len(claims) != 1)}"


def _print_claims(claims: list[Claim], review: Review) -> None:
    from ..answers.claims import says

    table = Table(title="claims", show_lines=True)
    for name in ("claim", "says", "evidence", "other sources"):
        table.add_column(name, overflow="fold")
    for claim in claims:
        check = review.checks[claim.id]
        table.add_row(
            escape(f"{claim.id}\n{claim.publisher or ''}"),
            escape(says(claim)),
            f"[{OUTCOME_STYLE[check.outcome]}]{check.outcome}[/]: {escape(check.reason)}",
            escape(review.comparison.corroboration[claim.id].reason),
        )  # fmt: skip
    console.print(table)


def _print_conflicts(conflicts: tuple[Conflict, ...]) -> None:
    if not conflicts:
        console.print("  sources agree")
    for conflict in conflicts:
        console.print(f"  [red]{conflict.kind}[/]: {escape(conflict.reason)}")
