"""The lab's authoritative DNS (also the public resolver), a process of its own in the
Internet's namespace. It shared a process with the sites, the apps' servers and the test helper
once; that process is busy while probes measure, and a median answer took 0.6 s to come (2.8 s
at worst, against the probe's 3 s), so lookups timed out where the scenario blocks nothing.

Run as `python -m reachwatch.lab._authority CONFIG.json` (the Internet's config: its `dns`
address and its `zone`); it prints `ready` once it listens and exits when its stdin closes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import cast

import orjson

from ._servers import Zone, dns_answer, dns_endpoint, stdin_closed


class _Authority(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = dns_answer(data, self.zone)
        except Exception:
            return
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def _main(path: str) -> None:
    config = orjson.loads(Path(path).read_bytes())
    zone: Zone = {name: list(addresses) for name, addresses in config["zone"].items()}
    transport = await dns_endpoint(lambda: _Authority(zone), config["dns"])
    print("ready", flush=True)
    await stdin_closed()
    transport.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1]))
