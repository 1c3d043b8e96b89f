"""DNS over HTTPS (RFC 8484): what a resolver outside the censor's reach answers, through a
channel the censor cannot read or forge."""

from __future__ import annotations

from typing import Any

import dns.message

from ._dns import read_reply, record_query
from ._failures import failure_of
from ._http import NetConfig, connect, http_request
from ._trace import Trace

DOH_HEADERS = [("Content-Type", "application/dns-message"), ("Accept", "application/dns-message")]


async def lookup_doh(
    trace: Trace, host: str, url: str, net: NetConfig, *, query_type: str = "A"
) -> tuple[list[str], str | None]:
    """Ask the DoH resolver at `url`; one `queries` entry (engine `doh`) in `trace`. The HTTPS
    exchange that carries it is kept apart, so a site's fetch stays the only one recorded."""
    tid, t0 = trace.transaction(), trace.now()
    transport = Trace(trace.zero)
    addrs: list[str] = []
    answers: list[dict[str, Any]] = []
    conn, failure = await connect(transport, url, net)
    if conn is not None:
        try:
            query = dns.message.make_query(host, query_type)
            query.id = 0  # RFC 8484: a fixed id keeps replies cacheable
            response, failure = await http_request(
                transport, conn, url, method="POST", body=query.to_wire(),
                headers=DOH_HEADERS, timeout=net.timeout,
            )  # fmt: skip
            if failure is None and response.status != 200:
                failure = "dns_server_misbehaving"
            elif failure is None:
                addrs, answers, failure = read_reply(dns.message.from_wire(response.body))
        except Exception as exc:
            failure = failure_of(exc)
        finally:
            await conn.close()
    record_query(trace, host=host, engine="doh", query_type=query_type, resolver=url,
                 answers=answers, failure=failure, t0=t0, tid=tid)  # fmt: skip
    return addrs, failure
