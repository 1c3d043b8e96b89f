"""DNS lookups as a probe makes them: the system resolver (getaddrinfo) and plain DNS over UDP.

Both record one OONI `queries` entry per lookup, answers or failure, and both are bounded by a
timeout: a resolver that never answers costs `timeout` seconds, not the run.
"""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dns.asyncquery
import dns.message
import dns.rdatatype

from ._failures import failure_of, rcode_failure
from ._trace import Trace

DNS_TIMEOUT = 5.0
RESOLVER_THREADS = 64  # system lookups at once: each holds a thread for as long as it waits

_threads = ThreadPoolExecutor(RESOLVER_THREADS, thread_name_prefix="getaddrinfo")


def record_query(
    trace: Trace,
    *,
    host: str,
    engine: str,
    query_type: str,
    resolver: str,
    answers: list[dict[str, Any]],
    failure: str | None,
    t0: float,
    tid: int,
) -> None:
    trace.queries.append(
        {
            "answers": answers or None,
            "engine": engine,
            "failure": failure,
            "hostname": host,
            "query_type": query_type,
            "resolver_address": resolver,
            "resolver_hostname": None,
            "resolver_port": None,
            "t0": t0,
            "t": trace.now(),
            "transaction_id": tid,
        }
    )


def read_reply(reply: dns.message.Message) -> tuple[list[str], list[dict[str, Any]], str | None]:
    """Addresses, OONI answers and failure of a DNS reply, whatever carried it."""
    failure = rcode_failure(reply.rcode())
    addrs: list[str] = []
    answers: list[dict[str, Any]] = []
    for rrset in reply.answer:
        for item in rrset:
            if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                addrs.append(item.address)
                answers.append(_answer(item.address))
            elif rrset.rdtype == dns.rdatatype.CNAME:
                answers.append({"answer_type": "CNAME", "hostname": str(item.target)})
    if failure is None and not addrs:
        failure = "dns_no_answer"
    return addrs, answers, failure


def _settle(started: asyncio.Future[None]) -> None:
    if not started.done():
        started.set_result(None)


def _answer(address: str) -> dict[str, Any]:
    if ":" in address:
        return {"answer_type": "AAAA", "ipv6": address, "ttl": None}
    return {"answer_type": "A", "ipv4": address, "ttl": None}


async def lookup_getaddrinfo(
    trace: Trace, host: str, *, timeout: float = DNS_TIMEOUT
) -> tuple[list[str], str | None]:
    """The addresses the system resolver gives for `host`, as a browser would get them."""
    tid = trace.transaction()
    loop = asyncio.get_running_loop()
    started = loop.create_future()

    def call() -> list[Any]:
        loop.call_soon_threadsafe(_settle, started)
        return socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)

    infos = loop.run_in_executor(_threads, call)
    await started  # a lookup waiting for a thread is the probe's delay, not the network's
    t0 = trace.now()
    addrs: list[str] = []
    failure = None
    try:
        for info in await asyncio.wait_for(infos, timeout):
            address = str(info[4][0])
            if address not in addrs:
                addrs.append(address)
        if not addrs:
            failure = "dns_no_answer"
    except Exception as exc:
        failure = failure_of(exc)
    record_query(trace, host=host, engine="getaddrinfo", query_type="ANY", resolver="",
           answers=[_answer(a) for a in addrs], failure=failure, t0=t0, tid=tid)  # fmt: skip
    return addrs, failure


async def lookup_udp(
    trace: Trace,
    host: str,
    resolver: str,
    *,
    query_type: str = "A",
    timeout: float = DNS_TIMEOUT,
    source: str | None = None,
) -> tuple[list[str], str | None]:
    """Ask `resolver` ("ip:port") directly over UDP, from the `source` address if given: what an
    outside resolver's answer looks like on this network (and whether someone injects one)."""
    ip, _, port = resolver.rpartition(":")
    tid, t0 = trace.transaction(), trace.now()
    addrs: list[str] = []
    answers: list[dict[str, Any]] = []
    failure = None
    try:
        query = dns.message.make_query(host, query_type)
        reply = await dns.asyncquery.udp(
            query, ip.strip("[]"), timeout=timeout, port=int(port), source=source
        )
        addrs, answers, failure = read_reply(reply)
    except Exception as exc:
        failure = failure_of(exc)
    record_query(trace, host=host, engine="udp", query_type=query_type, resolver=resolver,
           answers=answers, failure=failure, t0=t0, tid=tid)  # fmt: skip
    return addrs, failure
