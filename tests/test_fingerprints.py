"""The body matcher finds exactly what checking every fingerprint one by one finds: `contains`
patterns as substrings, `full` ones as the whole text, regexps with `re.search`; on the bundled
real pages and on generated text made of pieces of the patterns themselves."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reachwatch.pipeline.fingerprints import (
    BODY_SCAN_LIMIT,
    Fingerprints,
    _literal_prefix,
    default_fingerprints,
)

from .conftest import SAMPLES

HTTP_ROWS: list[dict[str, Any]] = orjson.loads(
    resources.files("reachwatch.pipeline.fingerprints").joinpath("fingerprints_http.json")
    .read_bytes()
)  # fmt: skip
BODY_ROWS = [r for r in HTTP_ROWS if r.get("location_found") == "body" and r.get("pattern")]
PIECES = sorted(
    {str(r["pattern"]) for r in BODY_ROWS if r.get("pattern_type") != "regexp"}
    # the literal stretches of the regexps, so that generated text matches some of them
    | {part.replace("\\", "") for r in BODY_ROWS if r.get("pattern_type") == "regexp"
       for part in str(r["pattern"]).split(".*")}
)  # fmt: skip


def one_by_one(text: str) -> set[str]:
    """What each body fingerprint says of `text` on its own."""
    text = text[:BODY_SCAN_LIMIT]
    found = set()
    for row in BODY_ROWS:
        pattern, kind = str(row["pattern"]), row.get("pattern_type")
        if (
            (kind == "full" and text == pattern)
            or (kind == "regexp" and re.search(pattern, text))
            or (kind not in ("full", "regexp") and pattern in text)
        ):
            found.add(str(row["name"]))
    return found


def names(text: str) -> set[str]:
    return {fp.name for fp in default_fingerprints().match_body(text)}


def real_bodies() -> list[str]:
    bodies = []
    for path in sorted(SAMPLES.rglob("*.json")):
        for request in (orjson.loads(path.read_bytes()).get("test_keys") or {}).get(
            "requests"
        ) or []:
            body = (request.get("response") or {}).get("body")
            if isinstance(body, str) and body:
                bodies.append(body)
    return bodies


def test_real_pages_match_as_each_fingerprint_alone_says() -> None:
    bodies = real_bodies()
    assert len(bodies) > 40
    matched = 0
    for body in bodies:
        assert names(body) == one_by_one(body)
        matched += bool(one_by_one(body))
    assert matched >= 10  # real blockpages among them, not only pages nothing matches


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(PIECES), st.text(max_size=40), st.sampled_from(["\n", " "])),
        max_size=12,
    )
)
def test_generated_text_matches_as_each_fingerprint_alone_says(parts: list[str]) -> None:
    text = "".join(parts)
    assert names(text) == one_by_one(text)


def test_every_regexp_is_found_where_it_matches() -> None:
    """Its literal stretches joined: each regexp (gated by its prefix or not) matches."""
    regexps = [r for r in BODY_ROWS if r.get("pattern_type") == "regexp"]
    found = 0
    for row in regexps:
        text = "x" + " ".join(p.replace("\\", "") for p in str(row["pattern"]).split(".*"))
        assert names(text) == one_by_one(text), row["name"]
        found += str(row["name"]) in names(text)
    assert found == len(regexps)


HEADER_ROWS = [r for r in HTTP_ROWS if str(r.get("location_found", "")).startswith("header.")]


def headers_one_by_one(headers: dict[str, str]) -> list[str]:
    found = []
    for row in HEADER_ROWS:
        value = headers.get(str(row["location_found"])[7:].lower())
        pattern, kind = str(row["pattern"]), row.get("pattern_type")
        if value is not None and (
            (kind == "full" and value == pattern)
            or (kind == "prefix" and value.startswith(pattern))
            or (kind not in ("full", "prefix") and pattern in value)
        ):
            found.append(str(row["name"]))
    return found


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["location", "server", "via"]),
    st.lists(
        st.one_of(st.sampled_from(sorted({str(r["pattern"]) for r in HEADER_ROWS})), st.text()),
        max_size=5,
    ),
)
def test_headers_match_as_each_fingerprint_alone_says(name: str, parts: list[str]) -> None:
    headers = {name: "".join(parts)}
    found = [fp.name for fp in default_fingerprints().match_headers(headers)]
    expected = headers_one_by_one(headers)
    assert sorted(found) == sorted(expected)
    contains = {str(r["name"]) for r in HEADER_ROWS if r.get("pattern_type") == "contains"}
    # substring rules come in the order of the rules, as when each is tried in turn
    assert [n for n in found if n in contains] == [n for n in expected if n in contains]


def test_matches_come_in_the_order_they_end_in_the_text() -> None:
    rows = [
        {"name": n, "scope": "nat", "location_found": "body", "pattern_type": "contains",
         "pattern": p}
        for n, p in (("late", "zzz"), ("early", "aaa"), ("inner", "bb"), ("outer", "abbc"))
    ]  # fmt: skip
    fps = Fingerprints([], rows)
    assert [fp.name for fp in fps.match_body("aaa abbc zzz")] == ["early", "inner", "outer", "late"]


def test_a_regexp_runs_only_where_its_literal_prefix_is() -> None:
    rows = [{"name": "rx", "scope": "nat", "location_found": "body", "pattern_type": "regexp",
             "pattern": r"Blocked by .* order"}]  # fmt: skip
    fps = Fingerprints([], rows)
    assert [fp.name for fp in fps.match_body("x Blocked by court order")] == ["rx"]
    assert fps.match_body("x blocked by court order") == []


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        ("<meta name=.*twitter:card", "<meta name="),
        (r"U\.S\..*Command", "U.S."),
        ("ab*c", "a"),
        ("a+b", "a"),
        (r"\d+ blocked", ""),
        ("(?i)blocked", ""),
        ("blocked|censored", ""),
        ("a{2}b", ""),
        ("^Blocked", ""),
    ],
)
def test_literal_prefix_of_a_regexp(pattern: str, prefix: str) -> None:
    assert _literal_prefix(pattern) == prefix
