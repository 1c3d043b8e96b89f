"""The lab's "rest of the Internet", one process in its own namespace: every site and app
server of the plan (TLS from the lab's CA), STUN and TURN responders, QUIC servers, the
web_connectivity test helper, the collector the probes submit to, and the SOCKS5 proxy outside
every censor. The Internet's DNS runs beside it, in a process of its own (`_authority`).

Run as `python -m reachwatch.lab._internet CONFIG.json`; it prints `ready` once everything
listens and exits when its stdin closes (the lab's end of the pipe), so it never outlives the
run that started it."""

from __future__ import annotations

import asyncio
import os
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import orjson
from aioquic.asyncio.server import serve as quic_serve
from aioquic.quic.configuration import QuicConfiguration

from ..probe import NetConfig
from ..probe.helper import serve as helper_serve
from ._servers import (
    LabCA,
    StunResponder,
    collector_server,
    http_reply,
    read_head,
    serving,
    site_page,
    socks5_server,
    stdin_closed,
)


def _web(body: bytes) -> Any:
    """A site: any request gets its page."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if await read_head(reader, 10):
                # the head goes first, in its own TLS record, as servers flush it: a throttled
                # page then shows its status line before the body stalls
                head, _, _ = http_reply("200 OK", body).partition(b"\r\n\r\n")
                writer.write(head + b"\r\n\r\n")
                await writer.drain()
                writer.write(body)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    return handle


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A plain TCP or TLS app endpoint: it answers an HTTP request, else holds the line a
    while as a chat server would."""
    try:
        head = await read_head(reader, 10)
        if head:
            writer.write(http_reply("200 OK", b"ok"))
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def serve(config: dict[str, Any], stop: asyncio.Future[None]) -> None:
    loop = asyncio.get_running_loop()
    ca = LabCA(Path(config["ca_dir"]))
    async with AsyncExitStack() as stack:
        collected = stack.enter_context(open(config["collected"], "ab"))  # noqa: SIM115

        def keep(measurement: dict[str, Any]) -> None:
            # durable before the collector acknowledges it, as a collector must
            collected.write(orjson.dumps(measurement) + b"\n")
            collected.flush()
            os.fsync(collected.fileno())

        address, port = config["collector"]
        await stack.enter_async_context(collector_server(address, port, keep))
        # the proxy's own resolver sees the lab's zone, as a resolver outside the censor would
        names = {name: addresses[0] for name, addresses in config["zone"].items()}
        address, port = config["proxy"]
        await stack.enter_async_context(socks5_server(address, port, names=names))
        for service in config["services"]:
            kind, host, where = service["kind"], service["name"], service["address"]
            if kind in ("stun", "turn"):
                transport, _ = await loop.create_datagram_endpoint(
                    StunResponder, local_addr=(where, service["port"])
                )
                stack.callback(transport.close)
            elif kind == "quic":
                cert, key = ca.write_pair(Path(config["ca_dir"]), host)
                configuration = QuicConfiguration(is_client=False, alpn_protocols=["h3"])
                configuration.load_cert_chain(cert, key)
                server = await quic_serve(where, service["port"], configuration=configuration)
                stack.callback(server.close)
            else:
                tls = ca.server_context(host) if kind in ("https", "tls", "site-tls") else None
                handler = _web(site_page(host)) if kind.startswith("site") else _hold
                await stack.enter_async_context(serving(handler, where, service["port"], tls))
        started: asyncio.Future[int] = loop.create_future()
        net = NetConfig(resolver=f"{config['dns']}:53", ca_file=ca.ca_file, timeout=5)
        helper = asyncio.create_task(helper_serve(config["helper"], 80, net, started=started))
        stack.callback(helper.cancel)
        await started
        print("ready", flush=True)
        await stop


async def _main(path: str) -> None:
    config = orjson.loads(Path(path).read_bytes())
    await serve(config, asyncio.ensure_future(stdin_closed()))


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1]))
