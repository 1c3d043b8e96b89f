"""The answer card: status per feature and network as of a moment, since when, how, what a
tunnel did, and `unknown` (with the reason) rather than a guess."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from reachwatch.answers.card import answer
from reachwatch.store import Store

from .answers_history import Row, series, write
from .conftest import reachwatch

T0 = datetime(2017, 4, 17)
BLOCK = (datetime(2017, 5, 8), datetime(2017, 5, 22))
PROXY = "socks5://198.18.0.10:1080"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Six weeks, two networks: Skype calls blocked on Delta Telecom for two weeks (a proxy
    restores them), Skype's site fine everywhere, a news site blocked on both networks."""
    rows = series(29049, "skype/calls", T0, 42, 2, BLOCK) + series(31721, "skype/calls", T0, 42, 2)
    rows += series(29049, "skype/web", T0, 42, 2) + series(31721, "skype/web", T0, 42, 2)
    for asn in (29049, 31721):
        rows += series(asn, "https://www.azadliq.org/", T0, 42, 1, (T0, T0 + timedelta(days=60)),
                       "tls.reset")  # fmt: skip
    direct = [r for r in rows if r.asn == 29049 and r.target == "skype/calls"]
    rows = [r for r in rows if r not in direct]
    for k, row in enumerate(direct):  # each run measured directly and through the proxy
        rows.append(Row(row.asn, row.target, row.at, row.verdict, row.technique, run_id=f"r{k}"))
        rows.append(Row(29049, "skype/calls", row.at, "ok", via=PROXY, run_id=f"r{k}"))
    path = tmp_path / "r.duckdb"
    write(path, rows)
    return path


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def test_during_the_block_calls_are_partially_blocked_and_the_proxy_restores_them(db: Path) -> None:
    with Store(db, read_only=True) as store:
        card = answer(store, "skype", "az", at("2017-05-15"))
    calls, web = card.features
    assert (calls.target, calls.status, web.status) == ("skype/calls", "partially blocked",
                                                        "accessible")  # fmt: skip
    assert calls.since == at("2017-05-08") and calls.technique == "udp.timeout"
    assert calls.tunnels == {"restored": 15}  # the blocked network's runs through the proxy
    delta, azercell = calls.networks
    assert (delta.network, delta.status) == ("AS29049 Delta Telecom", "blocked")
    assert (azercell.status, azercell.recent) == ("accessible", 15)
    assert card.status == "partially blocked" and card.networks == (
        "AS29049 Delta Telecom", "AS31721 Azercell")  # fmt: skip
    assert len(delta.measurements) == 15  # the event's blocked measurements so far


def test_a_past_moment_sees_only_what_was_measured_by_then(db: Path) -> None:
    with Store(db, read_only=True) as store:
        before = answer(store, "skype", "AZ", at("2017-05-01"))
        after = answer(store, "skype", "AZ", at("2017-05-26"))
    assert before.features[0].status == "accessible" and not before.episodes
    assert after.features[0].status == "accessible"
    (episode,) = after.episodes
    assert episode.end == at("2017-05-22") and episode.networks == ("AS29049 Delta Telecom",)


def test_old_or_thin_evidence_is_unknown_with_the_reason(db: Path) -> None:
    with Store(db, read_only=True) as store:
        now = answer(store, "skype", "AZ", at("2026-11-28"))
        early = answer(store, "skype", "AZ", at("2017-04-17T06:00"))
    assert now.status == "unknown" and {f.status for f in now.features} == {"unknown"}
    assert "the newest is 3470 days old" in now.features[0].networks[0].why
    assert early.features[0].networks[0].why.startswith("only 1 measurement(s)")


def test_a_domain_stands_for_its_urls_and_subdomains(db: Path) -> None:
    with Store(db, read_only=True) as store:
        card = answer(store, "azadliq.org", "AZ", at("2017-05-15"))
    (site,) = card.features
    assert (site.target, site.status, site.technique) == ("https://www.azadliq.org/", "blocked",
                                                          "tls.reset")  # fmt: skip


def test_the_answer_command(db: Path) -> None:
    md = reachwatch("answer", "skype", "--cc", "AZ", "--db", str(db), "--at", "2017-05-15")
    assert md.returncode == 0, md.stderr
    assert "# Is skype blocked in AZ? **partially blocked**" in md.stdout
    assert "| `skype/calls` | partially blocked (blocked on AS29049 Delta Telecom; accessible" in (
        md.stdout
    )
    assert "restored x15" in md.stdout and "## Episodes" in md.stdout
    as_json = reachwatch("answer", "skype", "--cc", "AZ", "--db", str(db), "--at", "2017-05-15",
                         "--format", "json")  # fmt: skip
    card = orjson.loads(as_json.stdout)
    assert card["status"] == "partially blocked" and card["thresholds"]["fresh_days"] == 7
    assert card["features"][0]["networks"][0]["status"] == "blocked"
    assert card["unmeasured"] == []


def test_no_data_says_so_and_how_to_measure_and_bad_input_is_refused(db: Path) -> None:
    empty = reachwatch("answer", "viber", "--cc", "AZ", "--db", str(db))
    assert empty.returncode == 0
    assert "No measurements of viber in AZ" in empty.stdout
    assert "reachwatch probe --app viber" in empty.stdout
    unknown = reachwatch("answer", "skipe", "--cc", "AZ", "--db", str(db))
    assert unknown.returncode == 2 and "neither an app of the catalogue" in unknown.stderr
    bad_date = reachwatch("answer", "skype", "--cc", "AZ", "--db", str(db), "--at", "May")
    assert bad_date.returncode == 2 and "not a date" in bad_date.stderr
    bad_cc = reachwatch("answer", "skype", "--cc", "Azerbaijan", "--db", str(db))
    assert bad_cc.returncode == 2 and "two letters" in bad_cc.stderr


def test_the_card_shows_what_sources_claim_and_what_the_evidence_says(db: Path) -> None:
    article = Path(__file__).parent.parent / "reachwatch" / "answers" / "data"
    added = reachwatch("claims", "add", str(article / "article-skype-az.yaml"), "--db", str(db))
    assert added.returncode == 0, added.stderr
    done = reachwatch("answer", "skype", "--cc", "AZ", "--db", str(db), "--at", "2017-05-15",
                      "--format", "json")  # fmt: skip
    claims = {c["id"]: c for c in orjson.loads(done.stdout)["claims"]}
    assert claims["article-unable-to-log-in"]["check"]["outcome"] == "contradicted"
    assert (
        "calls were blocked but web worked" in claims["article-unable-to-log-in"]["check"]["reason"]
    )
    assert claims["article-october-2024"]["check"]["outcome"] == "unverified"
    md = reachwatch("answer", "skype", "--cc", "AZ", "--db", str(db), "--at", "2017-05-15")
    assert "## What sources claim, and what the evidence says" in md.stdout
