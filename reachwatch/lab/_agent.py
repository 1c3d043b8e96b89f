"""The probe on a lab host: the real probe code (web_connectivity and the app experiments),
run inside the probe host's namespace, one run per simulated time it is told.

Run as `python -m reachwatch.lab._agent CONFIG.json`. Each stdin line is
`{"runs": [times], "in_turn": [urls]}`: the agent measures every target at each of those
simulated times (directly, and through the outside proxy when the scenario asks), fetching the
`in_turn` sites one run at a time, appends the measurements to its output file, submits them to
the lab's collector, and answers with the counts. It exits when stdin closes."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ..probe import NetConfig
from ..probe._geo import IPDatabase
from ..probe._proxy import parse_proxy
from ..probe.catalogue import load_catalogue
from ..probe.collector import Collector, Submitted
from ..probe.runner import Skipped, measure_all
from ..probe.web_connectivity import ProbeContext

PARALLEL_RUNS = 24  # simulated runs measured at once: most of a run is waiting on timeouts


async def _main(path: str) -> None:
    config = orjson.loads(Path(path).read_bytes())
    catalogue = load_catalogue(Path(config["catalogue"]))
    ipdb = IPDatabase(Path(config["ipdb"]))
    net = NetConfig(ca_file=config["ca_file"], timeout=config["timeout"])
    base = ProbeContext(
        probe_cc=config["cc"], probe_asn=config["asn"], network_name=config["network"],
        helper=config["helper"], net=net,
    )  # fmt: skip
    tunnel = replace(net, via=parse_proxy(config["proxy"])) if config["proxy"] else None
    gate = asyncio.Semaphore(PARALLEL_RUNS)
    url_locks = {url: asyncio.Lock() for url in config["urls"]}
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    with open(config["output"], "ab") as out:

        async def one(at: datetime) -> tuple[int, int, Submitted]:
            measured: list[dict[str, Any]] = []
            failures = 0

            def keep(measurement: dict[str, Any]) -> None:
                out.write(orjson.dumps(measurement) + b"\n")  # kept first, as the probe does
                measured.append(measurement)

            def failed(item: Skipped) -> None:
                nonlocal failures
                print(f"not measured {item.input}: {item.reason}", file=sys.stderr)
                failures += 1

            async with gate:
                offset = (at - datetime.now(UTC)).total_seconds()
                direct = replace(base, clock_offset=offset)
                paths = [direct] + ([replace(direct, net=tunnel)] if tunnel else [])
                run_id = uuid.uuid4().hex if tunnel else None

                async def site(url: str) -> None:
                    # simulated runs overlap in real time: two fetches of a throttled site would
                    # share (and halve) its bucket, so those take turns
                    async with url_locks[url] if url in in_turn else contextlib.nullcontext():
                        await measure_all([url], [], paths, catalogue, ipdb, on_measurement=keep,
                                          on_failure=failed, run_id=run_id)  # fmt: skip

                await asyncio.gather(
                    measure_all([], config["apps"], paths, catalogue, ipdb, on_measurement=keep,
                                on_failure=failed, run_id=run_id),
                    *(site(url) for url in config["urls"]),
                )  # fmt: skip
            submitted = await Collector(config["collector"], net).submit_all(measured)
            return len(measured), failures, submitted

        while line := await reader.readline():
            message = orjson.loads(line)
            runs = [datetime.fromisoformat(t) for t in message["runs"]]
            in_turn = set(message.get("in_turn", ()))
            results = await asyncio.gather(*(one(at) for at in runs))
            out.flush()
            reply = {
                "measured": sum(r[0] for r in results),
                "failed": sum(r[1] for r in results),
                "acknowledged": sum(r[2].acknowledged for r in results),
                "refused": [f for r in results for f in r[2].failures][:3],
            }
            print(orjson.dumps(reply).decode(), flush=True)


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1]))
