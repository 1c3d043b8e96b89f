"""The probe against local servers: concurrency against a sequential run, and CPU per measurement.

    python -m bench probe [--urls 200] [--concurrency 50] [--hanging 0.15] [--timeout 1]

Loopback only: a page server, a server that resets, one that never answers, a resolver and a
test helper, all in this process; every measurement is a full web_connectivity (DNS, control,
TCP, HTTP). The hanging share shows what concurrency buys: each hang costs one timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import time
from contextlib import AsyncExitStack
from typing import Any

from reachwatch.probe import NetConfig
from reachwatch.probe.helper import serve
from reachwatch.probe.runner import Skipped, run
from reachwatch.probe.web_connectivity import ProbeContext
from tests.netlab import LOOPBACK, dns_server, web_server


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure_all(urls: list[str], context: ProbeContext, concurrency: int) -> int:
    done: list[dict[str, Any]] = []
    failed: list[Skipped] = []
    await run(urls, context, concurrency=concurrency, on_measurement=done.append,
              on_failure=failed.append)  # fmt: skip
    return len(done)


async def _bench(count: int, concurrency: int, hanging: float, timeout: float) -> None:
    async with AsyncExitStack() as stack:
        ports = {
            mode: await stack.enter_async_context(web_server(mode))
            for mode in ("page", "reset", "hang")
        }
        resolver = await stack.enter_async_context(dns_server({"example.test": [LOOPBACK]}))
        started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        net = NetConfig(resolver=resolver, timeout=timeout)
        helper = asyncio.create_task(serve(LOOPBACK, 0, net, started=started))
        context = ProbeContext(helper=f"http://{LOOPBACK}:{await started}/", net=net)
        rng = random.Random(3)
        urls = []
        for i in range(count):
            mode = "hang" if rng.random() < hanging else rng.choice(["page", "page", "reset"])
            urls.append(f"http://example.test:{ports[mode]}/{i}")
        hangs = sum(f":{ports['hang']}/" in u for u in urls)

        figures = {}
        for label, width in (("concurrent", concurrency), ("sequential", 1)):
            wall, cpu = time.perf_counter(), _cpu()
            measured = await _measure_all(urls, context, width)
            figures[label] = (time.perf_counter() - wall, _cpu() - cpu, measured)
        helper.cancel()

    (c_wall, c_cpu, c_n), (s_wall, s_cpu, s_n) = figures["concurrent"], figures["sequential"]
    rows = [
        ("URLs", f"{count} ({hangs} never answer; timeout {timeout:g}s)"),
        (f"concurrent ({concurrency})", f"{c_wall:.2f}s wall, {c_n} measurements"),
        ("sequential", f"{s_wall:.2f}s wall, {s_n} measurements"),
        ("speed-up", f"{s_wall / c_wall:.1f}x"),
        ("CPU per measurement", f"{c_cpu / c_n * 1000:.2f} ms concurrent, "
                                f"{s_cpu / s_n * 1000:.2f} ms sequential"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench probe")
    parser.add_argument("--urls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--hanging", type=float, default=0.15, help="share that never answers")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds per operation")
    args = parser.parse_args(argv)
    asyncio.run(_bench(args.urls, args.concurrency, args.hanging, args.timeout))


if __name__ == "__main__":
    main()
