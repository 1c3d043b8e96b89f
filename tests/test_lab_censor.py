"""The lab censor's resolver, without namespaces: what it lies about, what it forwards once."""

from __future__ import annotations

import asyncio
from typing import Any

import dns.asyncquery
import dns.exception
import dns.message
import dns.rdatatype
import dns.rrset
import pytest

from reachwatch.lab._censor import UPSTREAM_TRIES, Censor
from reachwatch.lab._plan import BOGON


def _ask(censor: Censor, name: str, kind: str = "A", techniques: tuple[str, ...] = ()) -> Any:
    query = dns.message.make_query(name, kind)
    wire = asyncio.run(censor.answer(query.to_wire(), techniques))
    assert wire is not None
    reply = dns.message.from_wire(wire)
    assert reply.id == query.id  # the asker's own id, not the one first forwarded
    return reply


def test_real_answers_are_forwarded_once_and_lies_decided_every_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    forwarded: list[tuple[str, str]] = []

    async def lab_dns(query: dns.message.Message, where: str, **_: Any) -> dns.message.Message:
        question = query.question[0]
        forwarded.append((question.name.to_text(), dns.rdatatype.to_text(question.rdtype)))
        reply = dns.message.make_response(query)
        if question.rdtype == dns.rdatatype.A:
            reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", "198.19.1.10"))
        return reply

    monkeypatch.setattr(dns.asyncquery, "udp", lab_dns)
    censor = Censor({"dns": "198.19.0.53"})
    censor.rules = {"dns.bogon": ["blocked.example.org"]}

    for _ in range(3):
        reply = _ask(censor, "web.whatsapp.com")
        assert [r.to_text() for r in reply.answer[0]] == ["198.19.1.10"]
    assert not _ask(censor, "web.whatsapp.com", "AAAA").answer  # its own entry, not the A's
    assert forwarded == [("web.whatsapp.com.", "A"), ("web.whatsapp.com.", "AAAA")]

    # a censored name is never forwarded, whether or not the censor is told to lie this time
    lie = _ask(censor, "blocked.example.org", techniques=("dns.bogon",))
    assert [r.to_text() for r in lie.answer[0]] == [BOGON]
    assert len(forwarded) == 2
    real = _ask(censor, "blocked.example.org")
    assert [r.to_text() for r in real.answer[0]] == ["198.19.1.10"]
    assert forwarded[-1] == ("blocked.example.org.", "A")


def test_a_lab_dns_that_does_not_answer_is_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    async def silent(query: dns.message.Message, where: str, **_: Any) -> dns.message.Message:
        nonlocal calls
        calls += 1
        raise dns.exception.Timeout

    monkeypatch.setattr(dns.asyncquery, "udp", silent)
    censor = Censor({"dns": "198.19.0.53"})
    query = dns.message.make_query("web.whatsapp.com", "A").to_wire()
    assert asyncio.run(censor.answer(query, ())) is None
    assert calls == UPSTREAM_TRIES  # asked again before giving up, as a resolver does
    assert asyncio.run(censor.answer(query, ())) is None
    assert calls == 2 * UPSTREAM_TRIES
    assert not censor.asking


def test_askers_of_one_name_share_one_forwarded_query_that_is_tried_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch's runs ask the same names at once: one query goes to the lab's DNS (asked again
    when its answer is lost), and every asker gets the answer under its own id."""
    calls = 0

    async def lossy(query: dns.message.Message, where: str, **_: Any) -> dns.message.Message:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)  # the others ask while this one waits
        if calls == 1:
            raise dns.exception.Timeout
        reply = dns.message.make_response(query)
        reply.answer.append(
            dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "198.19.1.10")
        )
        return reply

    monkeypatch.setattr(dns.asyncquery, "udp", lossy)
    censor = Censor({"dns": "198.19.0.53"})
    queries = [dns.message.make_query("web.whatsapp.com", "A") for _ in range(20)]

    async def everyone() -> list[bytes | None]:
        return await asyncio.gather(*(censor.answer(q.to_wire(), ()) for q in queries))

    for query, wire in zip(queries, asyncio.run(everyone()), strict=True):
        assert wire is not None
        reply = dns.message.from_wire(wire)
        assert reply.id == query.id
        assert [r.to_text() for r in reply.answer[0]] == ["198.19.1.10"]
    assert calls == 2  # one lost, one answered, for twenty askers
    assert not censor.asking
