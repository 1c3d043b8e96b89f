"""Claims: the loader refuses bad input with file, key and reason; the shipped claims load; the
checker finds the seed article's own contradictions, groups the record's episodes, and weighs
claims against a history like the demo lab's (Azerbaijan, spring 2017, Skype calls blocked)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reachwatch._errors import InputError, StoreError
from reachwatch.answers import Event, Observation, group, network_events
from reachwatch.answers.claims import (
    Check,
    Claim,
    ClaimsError,
    Comparison,
    When,
    check_claim,
    compare_claims,
    load_claims,
    occasion,
)
from reachwatch.store import Store, add_claims, claim_rows
from reachwatch.store._claims import CLAIM_FIELDS

from .answers_history import series, write
from .conftest import ROOT, reachwatch

DATA = ROOT / "reachwatch" / "answers" / "data"  # the package data the claims ship with
RECORD = DATA / "azerbaijan-record.yaml"
ARTICLE = DATA / "article-skype-az.yaml"
NOW = datetime(2025, 1, 1)

VALID = """\
- id: c1
  publisher: Example News
  kind: news
  url: https://news.example/skype
  published: 2017-05-30
  app: skype
  country: AZ
  asserted_status: blocked
  features: [calls]
  start: 2017-05-15
  end: 2017-06
  networks: [AS29049]
  quote: Skype calls fail since mid-May.
- id: c2
  site: x.com
  country: NO
  asserted_status: accessible
  start: 2024
  event: Some Summit
  event_phase: during
"""


def write_claims(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"{uuid.uuid4().hex}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def claims_of(*paths: Path) -> list[Claim]:
    return [c for path in paths for c in load_claims(path)]


def by_id(claims: list[Claim]) -> dict[str, Claim]:
    return {c.id: c for c in claims}


# the loader


def test_a_valid_file_loads_with_precision_inferred_from_the_form(tmp_path: Path) -> None:
    one, two = load_claims(write_claims(tmp_path, VALID))
    assert (one.app, one.country, one.features, one.networks) == (
        "skype",
        "AZ",
        ("calls",),
        ("AS29049",),
    )
    assert one.start is not None and one.end is not None
    assert (one.start.precision, one.end.precision) == ("day", "month")
    assert one.end.after == datetime(2017, 7, 1)  # June, widened to its last day
    assert two.country == "NO" and two.site == "x.com" and two.subject == "site:x.com"
    assert two.start is not None and (two.start.first, two.start.after) == (
        datetime(2024, 1, 1),
        datetime(2025, 1, 1),
    )


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        (
            "start: 2017-05-15",
            "start: 2017-02-30",
            "claims[0] (id c1).start (line 10)",
            "2017-02-30 is not a date: February 2017 has 28 days",
        ),
        (
            "end: 2017-06",
            "end: 2017-13",
            "claims[0] (id c1).end (line 11)",
            "2017-13 is not a date: there is no month 13",
        ),
        ("app: skype", "app: skipe", "claims[0] (id c1).app (line 6)", "unknown app 'skipe'"),
        (
            "country: AZ",
            "country: ZZ",
            "claims[0] (id c1).country (line 7)",
            "'ZZ' is not an ISO 3166-1 alpha-2 country code",
        ),
        (
            "end: 2017-06",
            "end: 2017-04",
            "claims[0] (id c1).end (line 11)",
            "the period ends (2017-04) before it starts (2017-05-15)",
        ),
        (
            "app: skype",
            "app: skype\n  site: skype.com",
            "claims[0] (id c1).site (line 7)",
            "give app or site, not both",
        ),
        (
            "asserted_status: blocked",
            "asserted_status: censored",
            "claims[0] (id c1).asserted_status (line 8)",
            "must be one of blocked, restricted, accessible, denied, lifted, not 'censored'",
        ),
        ("  app: skype\n", "", "claims[0] (id c1) (line 1)", "needs an app or a site"),
        (
            "site: x.com",
            "site: https://x.com/",
            "claims[1] (id c2).site (line 15)",
            "a site is a domain like x.com",
        ),
        (
            "start: 2024\n",
            "start: 2024\n  precision: day\n",
            "claims[1] (id c2).start (line 18)",
            "2024 is a year, too coarse for `precision: day`",
        ),
        (
            "networks: [AS29049]",
            "networks: [AS29049, 29049x]",
            "claims[0] (id c1).networks[1] (line 12)",
            "must be an AS number like AS28787",
        ),
        ("  event: Some Summit\n", "", "claims[1] (id c2).event_phase (line 19)", "needs `event`"),
        ("- id: c2", "- id: c1", "claims[1] (id c1).id (line 14)", "claims[0] has the same id"),
        ("kind: news", "kind: tabloid", "claims[0] (id c1).kind (line 3)", "must be one of news"),
        ("quote: Skype", "qoute: Skype", "claims[0] (id c1).qoute (line 13)", "unknown key"),
        ("- id: c1\n", "- \n", "claims[0].id (line 2)", "required, but missing"),
        (
            "url: https://news.example/skype",
            "url: news.example",
            "claims[0] (id c1).url (line 4)",
            "must be an http:// or https:// URL",
        ),
        (
            "published: 2017-05-30",
            "published: 30.05.2017",
            "claims[0] (id c1).published (line 5)",
            "must be a date as YYYY-MM-DD, YYYY-MM or YYYY",
        ),
        (
            "start: 2024\n",
            "start: 1900\n",
            "claims[1] (id c2).start (line 18)",
            "the year must be 1970-9998",
        ),
    ],
)
def test_bad_input_is_refused_with_file_key_and_reason(
    tmp_path: Path, old: str, new: str, key: str, reason: str
) -> None:
    assert old in VALID
    path = write_claims(tmp_path, VALID.replace(old, new, 1))
    with pytest.raises(ClaimsError) as refused:
        load_claims(path)
    assert str(refused.value).startswith(f"{path}: {key}: "), str(refused.value)
    assert reason in str(refused.value)
    assert isinstance(refused.value, InputError)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "the file is empty"),
        ("id: c1\n", "the file must be a list of claims, not a mapping"),
        ("- [unclosed\n", "not valid YAML"),
        ("- 5\n", "a claim must be a mapping, not '5'"),
    ],
)
def test_files_that_are_not_lists_of_claims_are_refused(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = write_claims(tmp_path, text)
    with pytest.raises(ClaimsError, match=reason) as refused:
        load_claims(path)
    assert str(refused.value).startswith(f"{path}: ")


def test_a_period_after_publication_and_a_lower_case_country_are_not_refused(
    tmp_path: Path,
) -> None:
    """Sources announce blocks ahead; the checker, not the loader, weighs that."""
    text = VALID.replace("published: 2017-05-30", "published: 2017-01-02")
    text = text.replace("country: AZ", "country: az")
    first = load_claims(write_claims(tmp_path, text))[0]
    assert first.country == "AZ" and first.published is not None


# the shipped claims


def test_the_shipped_files_load_and_round_trip_through_the_store_columns() -> None:
    record, article = load_claims(RECORD), load_claims(ARTICLE)
    assert len(record) == 16 and len(article) == 13
    jamnews = by_id(record)["jamnews-2017-calls"]
    assert jamnews.start is not None and str(jamnews.start.day) == "2017-05-15"
    assert jamnews.start.precision == "month"  # as the record says, not as the form would
    for claim in (*record, *article):
        assert set(claim.record()) == set(CLAIM_FIELDS)
        assert Claim.from_record(claim.record()) == claim
    for claim in article:
        assert claim.quote and claim.publisher == "shunculture"
        assert claim.source == "Skype Usage In Azerbaijan: Blocked Or Accessible?"


# the article's own contradictions


@pytest.fixture(scope="module")
def article_only() -> Comparison:
    return compare_claims(load_claims(ARTICLE))


@pytest.fixture(scope="module")
def everything() -> Comparison:
    return compare_claims(claims_of(RECORD, ARTICLE))


def test_the_article_puts_the_games_block_in_three_different_times(
    article_only: Comparison, everything: Comparison
) -> None:
    (games,) = article_only.events
    assert games.name == "Islamic Solidarity Games"
    (dates,) = [c for c in games.conflicts if c.kind == "event-dates"]
    assert "2015 (article-ssps-2015)" in dates.reason
    assert "2024-05 (article-table-may-2024)" in dates.reason
    assert "2024-10" in dates.reason and "article-october-2024" in dates.claims
    # and the record puts it in May 2017, from a reason that names the Games
    (games,) = everything.events
    (dates,) = [c for c in games.conflicts if c.kind == "event-dates"]
    assert "2017-05 (jamnews-2017-calls)" in dates.reason


def test_the_article_says_lifted_and_says_the_ban_remained(article_only: Comparison) -> None:
    conflicts = [c for c in article_only.conflicts() if c.kind == "status"]
    dated = [c for c in conflicts if c.claims[0] == "article-lifted-september-2024"]
    assert dated and "article-october-2024-calls-after-games" in dated[0].claims
    assert "lifted as of 2024-09" in dated[0].reason and "blocked after that" in dated[0].reason
    (phase,) = [c for c in conflicts if "article-ban-remained-in-place" in c.claims]
    assert "article-ministry-after-games" in phase.claims
    assert phase.reason.startswith("after the Islamic Solidarity Games")
    assert "the block remained" in phase.reason


def test_the_article_says_calls_only_and_unable_to_log_in(article_only: Comparison) -> None:
    scopes = [c for c in article_only.conflicts() if c.kind == "scope"]
    named = next(c for c in scopes if "article-unable-to-log-in" in c.claims)
    assert "article-calls-difficulties" in named.claims
    assert "only skype calls were blocked" in named.reason and "(login)" in named.reason
    # in October 2024 too, within the one episode
    assert any(
        {"article-october-2024-calls-after-games", "article-october-2024-login"} <= set(c.claims)
        for c in scopes
    )


# the record


def test_the_2020_episode_groups_the_apps_and_shows_three_whatsapp_end_dates(
    everything: Comparison,
) -> None:
    episode = everything.episode_of("ooni-aiw-2020-whatsapp")
    assert episode is not None
    assert {"whatsapp", "telegram", "signal", "skype"} <= set(episode.subjects)
    assert {"netblocks-2020-war", "ooni-aiw-2020-signal", "cenalert-2020"} <= set(episode.claims)
    assert episode.ends == ("2020-11-11", "2020-11-12", "2020-11-20")
    (ends,) = [c for c in episode.conflicts if c.kind == "end"]
    assert ends.subject == "whatsapp"
    assert ends.reason.endswith(
        "2020-11-11 (ooni-aiw-2020-whatsapp); 2020-11-12 "
        "(aiw-2020-restored); 2020-11-20 (cenalert-2020)"
    )
    assert not any(c.kind == "start" for c in episode.conflicts)  # all say 2020-09-27


def test_the_articles_october_2024_skype_block_has_no_other_source(
    everything: Comparison,
) -> None:
    october = everything.corroboration["article-october-2024"]
    assert october.by == ()
    assert october.reason.startswith("no other source")
    assert "the only other claims about then: ooni-2024-x (site:x.com" in october.reason
    assert everything.corroboration["jamnews-2017-calls-skype"].by == ("eurasianet-2017-voip",)
    # calls only is not the same claim as "impossible to log in"
    assert everything.corroboration["turan-2015-licensing"].by == ()


def test_the_ministrys_denial_conflicts_with_the_2017_reports(everything: Comparison) -> None:
    (denial,) = everything.conflicts_of("ministry-2017-denial")
    assert denial.kind == "status"
    assert {"jamnews-2017-calls-skype", "eurasianet-2017-voip"} <= set(denial.claims)


def test_an_occasion_is_found_in_a_reason_or_given() -> None:
    claims = by_id(claims_of(RECORD, ARTICLE))
    assert occasion(claims["jamnews-2017-calls"]) == (
        "islamic solidarity games",
        "Islamic Solidarity Games",
    )
    assert occasion(claims["turan-2015-licensing"]) is None  # names apps, not an occasion
    assert occasion(claims["article-ssps-2015"]) == (
        "islamic solidarity games",
        "Islamic Solidarity Games",
    )


# against the evidence: a history like the demo lab's


def history() -> tuple[list[Event], dict[str, list[Observation]]]:
    """AZ, AS29049 Delta Telecom, two runs a day 2017-04-17 to 2017-05-28: skype/calls blocked
    (udp.timeout) from 2017-05-08 to 2017-05-22, skype/web ok throughout."""
    start = datetime(2017, 4, 17, tzinfo=UTC)
    block = (datetime(2017, 5, 8, tzinfo=UTC), datetime(2017, 5, 22, tzinfo=UTC))
    observations: dict[str, list[Observation]] = {"skype/calls": [], "skype/web": []}
    for k in range(42 * 2):
        at = start + k * timedelta(hours=12)
        blocked = block[0] <= at < block[1]
        observations["skype/calls"].append(
            Observation(
                at, "blocked" if blocked else "ok", "udp.timeout" if blocked else None, f"c{k:03d}"
            )
        )
        observations["skype/web"].append(Observation(at, "ok", None, f"w{k:03d}"))
    parts = [
        e
        for target, obs in observations.items()
        for e in network_events("AZ", 29049, "Delta Telecom", target, obs)
    ]
    return group(parts), observations


def check(claim: Claim) -> Check:
    events, observations = history()
    return check_claim(claim, events, observations, now=NOW)


def test_the_2017_calls_claims_are_supported_by_the_event() -> None:
    (event,), _ = history()
    claims = by_id(load_claims(RECORD))
    for ident in ("jamnews-2017-calls-skype", "eurasianet-2017-voip"):
        result = check(claims[ident])
        assert result.outcome == "supported", result.reason
        assert result.reason.startswith(
            "skype/calls was blocked from 2017-05-08 to 2017-05-22 "
            "on AS29049 Delta Telecom (udp.timeout)"
        )
        assert result.measurements and set(result.measurements) <= set(event.measurements)
        assert result.targets == ("skype/calls",)


def test_unable_to_log_in_is_contradicted_because_web_worked_while_calls_were_blocked() -> None:
    result = check(by_id(load_claims(ARTICLE))["article-unable-to-log-in"])
    assert result.outcome == "contradicted"
    assert result.reason.startswith("calls were blocked but web worked")
    assert result.targets == ("skype/web",)
    assert any(u.startswith("w") for u in result.measurements)  # the web's ok measurements
    assert any(u.startswith("c") for u in result.measurements)  # and the calls' blocked ones


def test_mid_may_2024_is_unverified_for_want_of_measurements() -> None:
    result = check(by_id(load_claims(ARTICLE))["article-table-may-2024"])
    assert result.outcome == "unverified"
    assert result.reason.startswith(
        "no measurements of skype/web, skype/calls in AZ from 2024-05-01"
    )
    assert result.reason.endswith("measure them there") and result.measurements == ()


def test_the_ministrys_may_2017_denial_is_contradicted() -> None:
    result = check(by_id(load_claims(RECORD))["ministry-2017-denial"])
    assert result.outcome == "contradicted"
    assert "skype/calls was blocked from 2017-05-08" in result.reason
    assert result.reason.endswith("although the claim says denied")


def claim(**fields: Any) -> Claim:
    """A claim about Skype in AZ, blocked unless `fields` say otherwise."""
    return Claim(
        **{"id": "t", "country": "AZ", "asserted_status": "blocked", "app": "skype", **fields}
    )


def day(text: str) -> When:
    return When(datetime.fromisoformat(text).date(), "day")


def test_a_start_far_from_the_events_is_said_in_days() -> None:
    result = check(claim(features=("calls",), start=day("2017-04-20"), published=day("2017-05-30")))
    assert result.outcome == "supported"
    assert result.reason.endswith("it began 18 days after the claimed start (2017-04-20)")


def test_ok_measurements_without_an_event_contradict_a_block_and_bear_out_access() -> None:
    april = {"start": day("2017-04-17"), "end": day("2017-05-01")}
    blocked = check(claim(features=("calls",), **april))
    assert blocked.outcome == "contradicted"
    assert "were ok and no block was detected" in blocked.reason
    assert check(claim(asserted_status="accessible", **april)).outcome == "supported"


def test_a_lift_is_contradicted_by_a_block_going_on_after_it_and_borne_out_by_ok_after() -> None:
    early = check(claim(asserted_status="lifted", features=("calls",), end=day("2017-05-15")))
    assert early.outcome == "contradicted" and "still blocked after 2017-05-15" in early.reason
    late = check(claim(asserted_status="lifted", features=("calls",), end=day("2017-05-22")))
    assert late.outcome == "supported", late.reason
    undated = check(claim(asserted_status="lifted"))
    assert undated.outcome == "unverified" and "does not say when" in undated.reason


def test_a_few_measurements_are_too_few_and_unmeasured_things_are_said_so() -> None:
    one_day = check(claim(features=("calls",), start=day("2017-04-20"), end=day("2017-04-20")))
    assert one_day.outcome == "unverified"
    assert one_day.reason.startswith("only 2 measurements of skype/calls in AZ")
    skype_messaging = check(claim(features=("messaging",)))
    assert skype_messaging.outcome == "unverified"
    assert "does not measure skype messaging" in skype_messaging.reason
    site = check(claim(app=None, site="x.com"))
    assert site.outcome == "unverified" and "no measurements of x.com" in site.reason


def test_a_site_claim_checks_the_sites_urls_and_subdomains() -> None:
    at = datetime(2024, 10, 8, tzinfo=UTC)
    obs = [
        Observation(at + k * timedelta(hours=6), "blocked", "tls.reset", f"x{k}") for k in range(8)
    ]
    events = group(network_events("AZ", 28787, None, "https://api.x.com/", obs))
    result = check_claim(
        claim(app=None, site="x.com", start=day("2024-10-08"), end=day("2024-10-10")),
        events,
        {"https://api.x.com/": obs},
        now=NOW,
    )
    assert result.outcome == "supported" and result.targets == ("https://api.x.com/",)


# random input


_MUTATIONS = st.sampled_from(["delete", "insert", "replace", "duplicate-line", "swap-lines"])
_PIECES = st.sampled_from(
    [
        ":",
        "-",
        " ",
        "\n",
        "  ",
        "[",
        "]",
        "{",
        "}",
        "&a",
        "*a",
        "!!int",
        "<<: ",
        "#",
        '"',
        "'",
        "\t",
        "2017-02-30",
        "2017-13",
        "AS0",
        "site: x.com",
        "app: tiktok",
        "NO",
        "~",
        "null",
        "precision: year",
        "end: 1999",
        "features: login",
        "\x00",
        "é",
        "- id: c1\n",
    ]
) | st.text(max_size=6)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(min_value=0),
    mutations=st.lists(_MUTATIONS, min_size=1, max_size=4),
    piece=_PIECES,
    raw=st.booleans(),
)
def test_any_mutation_of_a_claims_file_loads_or_is_refused(
    tmp_path: Path, seed: int, mutations: list[str], piece: str, raw: bool
) -> None:
    rng = random.Random(seed)
    text = VALID
    for mutation in mutations:
        at = rng.randrange(len(text) + 1)
        lines = text.splitlines(keepends=True)
        if mutation == "delete":
            text = text[:at] + text[at + rng.randrange(1, 12) :]
        elif mutation == "insert":
            text = text[:at] + piece + text[at:]
        elif mutation == "replace":
            text = text[:at] + piece + text[at + len(piece) :]
        elif mutation == "duplicate-line" and lines:
            i = rng.randrange(len(lines))
            text = "".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])
        elif len(lines) > 1:
            i = rng.randrange(len(lines) - 1)
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
            text = "".join(lines)
    path = tmp_path / f"{uuid.uuid4().hex}.yaml"
    data = text.encode("utf-8")
    path.write_bytes(data[: rng.randrange(len(data) + 1)] if raw else data)  # cut mid-character
    try:
        load_claims(path)
    except ClaimsError as exc:
        assert str(exc).startswith(f"{path}: ")


# the store and the command


def test_adding_claims_twice_changes_nothing_and_a_changed_claim_replaces_the_old(
    tmp_path: Path,
) -> None:
    claims = load_claims(RECORD)
    with Store(tmp_path / "c.duckdb") as store:
        first = add_claims(store, [c.record() for c in claims], str(RECORD))
        assert len(first.added) == 16 and not first.updated and not first.unchanged
        again = add_claims(store, [c.record() for c in claims], str(RECORD))
        assert again.added == () and again.updated == () and len(again.unchanged) == 16
        changed = claims[0].record() | {"note": "a second look"}
        third = add_claims(store, [changed], "other.yaml")
        assert third.updated == (claims[0].id,)
        rows = {r["id"]: r for r in claim_rows(store, cc="az")}
        assert len(rows) == 16 and rows[claims[0].id]["note"] == "a second look"
        assert rows[claims[0].id]["source_file"] == "other.yaml"
        assert [r["id"] for r in claim_rows(store, subject="x.com")] == ["ooni-2024-x"]


def run(*args: str) -> str:
    done = reachwatch(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_claims_add_and_check_from_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    start, block = datetime(2017, 4, 17), (datetime(2017, 5, 8), datetime(2017, 5, 22))
    write(
        db,
        [
            *series(29049, "skype/calls", start, 42, 2, blocked=block),
            *series(29049, "skype/web", start, 42, 2),
        ],
    )
    assert "16 added, 0 updated, 0 unchanged" in run("claims", "add", "--db", str(db), str(RECORD))
    assert "0 added, 0 updated, 16 unchanged" in run("claims", "add", "--db", str(db), str(RECORD))
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        RECORD.read_text().replace(
            "note: the ministry denied restricting the apps", "note: the ministry denied it"
        )
    )
    out = run("claims", "add", "--db", str(db), str(changed))
    assert "0 added, 1 updated, 15 unchanged" in out
    assert "updated ministry-2017-denial: the new version replaced the stored one" in out
    run("claims", "add", "--db", str(db), str(ARTICLE))

    lines = [
        orjson.loads(line)
        for line in run(
            "claims", "check", "--db", str(db), "--cc", "AZ", "--app", "skype", "--format", "jsonl"
        ).splitlines()
    ]
    claims = {r["id"]: r for r in lines if r["type"] == "claim"}
    assert all(r["subject"] == "skype" for r in claims.values())
    assert claims["jamnews-2017-calls-skype"]["check"]["outcome"] == "supported"
    assert claims["ministry-2017-denial"]["check"]["outcome"] == "contradicted"
    unable = claims["article-unable-to-log-in"]["check"]
    assert unable["outcome"] == "contradicted" and unable["measurements"]
    assert unable["reason"].startswith("calls were blocked but web worked")
    assert claims["article-table-may-2024"]["check"]["outcome"] == "unverified"
    assert "ooni-2024-x" in claims["article-october-2024"]["corroboration"]
    episodes = [r for r in lines if r["type"] == "episode"]
    assert any(e["ends"] == ["2020-11-11", "2020-11-12", "2020-11-20"] for e in episodes)
    (games,) = [r for r in lines if r["type"] == "event"]
    assert {c["kind"] for c in games["conflicts"]} == {"event-dates", "status", "scope"}

    table = run("claims", "check", "--db", str(db), "--app", "skype")
    assert "episode AZ 2020-09-27 to 2020-11-20" in table
    assert "named event Islamic Solidarity Games in AZ" in table


def test_a_bad_claims_file_is_refused_by_the_command_with_its_reason(tmp_path: Path) -> None:
    bad = write_claims(tmp_path, VALID.replace("country: AZ", "country: ZZ"))
    done = reachwatch("claims", "add", "--db", str(tmp_path / "x.duckdb"), str(bad))
    assert done.returncode == 2
    assert "claims[0] (id c1).country (line 7)" in done.stderr
    assert "not an ISO 3166-1 alpha-2 country code" in done.stderr


def test_a_schema_2_store_gains_the_claims_table_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    write(path, series(29049, "skype/web", datetime(2017, 4, 17), 2, 2))
    with Store(path) as store:
        store.execute("DROP TABLE claims")
        store.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match=r"schema version 2.*upgrades it"):
        Store(path, read_only=True)
    with Store(path) as store:
        assert store.execute("SELECT count(*) FROM verdicts").fetchone() == (4,)
        added = add_claims(store, [c.record() for c in load_claims(ARTICLE)], str(ARTICLE))
        assert len(added.added) == 13
