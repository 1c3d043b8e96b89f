"""`reachwatch events` and `reachwatch answer`: the question people ask, answered from the
store's verdicts."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.table import Table

from .. import ReachwatchError
from ..store import DEFAULT_DB, Store
from ._common import CcFilter, DbOption, TargetFilter, console, errors

if TYPE_CHECKING:
    from ..answers.card import Card


class EventsFormat(StrEnum):
    table = "table"
    jsonl = "jsonl"


class CardFormat(StrEnum):
    md = "md"
    json = "json"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def events(
    db: DbOption = Path(DEFAULT_DB),
    cc: CcFilter = None,
    target: TargetFilter = None,
    fmt: Annotated[EventsFormat, typer.Option("--format", help="table or jsonl.")] = (
        EventsFormat.table
    ),
) -> None:
    """Blocking events: per target, when blocking started and ended and on which networks
    (changes that coincide on several networks are one event)."""
    from ..answers import event_record, events_for

    with Store(db, read_only=True) as store:
        found = events_for(store, cc=cc, targets=[target] if target else None)
    if fmt is EventsFormat.jsonl:
        for event in found:
            sys.stdout.buffer.write(orjson.dumps(event_record(event)) + b"\n")
        return
    table = Table(title=f"events{' in ' + cc.upper() if cc else ''}")
    for name in ("cc", "target", "start", "end", "networks", "technique", "confidence", "msmts"):
        table.add_column(name, overflow="fold")
    for event in found:
        start = _when(event.start)
        if event.start_after:
            start += f"\n(after {_when(event.start_after)})"
        end = "ongoing" if event.ongoing else _when(event.end)
        table.add_row(event.cc, event.target, start,
                      end + f"\n(last blocked {_when(event.end_after)})",
                      "\n".join(event.networks), event.technique or "",
                      f"{event.confidence:.2f}", str(len(event.measurements)))  # fmt: skip
    console.print(table)
    if not found:
        errors.print("no events: nothing measured was blocked for long enough to tell")


def answer(
    subject: Annotated[str, typer.Argument(help="An app (skype, whatsapp...) or a domain.")],
    cc: Annotated[str, typer.Option(help="Country code, e.g. AZ.")],
    db: DbOption = Path(DEFAULT_DB),
    at: Annotated[
        str | None, typer.Option(help="Answer as of this date or time (UTC; default: now).")
    ] = None,
    fmt: Annotated[CardFormat, typer.Option("--format", help="md or json.")] = CardFormat.md,
) -> None:
    """Is it blocked? Status now per network and feature, since when, how, whether a tunnel
    restored it, earlier episodes, and the measurements behind it."""
    from ..answers.card import answer as make_card
    from ..answers.card import card_record
    from ..probe.catalogue import default_catalogue

    apps = default_catalogue().apps
    if subject not in apps and "." not in subject:
        raise ReachwatchError(f"{subject!r} is neither an app of the catalogue "
                              f"({', '.join(sorted(apps))}) nor a domain")  # fmt: skip
    if len(cc) != 2 or not cc.isalpha():
        raise ReachwatchError(f"--cc {cc!r}: a country is two letters (ISO 3166), e.g. AZ")
    moment = _moment(at) if at else None
    with Store(db, read_only=True) as store:
        card = make_card(store, subject, cc, moment)
    if fmt is CardFormat.json:
        sys.stdout.buffer.write(orjson.dumps(card_record(card)) + b"\n")
        return
    print(card_markdown(card))


def _moment(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ReachwatchError(f"--at {text!r}: not a date (YYYY-MM-DD[THH:MM])") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _row(*cells: str) -> str:
    """A markdown table row; what a source wrote cannot break the table."""
    return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def card_markdown(card: Card) -> str:
    """The card for people: the seed article's table, done right."""
    from ..answers.card import FRESH_DAYS, MIN_RECENT

    name = card.subject
    lines = [f"# Is {name} blocked in {card.cc}? **{card.status}**", ""]
    if not card.measured:
        how = (f"`reachwatch probe --app {name}`" if "." not in name
               else f"`reachwatch probe https://{name}/`")  # fmt: skip
        lines += [
            f"No measurements of {name} in {card.cc} up to {_when(card.at)} UTC: there is "
            f"nothing to answer from. Measure it from a network in {card.cc} with {how}, then "
            "`reachwatch ingest measurements.jsonl` (or run it through a lab scenario).",
        ]
        return "\n".join(lines) + "\n"
    lines += [
        f"As of {_when(card.at)} UTC, from {card.measured} direct measurements on "
        f"{len(card.networks)} networks ({', '.join(card.networks)}).",
        "",
        "| feature | status | since | how | newest evidence | through a VPN or proxy |",
        "|---|---|---|---|---|---|",
    ]
    for feature in card.features:
        detail = "; ".join(f"{n.status} on {n.network}" for n in feature.networks)
        tunnels = ", ".join(f"{k} x{v}" for k, v in sorted(feature.tunnels.items()))
        lines.append(f"| `{feature.target}` | {feature.status} ({detail}) | "
                     f"{_when(feature.since)} | {feature.technique or ''} | "
                     f"{_when(feature.newest)} | {tunnels} |")  # fmt: skip
    for missing in card.unmeasured:
        lines.append(f"| `{missing}` | unknown (never measured here) | | | | |")
    lines += ["", "## Per network", "", "| feature | network | status | why | measurements |",
              "|---|---|---|---|---|"]  # fmt: skip
    for feature in card.features:
        for network in feature.networks:
            ids = ", ".join(network.measurements[:3])
            more = len(network.measurements) - 3
            ids += f" and {more} more" if more > 0 else ""
            lines.append(f"| `{feature.target}` | {network.network} | {network.status} | "
                         f"{network.why} | {ids} |")  # fmt: skip
    lines += ["", "## Episodes", ""]
    for event in card.episodes:
        end = "ongoing" if event.ongoing else f"to {_when(event.end)}"
        lines.append(
            f"- `{event.target}`: from {_when(event.start)} (last ok {_when(event.start_after)})"
            f" {end}, on {', '.join(event.networks)}, {event.technique or 'technique unknown'}, "
            f"confidence {event.confidence:.2f}, {len(event.measurements)} blocked measurements"
        )
    if not card.episodes:
        lines.append("None in the measurements.")
    if card.claims:
        lines += ["", "## What sources claim, and what the evidence says", "",
                  "| source | says | evidence | other sources |", "|---|---|---|---|"]  # fmt: skip
        for claim in card.claims:
            check = claim["check"]
            quote = f' "{claim["quote"]}"' if claim.get("quote") else ""
            conflicts = "; ".join(c["reason"] for c in claim["conflicts"])
            others = claim["corroboration"] + (f" Conflicts: {conflicts}" if conflicts else "")
            lines.append(
                _row(f"{claim['publisher'] or claim['id']} ({claim['id']})",
                     f"{claim['says']}{quote}", f"**{check['outcome']}**: {check['reason']}",
                     others)
            )  # fmt: skip
    lines += [
        "",
        f"A network's status is `unknown` when it has fewer than {MIN_RECENT} measurements in "
        f"the {FRESH_DAYS} days before the moment asked about: reachwatch does not guess.",
    ]
    return "\n".join(lines) + "\n"
