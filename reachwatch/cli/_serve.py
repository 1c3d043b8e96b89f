"""`reachwatch serve`: the API over the store, for people and machines to read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import ReachwatchError
from ..store import DEFAULT_DB
from ._common import DbOption, errors


def serve(
    db: DbOption = Path(DEFAULT_DB),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    rate: Annotated[
        int, typer.Option(min=1, help="Submissions a client may make to the collector a minute.")
    ] = 600,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="REACHWATCH_TOKEN",
            help="Token for writing (claims, webhooks); without one, writing is off.",
        ),
    ] = None,
    alert_interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between webhook rounds.")
    ] = 30.0,
) -> None:
    """Serve the public read API (/api/v1/..., OpenAPI at /docs) and the collector (OONI's
    submission flow at /report) over the store."""
    import uvicorn

    from ..api import create_app

    app = create_app(db, rate, token, alert_interval)
    where = f"http://{host}:{port}/"
    errors.print(f"reachwatch on {where}: API under /api/v1/, docs at /docs, collector at /report")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    except OSError as exc:
        raise ReachwatchError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
