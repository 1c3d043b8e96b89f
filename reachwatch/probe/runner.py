"""Run web_connectivity over many URLs: bounded concurrency, each measurement written as soon as
it is done, bad inputs reported with their reason and skipped."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from .._errors import InputError
from ._geo import IPDatabase, Network
from ._http import NetConfig, request_json
from .apps import measure_app
from .catalogue import Catalogue
from .helper import IP_PATH
from .web_connectivity import BadURL, ProbeContext, check_url, measure

MEASUREMENT_LIMIT = 120.0
"""However a measurement's steps add up (redirects, addresses), it stops after this."""


@dataclass(frozen=True)
class Skipped:
    """An input that was not measured, and why."""

    input: str
    reason: str


def read_test_list(path: Path) -> tuple[list[str], list[Skipped]]:
    """URLs of a Citizen Lab test list (CSV with a `url` column); broken rows are reported."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    rows = csv.DictReader(text.splitlines())
    if rows.fieldnames is None or "url" not in rows.fieldnames:
        raise InputError(f"{path}: not a test list (no `url` column in the header)")
    urls: list[str] = []
    skipped: list[Skipped] = []
    for number, row in enumerate(rows, start=2):
        url = (row.get("url") or "").strip()
        if not url:
            skipped.append(Skipped(f"{path.name}:{number}", "the row has no URL"))
        else:
            urls.append(url)
    return urls, skipped


def valid_targets(inputs: Iterable[str]) -> tuple[list[str], list[Skipped]]:
    """The inputs that can be measured (in order, once each) and the others with the reason."""
    urls: list[str] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()
    for raw in inputs:
        try:
            check_url(raw)
        except BadURL as exc:
            skipped.append(Skipped(raw, str(exc)))
            continue
        if raw not in seen:
            seen.add(raw)
            urls.append(raw)
    return urls, skipped


async def run(
    urls: list[str],
    context: ProbeContext,
    *,
    concurrency: int = 8,
    on_measurement: Callable[[dict[str, Any]], None],
    on_failure: Callable[[Skipped], None],
    limit: float = MEASUREMENT_LIMIT,
    run_id: str | None = None,
) -> None:
    """Measure every URL, at most `concurrency` at a time: hanging sites cost their timeout
    once each, in parallel, not one after the other."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(url: str) -> None:
        async with gate:
            try:
                on_measurement(await asyncio.wait_for(measure(url, context, run_id), limit))
            except TimeoutError:
                on_failure(Skipped(url, f"the measurement took over {limit:.0f}s and was stopped"))
            except BadURL as exc:
                on_failure(Skipped(url, str(exc)))

    await asyncio.gather(*(one(url) for url in urls))


async def measure_all(
    urls: list[str],
    apps: list[str],
    paths: list[ProbeContext],
    catalogue: Catalogue,
    ipdb: IPDatabase | None,
    *,
    concurrency: int = 8,
    on_measurement: Callable[[dict[str, Any]], None],
    on_failure: Callable[[Skipped], None],
    run_id: str | None = None,
) -> None:
    """Every URL and every app through each path in turn (direct first, then the tunnel, so a
    run's twins are measured minutes apart at most); apps alongside the URLs."""
    for path in paths:

        async def app(key: str, path: ProbeContext = path) -> None:
            on_measurement(await measure_app(key, path, catalogue, run_id, ipdb))

        await asyncio.gather(
            run(urls, path, concurrency=concurrency, on_measurement=on_measurement,
                on_failure=on_failure, run_id=run_id),
            *(app(key) for key in apps),
        )  # fmt: skip


async def locate(helper: str, net: NetConfig, database: IPDatabase) -> Network:
    """This network's country and AS, from the public address the test helper sees; the
    address itself goes no further than this function."""
    reply, failure = await request_json(urljoin(helper, IP_PATH), None, net)
    if failure is not None or not isinstance(reply, dict) or not isinstance(reply.get("ip"), str):
        raise InputError(f"the test helper did not tell our public address ({failure})")
    try:
        return database.lookup(reply["ip"])
    except ValueError:
        raise InputError("the test helper answered with something that is not an address") from None
