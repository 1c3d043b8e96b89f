"""The web explorer: server-rendered pages over the same queries as the API and the CLI.

Home asks "Is ___ blocked in ___?"; the answer page shows the card, a timeline per network
(ok / blocked / error per day, drawn by uPlot, bundled: no network needed), the episodes, the
claims and the evidence; a country page lists every target's status; a measurement page shows
the raw evidence as text (bodies in measurements are hostile HTML: Jinja2 escapes everything,
and data for the charts is embedded as JSON that cannot close its script). Every table has a
CSV download."""

from __future__ import annotations

import csv
import io
import zlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from ..archive import RawLocation, read_raw
from ..store import Store
from ..store import status as status_query
from ..store._queries import VerdictFilter, aggregate_verdicts, search_verdicts

STATIC = Path(__file__).parent / "static"
SHOWN_LINE = 64 * 1024
SHOWN_TEXT = 2 * 1024 * 1024
"""How much of a raw measurement its page shows, per line and in all: a browser takes minutes
to lay out a 10 MB body (`?format=json` gives the measurement whole)."""
_pages = Environment(loader=PackageLoader("reachwatch.web", "templates"),
                     autoescape=select_autoescape(["html"]))  # fmt: skip


def _when(moment: object) -> str:
    """A moment as people read it, `2017-05-08 00:00 UTC`: the ISO form is for machines."""
    if moment is None or moment == "":
        return ""
    text = moment.isoformat() if isinstance(moment, datetime) else str(moment)
    day, _, time = text.partition("T") if "T" in text else text.partition(" ")
    return f"{day} {time[:5]} UTC" if time else day


_pages.filters["when"] = _when


def csv_response(rows: list[dict[str, Any]], name: str) -> PlainTextResponse:
    """A table as a CSV download (the pages' and the API's)."""
    out = io.StringIO()
    if rows:
        columns = list(dict.fromkeys(key for row in rows for key in row))  # every row's, in order
        writer = csv.DictWriter(out, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return PlainTextResponse(out.getvalue(), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}.csv"'})  # fmt: skip


def _shown(text: str) -> str:
    """`text` cut to what a browser lays out at once: each line to SHOWN_LINE characters, the
    whole to SHOWN_TEXT, each cut saying how much it left out."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if len(line) > SHOWN_LINE:
            lines[i] = f"{line[:SHOWN_LINE]} [cut: {len(line) - SHOWN_LINE:,} more characters]"
    shown = "\n".join(lines)
    if len(shown) > SHOWN_TEXT:
        shown = f"{shown[:SHOWN_TEXT]}\n[cut: {len(shown) - SHOWN_TEXT:,} more characters]"
    return shown


ANSWER_TABLES: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
    "networks": lambda card: [{"target": f["target"], **n} for f in card["features"]
                              for n in f["networks"]],
    "features": lambda card: [{k: v for k, v in f.items() if k != "networks"}
                              for f in card["features"]],
    "episodes": lambda card: card["episodes"],
    "claims": lambda card: card["claims"],
}  # fmt: skip
"""Each table of the answer page, as the rows of its CSV download."""


def _flat(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A row for a CSV cell each: lists joined with spaces, nested objects as their own
    columns (`check_outcome`, `tunnels_restored`), lists of objects as JSON."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}_"))
        elif isinstance(value, list | tuple):
            plain = all(not isinstance(v, dict | list | tuple) for v in value)
            out[name] = " ".join(map(str, value)) if plain else orjson.dumps(value).decode()
        else:
            out[name] = value
    return out


def _page(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_pages.get_template(name).render(**context))


def web_routes(use: Callable[[], AbstractContextManager[Store]]) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=HTMLResponse)
    def home() -> HTMLResponse:
        from ..probe.catalogue import default_catalogue

        return _page("home.html", apps=sorted(default_catalogue().apps))

    @router.get("/answer", response_model=None)
    def answer_page(
        subject: str, cc: str, at: str | None = None, format: str = "html",
        table: str = "networks",
    ) -> HTMLResponse | PlainTextResponse:  # fmt: skip
        from ..answers.card import answer, card_record
        from ..probe.catalogue import default_catalogue

        subject, cc = subject.strip().lower(), cc.strip().upper()
        if subject not in default_catalogue().apps and "." not in subject:
            raise HTTPException(422, f"{subject!r} is neither an app nor a domain")
        if len(cc) != 2 or not cc.isalpha():
            raise HTTPException(422, f"{cc!r} is not a country code (two letters)")
        moment = None
        if at:
            try:
                moment = datetime.fromisoformat(at).replace(tzinfo=UTC)
            except ValueError:
                raise HTTPException(422, f"{at!r} is not a date") from None
        with use() as store:
            card = answer(store, subject, cc, moment)
            timelines = {
                f.target: aggregate_verdicts(
                    store, VerdictFilter(cc=cc, target=f.target, direct_only=True,
                                         until=card.at.replace(tzinfo=None)),
                    "measurement_start_day", "probe_asn",
                ) for f in card.features
            }  # fmt: skip
        record = card_record(card)
        if format == "csv":
            if table not in ANSWER_TABLES:
                raise HTTPException(422, f"table {table!r}: one of {', '.join(ANSWER_TABLES)}")
            rows = ANSWER_TABLES[table](record)
            return csv_response([_flat(row) for row in rows], f"{subject}-{cc}-{table}")
        return _page("answer.html", card=record, timelines=timelines, at=at or "")

    @router.get("/country/{cc}", response_model=None)
    def country(cc: str, format: str = "html") -> HTMLResponse | PlainTextResponse:
        if len(cc) != 2 or not cc.isalpha():
            raise HTTPException(422, f"{cc!r} is not a country code (two letters)")
        with use() as store:
            rows = [asdict(r) for r in status_query(store, cc=cc)]
        if format == "csv":
            return csv_response(rows, f"status-{cc.upper()}")
        return _page("country.html", cc=cc.upper(), rows=rows)

    @router.get("/measurement/{uid}", response_model=None)
    def measurement(uid: str, format: str = "html") -> Response:
        with use() as store:
            rows, total = search_verdicts(store, VerdictFilter(uid=uid), limit=1000)
            where = store.execute(
                "SELECT raw_path, raw_offset, raw_index FROM measurements "
                "WHERE measurement_uid = ?", [uid]).fetchone()  # fmt: skip
            raw = None
            if where:
                try:
                    raw = read_raw(store.archive_root, RawLocation(*where))
                except (OSError, IndexError, zlib.error):  # the page still shows the verdicts
                    raw = None
        if not total:
            raise HTTPException(404, f"no measurement {uid!r}")
        if format == "csv":
            return csv_response(rows, uid)
        if format == "json" and raw:  # a download: as received, whole
            return Response(raw, media_type="application/json", headers={
                "Content-Disposition": 'attachment; filename="measurement.json"'})  # fmt: skip
        pretty = "(the raw measurement is not in the archive)"
        if raw:
            pretty = _shown(orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2).decode())
        return _page("measurement.html", uid=uid, rows=rows, raw=pretty)

    return router
