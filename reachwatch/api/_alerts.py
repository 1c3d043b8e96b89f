"""Alert routes: Atom feeds (public), webhooks and claims (writing needs the token), and the
background sender that fires webhooks as events start and end."""

from __future__ import annotations

import hmac
import sys
import tempfile
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from .._errors import InputError
from ..store import Store

Auth = Annotated[str | None, Header(description="Bearer TOKEN, for writing")]


class WebhookIn(BaseModel):
    url: str = Field(pattern=r"^https?://", max_length=2000)
    probe_cc: str | None = Field(default=None, min_length=2, max_length=2)
    target: str | None = Field(default=None, max_length=2000)


def check_token(expected: str | None, authorization: str | None) -> None:
    """Writing needs `Authorization: Bearer TOKEN`, compared in constant time."""
    if expected is None:
        raise HTTPException(403, "writing is off: the server was started without a token")
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(401, "a valid token is needed (Authorization: Bearer TOKEN)",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip


class Sender:
    """Fires webhooks in a thread of its own: every `interval` seconds, and soon after new
    measurements came in (`nudge`)."""

    def __init__(self, use: Callable[[], AbstractContextManager[Store]], interval: float) -> None:
        self.use = use
        self.interval = interval
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def _run(self) -> None:
        from ..answers.alerts import deliver

        while not self.stopping.is_set():
            self.wake.wait(self.interval)
            self.wake.clear()
            if not self.stopping.is_set():
                try:
                    deliver(self.use)
                except Exception as exc:  # the next round tries again
                    print(f"webhooks: this round failed: {exc}", file=sys.stderr)

    def nudge(self) -> None:
        self.wake.set()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self.thread.join(15)


def alert_routes(use: Callable[[], AbstractContextManager[Store]], token: str | None) -> APIRouter:
    router = APIRouter()

    @router.get("/feeds/{cc}.atom", tags=["alerts"])
    def country_feed(cc: str, request: Request) -> Response:
        """Event starts and ends in a country, as Atom."""
        return _feed(cc, None, str(request.url))

    @router.get("/feeds/{cc}/{target:path}.atom", tags=["alerts"])
    def target_feed(cc: str, target: str, request: Request) -> Response:
        """Event starts and ends of one target in a country, as Atom."""
        return _feed(cc, target, str(request.url))

    def _feed(cc: str, target: str | None, url: str) -> Response:
        from ..answers import events_for
        from ..answers.alerts import atom_feed

        if len(cc) != 2 or not cc.isalpha():
            raise HTTPException(422, f"{cc!r} is not a country code")
        with use() as store:
            events = events_for(store, cc=cc, targets=[target] if target else None)
        title = f"reachwatch: {target + ' in ' if target else ''}{cc.upper()}"
        return Response(atom_feed(events, title, url), media_type="application/atom+xml")

    @router.post("/api/v1/webhooks", status_code=201, tags=["alerts"])
    def add(hook: WebhookIn, authorization: Auth = None) -> dict[str, Any]:
        """Register a webhook (needs the token): it is sent each event's start and end once,
        signed with the secret returned here (header X-Reachwatch-Signature)."""
        from ..answers.alerts import add_webhook

        check_token(token, authorization)
        with use() as store:
            made = add_webhook(store, hook.url, hook.probe_cc, hook.target)
        return {"id": made.id, "secret": made.secret, "url": made.url,
                "probe_cc": made.probe_cc, "target": made.target}  # fmt: skip

    @router.get("/api/v1/webhooks", tags=["alerts"])
    def listing(authorization: Auth = None) -> dict[str, Any]:
        from ..answers.alerts import webhooks

        check_token(token, authorization)
        with use() as store:
            found = webhooks(store)
        return {"results": [{"id": h.id, "url": h.url, "probe_cc": h.probe_cc,
                             "target": h.target} for h in found]}  # fmt: skip

    @router.delete("/api/v1/webhooks/{hook_id}", tags=["alerts"])
    def remove(hook_id: str, authorization: Auth = None) -> dict[str, Any]:
        from ..answers.alerts import remove_webhook

        check_token(token, authorization)
        with use() as store:
            if not remove_webhook(store, hook_id):
                raise HTTPException(404, f"no webhook {hook_id!r}")
        return {}

    @router.post("/api/v1/claims", tags=["claims"])
    async def add_claims_file(request: Request, authorization: Auth = None) -> dict[str, Any]:
        """Add a claims file (its YAML as the body; needs the token); refused whole, with the
        reason, if any claim is wrong."""
        from ..answers.claims import load_claims
        from ..store import add_claims

        check_token(token, authorization)
        body = await request.body()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "claims.yaml"
            path.write_bytes(body)
            try:
                claims = load_claims(path)
            except InputError as exc:
                raise HTTPException(422, str(exc).replace(str(path), "the body")) from None
        with use() as store:
            added = add_claims(store, [c.record() for c in claims], "api")
        return {"added": added.added, "updated": added.updated, "unchanged": added.unchanged}

    return router
