"""The collector: OONI's submission flow (open a report, submit measurements to it, close it),
so OONI's probes and `reachwatch probe --collector` can send here. A submission is
acknowledged only once the measurement is in the raw archive (synced to disk) and the store;
what cannot be taken gets a 4xx with the reason and is not kept: too large (413), too many
from one client in a minute (429), not JSON or not a measurement (400), an unknown report (404);
what cannot be stored now (a full disk) gets 503 with the reason, and is not acknowledged.
"""

from __future__ import annotations

import asyncio
import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request

from .._errors import InvalidMeasurement, StoreError
from ..archive import MAX_RECORD_BYTES, RawRecord
from ..pipeline import Intake
from ..store import Store

RATE_PER_MINUTE = 600
"""Submissions a client (an address) may make in a minute; more get 429 until it slows."""
MAX_OPEN_REPORTS = 10_000
MAX_GROUP = 500
"""Submissions committed together at most (one sync and one transaction for all)."""


class _Rate:
    """A sliding minute of submission times per client."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.seen: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def allow(self, client: str) -> bool:
        now = time.monotonic()
        with self.lock:
            times = self.seen.setdefault(client, deque())
            while times and now - times[0] > 60:
                times.popleft()
            if len(times) >= self.per_minute:
                return False
            times.append(now)
            return True


class _Committer:
    """Group commit: submissions that arrive while a commit is running are archived and stored
    together in the next (one sync, one transaction), and each is answered once its commit is
    done. Throughput grows with the number of probes; no submission waits for more than the
    commit before its own."""

    def __init__(
        self, use: Callable[[], AbstractContextManager[Store]], on_stored: Callable[[], None]
    ) -> None:
        self.use = use
        self.on_stored = on_stored
        self.waiting: queue.Queue[tuple[RawRecord, Future[str]] | None] = queue.Queue()
        self.intake: Intake | None = None
        self.thread = threading.Thread(target=self._run, name="collector", daemon=True)
        self.thread.start()

    def submit(self, record: RawRecord) -> Future[str]:
        done: Future[str] = Future()
        self.waiting.put((record, done))
        return done

    def _run(self) -> None:
        while (first := self.waiting.get()) is not None:
            items = [first]
            while len(items) < MAX_GROUP:
                try:
                    item = self.waiting.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self.waiting.put(None)  # stop after this commit
                    break
                items.append(item)
            self._commit(items)

    def _commit(self, items: list[tuple[RawRecord, Future[str]]]) -> None:
        try:
            with self.use() as store:
                if self.intake is None:
                    self.intake = Intake(store)
                results = self.intake.take([record for record, _ in items])
        except Exception as exc:
            for _, done in items:
                done.set_exception(exc)
            return
        for (_, done), result in zip(items, results, strict=True):
            if isinstance(result, InvalidMeasurement):
                done.set_exception(result)
            else:
                done.set_result(result[0])
        if any(isinstance(r, tuple) and r[1] for r in results):
            self.on_stored()

    def stop(self) -> None:
        self.waiting.put(None)
        self.thread.join(60)
        if self.intake is not None:
            with self.use():
                self.intake.close("collector")


async def _body(request: Request) -> Any:
    """The request's JSON, within the size limit."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_RECORD_BYTES:
        raise HTTPException(413, f"the body is over {MAX_RECORD_BYTES} bytes")
    raw = await request.body()
    if len(raw) > MAX_RECORD_BYTES:
        raise HTTPException(413, f"the body is over {MAX_RECORD_BYTES} bytes")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, f"the body is not JSON: {exc}") from None


def collector_routes(
    use: Callable[[], AbstractContextManager[Store]],
    per_minute: int = RATE_PER_MINUTE,
    on_stored: Callable[[], None] = lambda: None,
) -> tuple[APIRouter, Callable[[], None]]:
    """The collector's routes over the store `use` lends (`on_stored` is told of each new
    measurement), and what to call at shutdown."""
    router = APIRouter(tags=["collector"])
    reports: dict[str, dict[str, Any]] = {}
    rate = _Rate(per_minute)
    committer = _Committer(use, on_stored)

    def limit(request: Request) -> None:
        client = request.client.host if request.client else "unknown"
        if not rate.allow(client):
            raise HTTPException(429, f"more than {per_minute} submissions a minute from {client}",
                                headers={"Retry-After": "60"})  # fmt: skip

    @router.post("/report")
    async def open_report(request: Request) -> dict[str, Any]:
        """Open a report for one test on one network (OONI's probe-services flow)."""
        limit(request)
        meta = await _body(request)
        if not isinstance(meta, dict) or not meta.get("test_name"):
            raise HTTPException(400, "a report needs a JSON object with its test_name")
        cc = str(meta.get("probe_cc") or "")
        if len(cc) != 2 or not cc.isalpha():
            raise HTTPException(400, f"probe_cc {cc!r} is not a country code")
        if len(reports) >= MAX_OPEN_REPORTS:
            raise HTTPException(503, "too many open reports: close some first")
        now = datetime.now(UTC)
        report_id = (f"{now:%Y%m%dT%H%M%SZ}_{meta['test_name']}_{cc.upper()}_"
                     f"{meta.get('probe_asn', 'AS0')}_n1_{secrets.token_hex(8)}")  # fmt: skip
        reports[report_id] = {"test_name": meta["test_name"], "probe_cc": cc.upper()}
        return {"report_id": report_id, "supported_formats": ["json"]}

    @router.post("/report/{report_id}")
    async def submit(report_id: str, request: Request) -> dict[str, Any]:
        """One measurement of the report; acknowledged once archived and stored."""
        limit(request)
        report = reports.get(report_id)
        if report is None:
            raise HTTPException(404, f"no open report {report_id!r}")
        body = await _body(request)
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, dict):
            raise HTTPException(400, 'a submission is {"format": "json", "content": {...}}')
        if content.get("test_name") != report["test_name"]:
            raise HTTPException(400, f"the measurement's test_name {content.get('test_name')!r} "
                                f"is not the report's {report['test_name']!r}")  # fmt: skip
        client = request.client.host if request.client else "unknown"
        record = RawRecord("collector", f"{client}/{report_id}", orjson.dumps(content))
        try:
            uid = await asyncio.wrap_future(committer.submit(record))
        except InvalidMeasurement as exc:
            raise HTTPException(
                400, f"not a measurement reachwatch can store: {exc.reason}"
            ) from None
        except StoreError as exc:  # not the probe's fault: it keeps the measurement, tries later
            raise HTTPException(503, f"cannot store measurements now: {exc}",
                                headers={"Retry-After": "60"}) from None  # fmt: skip
        return {"measurement_uid": uid}

    @router.post("/report/{report_id}/close")
    async def close_report(report_id: str, request: Request) -> dict[str, Any]:
        if reports.pop(report_id, None) is None:
            raise HTTPException(404, f"no open report {report_id!r}")
        return {}

    def shutdown() -> None:
        committer.stop()

    return router, shutdown
