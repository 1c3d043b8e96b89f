"""The measurement model: OONI's base format and every listed experiment's test_keys."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reachwatch import InvalidMeasurement
from reachwatch.model import (
    TEST_KEYS,
    DNSCheckKeys,
    FacebookMessengerKeys,
    OpenVPNKeys,
    Primitives,
    PsiphonKeys,
    RiseupVPNKeys,
    SignalKeys,
    StunReachabilityKeys,
    TelegramKeys,
    TorBootstrapKeys,
    TorKeys,
    URLGetterKeys,
    WebConnectivityKeys,
    WhatsAppKeys,
    _parse,
    parse_measurement,
)
from reachwatch.model._jsontext import cut_strings, offset_in, use_simd, utf8_length

from .conftest import GENERATED, SAMPLES, dumps, measurement, sample

ALL_SAMPLES = sorted(SAMPLES.rglob("*.json"))
BOMB = (
    b'{"test_name": "tor", "measurement_start_time": "2024-05-01 12:00:00", "test_keys": '
    + b"[" * 100_000
    + b"]" * 100_000
    + b"}"
)


def _simd_levels() -> list[str]:
    """The instruction sets `_jsontext` runs its passes with on this processor."""
    levels = ["base"]
    try:
        use_simd(use_simd("avx2"))
        levels.append("avx2")
    except ValueError:
        pass
    return levels


SIMD_LEVELS = _simd_levels()


@contextmanager
def simd(level: str) -> Iterator[None]:
    was = use_simd(level)
    try:
        yield
    finally:
        use_simd(was)


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda p: str(p.relative_to(SAMPLES)))
def test_every_bundled_real_measurement_parses(path: Path) -> None:
    pm = parse_measurement(path.read_bytes())
    assert pm.base.test_name
    assert pm.uid
    assert pm.known_test == (pm.base.test_name in TEST_KEYS)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("web_connectivity_ir_fp.json", WebConnectivityKeys),  # 0.4
        ("whatsapp.json", WhatsAppKeys),
        ("telegram_nourl.json", TelegramKeys),
        ("signal_679.json", SignalKeys),
        ("tor.json", TorKeys),
        ("vanilla_tor.json", TorBootstrapKeys),
        ("torsf_383.json", TorBootstrapKeys),
        ("riseupvpn.json", RiseupVPNKeys),
        ("openvpn.json", OpenVPNKeys),
    ],
)
def test_test_keys_are_typed_per_experiment(name: str, kind: type) -> None:
    assert isinstance(parse_measurement(sample(name)).keys, kind)


def test_web_connectivity_05_keeps_its_primitives_and_control() -> None:
    pm = parse_measurement((GENERATED / "dnsBlockingBOGON" / "measurement.json").read_bytes())
    keys = pm.keys
    assert isinstance(keys, WebConnectivityKeys)
    assert pm.base.test_version and pm.base.test_version.startswith("0.5")
    assert keys.control is not None and keys.control.dns is not None
    assert keys.control.dns.addrs == ["93.184.216.34"]
    engines = {q.engine for q in keys.queries or ()}
    assert {"getaddrinfo", "doh", "udp"} <= engines
    assert keys.blocking == "dns"  # kept to compare against, not used for the verdict


@pytest.mark.parametrize(
    ("test_name", "keys", "kind"),
    [
        (
            "stunreachability",
            {"endpoint": "stun.l.google.com:19302", "failure": None, "queries": []},
            StunReachabilityKeys,
        ),
        (
            "dnscheck",
            {"domain": "example.org", "bootstrap_failure": None, "lookups": {"1.1.1.1:853": {}}},
            DNSCheckKeys,
        ),
        (
            "urlgetter",
            {"failure": "connection_reset", "failed_operation": "tls_handshake"},
            URLGetterKeys,
        ),
        ("psiphon", {"bootstrap_time": 3.2, "failure": None}, PsiphonKeys),
        (
            "facebook_messenger",
            {"facebook_tcp_blocking": False, "facebook_dns_blocking": False},
            FacebookMessengerKeys,
        ),
    ],
)
def test_experiments_without_bundled_samples_parse(test_name: str, keys: dict, kind: type) -> None:
    pm = parse_measurement(dumps(measurement(test_name, keys)))
    assert isinstance(pm.keys, kind)


def test_unknown_test_is_kept_and_marked() -> None:
    pm = parse_measurement(sample("meek.json"))
    assert pm.base.test_name == "meek_fronted_requests_test"
    assert not pm.known_test
    assert pm.keys is None


def test_measurement_uid_is_kept_when_present() -> None:
    data = dumps(measurement("web_connectivity", None, measurement_uid="20240501120001.1_AZ_x_1"))
    pm = parse_measurement(data)
    assert pm.uid == "20240501120001.1_AZ_x_1"
    assert not pm.uid_computed


def test_measurement_uid_is_computed_the_ooni_way_when_absent() -> None:
    data = dumps(measurement("web_connectivity", None))
    pm = parse_measurement(data)
    digest = hashlib.sha512(data).hexdigest()[:16]
    assert pm.uid == f"20240501120000.000000_AZ_webconnectivity_{digest}"
    assert pm.uid_computed
    assert parse_measurement(data).uid == pm.uid  # the same bytes, the same uid


def test_probe_asn_is_numeric_and_defaults_follow_ooni() -> None:
    pm = parse_measurement(dumps(measurement("tor", None, probe_asn="AS12345")))
    assert pm.probe_asn == 12345
    m = measurement("tor", None)
    del m["probe_cc"], m["probe_asn"]
    pm = parse_measurement(dumps(m))
    assert (pm.base.probe_cc, pm.probe_asn) == ("ZZ", 0)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"test_name": "x"', "invalid JSON"),
        (b"\xff\xfe{}", "invalid UTF-8"),
        (b"[]", "not an OONI measurement"),
        (
            dumps({"test_name": "tor", "test_keys": {}}),
            "missing required field `measurement_start_time`",
        ),
        (
            dumps(measurement("tor", None, probe_cc=7)),
            "Expected `str`, got `int` - at `$.probe_cc`",
        ),
        (dumps(measurement("tor", None, probe_asn="ASX")), "is not an AS number"),
        (dumps(measurement("tor", None, measurement_start_time="yesterday")), "is not a time"),
        # found by bench/fuzz.py: valid ISO times that fall outside year 1-9999 in UTC
        (
            dumps(measurement("tor", None, measurement_start_time="0001-01-01T00:00:00+01:00")),
            "out of range in UTC",
        ),
        (
            dumps(measurement("tor", None, measurement_start_time="9999-12-31T23:59:59-01:00")),
            "out of range in UTC",
        ),
        (dumps(measurement("tor", None, probe_cc="azerbaijan")), "two-letter country code"),
        (dumps(measurement("whatsapp", {"tcp_connect": "nope"})), "test_keys of whatsapp"),
        # numbers out of what the store's columns hold: they failed the write of the whole
        # batch (and a 400-digit bootstrap_time, found by bench/fuzz.py, broke its verdict)
        (
            dumps(measurement("whatsapp", {"tcp_connect": [{"ip": "1.2.3.4", "port": 2**40}]})),
            "Expected `int` <= 65535 - at `$.test_keys.tcp_connect[0].port`",
        ),
        (
            dumps(measurement("web_connectivity", {"requests": [{"response": {"code": 2**40}}]})),
            "Expected `int` <= 2147483647 - at `$.test_keys.requests[0].response.code`",
        ),
        (
            dumps(measurement("torsf", {"bootstrap_time": "X"})).replace(b'"X"', b"1" + b"0" * 400),
            "Number out of range - at `$.test_keys.bootstrap_time`",
        ),
        (BOMB, "nesting too deep"),
        # a body is kept as JSON until read, yet refused as decoding it would be
        (
            dumps(measurement("web_connectivity", {"requests": [{"response": {"body": 7}}]})),
            "Expected `str | object | null` for the body - at `$.test_keys.requests[0].response`",
        ),
        (
            dumps(
                measurement(
                    "web_connectivity", {"requests": [{"response": {"body": {"format": 7}}}]}
                )
            ),
            "Expected `str`, got `int` in the body - at `$.test_keys.requests[0].response`",
        ),
    ],
)
def test_bad_records_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidMeasurement) as info:
        parse_measurement(data)
    assert reason in info.value.reason


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_any_json_either_parses_or_is_refused_with_a_reason(value: object) -> None:
    doc = {
        "test_name": "web_connectivity",
        "measurement_start_time": "2024-01-01 00:00:00",
        "test_keys": value,
    }
    try:
        parse_measurement(json.dumps(doc).encode())
    except InvalidMeasurement as exc:
        assert exc.reason


@pytest.mark.parametrize(
    "keys",
    [
        {"targets": {}, "x": {"test_name": "web_connectivity"}},  # a guess that decodes
        {"targets": {}, "x": {"test_name": "whatsapp"}, "requests": 7},  # one that does not
    ],
)
def test_the_test_is_found_in_the_bytes_whatever_the_test_keys_say(keys: dict[str, object]) -> None:
    """The one-pass decode guesses the test from the last "test_name" in the bytes (OONI
    writes it after the test_keys); here the test_keys hold the words after the real one."""
    m = measurement("tor", keys)
    data = dumps(m)
    assert data.index(b'"test_name"') < data.index(b'"test_keys"')
    pm = parse_measurement(data)
    assert pm.base.test_name == "tor" and isinstance(pm.keys, TorKeys)


def test_one_pass_and_two_passes_refuse_with_the_same_reason() -> None:
    """A measurement whose test_keys do not fit its test goes through both decodes: the
    reason names the key, as the two-pass decode always did."""
    m = measurement("tor", {"targets": {"a": {"failure": 7}}})
    with pytest.raises(InvalidMeasurement, match=r"test_keys of tor: .*\$\.test_keys\.targets"):
        parse_measurement(dumps(m))
    m["probe_cc"] = "azerbaijan"
    with pytest.raises(InvalidMeasurement, match="probe_cc 'azerbaijan'"):
        parse_measurement(dumps(m))


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=64),
        # lone surrogates too (hypothesis leaves them out of text by default): not UTF-8
        st.text(st.characters(exclude_categories=()), max_size=64).map(
            lambda s: s.encode("utf-8", "surrogatepass")
        ),
        st.tuples(st.text(max_size=32), st.binary(max_size=4), st.text(max_size=32)).map(
            lambda t: t[0].encode() + t[1] + t[2].encode()
        ),
        # runs of ASCII, which the check passes sixty-four bytes at a time, around bad bytes
        st.lists(
            st.one_of(
                st.text(st.characters(max_codepoint=127), min_size=15, max_size=70),
                st.text(max_size=3),
                st.binary(min_size=1, max_size=4),
            ),
            max_size=6,
        ).map(lambda parts: b"".join(p if isinstance(p, bytes) else p.encode() for p in parts)),
    )
)
@example(b"\xed\x9f\xbf\xed\xa0\x80")  # U+D7FF, then a surrogate
@example(b"\xf4\x8f\xbf\xbf\xf4\x90\x80\x80")  # U+10FFFF, then past it
@example(b"\xe0\xa0\x80\xe0\x9f\xbf")  # U+0800, then an overlong form of U+07FF
@example(b"\xf0\x90\x80\x80\xf0\x8f\xbf\xbf\xc1\xbf")  # U+10000, overlong forms
@example(b"a" * 62 + b"\xe2\x82\xac" + b"b" * 60 + b"\xf0\x9f\x98")  # across blocks, cut
@example(b"a" * 63 + b"\xf0\x9f\x98\x80" + b"\x80")  # a sequence over two blocks, one more
def test_bytes_are_refused_as_utf8_exactly_where_python_refuses_them(data: bytes) -> None:
    """The C check decides, alone and while it finds strings to cut; Python's decoder is the
    reference."""
    try:
        data.decode("utf-8")
        expected = -1
    except UnicodeDecodeError as exc:
        expected = exc.start
    for level in SIMD_LEVELS:
        with simd(level):
            assert cut_strings(data, 0)[0] == expected
            assert cut_strings(b'"' + data, 65)[0] == (expected + 1 if expected >= 0 else -1)


def _json_texts(text: str) -> list[bytes]:
    """`text` as JSON writes it: raw UTF-8 (orjson, Go without HTML escaping), every non-ASCII
    character escaped (Python's default: surrogate pairs beyond the BMP), and Go's default,
    which escapes <, > and & too."""
    texts = [
        json.dumps(text).encode(),
        json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass"),
    ]
    ascii_ = texts[0]
    texts.append(
        ascii_.replace(b"<", b"\\u003c").replace(b">", b"\\u003E").replace(b"&", b"\\u0026")
    )
    return texts


@settings(max_examples=2000, deadline=None)
@given(
    st.text(max_size=80)
    | st.text(st.characters(codec="utf-8") | st.sampled_from('\\"<>&/\n'), max_size=40)
    | st.text(st.sampled_from('\\\\\\"\U0001f600\ud800\u00e9\u0800<a\t'), max_size=400)
)
def test_a_json_string_is_measured_as_its_value_encoded(text: str) -> None:
    """The C counter against Python: the value's UTF-8 length, whatever the escaping (lone
    surrogates as surrogatepass writes them), wherever the text lies in its buffer. Long
    runs of backslashes and pairs cross the counter's 64-byte blocks."""
    expected = len(text.encode("utf-8", "surrogatepass"))
    for raw in _json_texts(text):
        for offset, level in itertools.product((0, 1, 7), SIMD_LEVELS):
            with simd(level):
                assert utf8_length(memoryview(b" " * offset + raw)[offset:]) == expected


@pytest.mark.parametrize(
    "raw",
    [b"", b'"', b"abc", b'"abc', b'"\\"', b'"\\x"', b'"\\u12"', b'"\\u12g4"', b"7", b"null"]
    + [b'"' + b"a" * n + tail for n in (62, 63, 64, 126) for tail in (b'\\"', b'\\x"', b'\\u12"')],
)
def test_what_is_no_json_string_is_not_measured(raw: bytes) -> None:
    with pytest.raises(ValueError, match="not a JSON string"):
        utf8_length(raw)


@pytest.mark.parametrize(
    ("body", "text", "length"),
    [
        ("caf\u00e9 <b>😀</b>", "caf\u00e9 <b>😀</b>", len("caf\u00e9 <b>😀</b>".encode())),
        ({"format": "base64", "data": "/w=="}, "\ufffd", 1),  # not UTF-8: its bytes counted
        (None, "", 0),
    ],
)
def test_a_body_is_read_and_measured_as_the_probe_wrote_it(
    body: object, text: str, length: int
) -> None:
    m = measurement("web_connectivity", {"requests": [{"response": {"code": 200, "body": body}}]})
    for data in (dumps(m), json.dumps(m).encode()):  # raw UTF-8, or escaped
        pm = parse_measurement(data)
        assert isinstance(pm.keys, WebConnectivityKeys) and pm.keys.requests
        response = pm.keys.requests[0].response
        assert response is not None
        assert (response.text(), response.body_length()) == (text, length)


def _outcome(data: bytes, cut: bool) -> bytes | str:
    """The parse of a measurement, encoded, or the reason it is refused; with the pages cut
    out before msgspec decodes it, or (no page being that long) without."""
    size = _parse.CUT_SIZE
    _parse.CUT_SIZE = size if cut else 2**62
    try:
        return msgspec.json.encode(parse_measurement(data))
    except InvalidMeasurement as exc:
        return exc.reason
    finally:
        _parse.CUT_SIZE = size


_PAGE_PARTS = ["\\", '"', "\n", "\t", "/", "<a", "\u00e9", "\U0001f600", "text "]
_PAGES = st.one_of(
    st.text(max_size=30),
    st.lists(st.sampled_from(_PAGE_PARTS), min_size=300, max_size=1200).map("".join),
    # lone surrogates: no UTF-8, and escaped, msgspec refuses them
    st.lists(st.sampled_from([*_PAGE_PARTS, "\ud800", "\udc00"]), min_size=300, max_size=1200).map(
        "".join
    ),
)
_LONG = "x\\y" * 400
_ELSEWHERE = {
    # where msgspec skips a long string: cut, and not decoded again
    "certificate": ("tls_handshakes", [{"peer_certificates": [{"data": _LONG}]}]),
    "received": ("received", [_LONG, "short", _LONG]),
    # where it decodes one (the placeholder fails), or keeps it as raw JSON: decoded again whole
    "header": ("requests", [{"response": {"code": 200, "headers": {"body": _LONG}, "body": "s"}}]),
    "header list": ("requests", [{"response": {"headers_list": [["X", _LONG]], "body": "s"}}]),
    "page object": ("requests", [{"response": {"body": {"format": "base64", "data": _LONG}}}]),
    "url": ("requests", [{"request": {"url": _LONG, "body": _LONG}}]),
    "events": ("network_events", [{"operation": "write", "body": _LONG}]),
    "control": ("control", {"http_request": {"body": _LONG, "title": _LONG}}),
    "key": (_LONG, 1),
}


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(_PAGES, st.sampled_from(["text", "binary", "null", "no response"])),
        max_size=4,
    ),
    st.sampled_from(["none", *_ELSEWHERE]),
    st.sampled_from(["utf-8", "ascii", "spaced"]),
    st.sampled_from(["web_connectivity", "http_invalid_request_line"]),
)
def test_long_strings_are_cut_out_and_pages_put_back_as_they_were(
    pages: list[tuple[str, str]], elsewhere: str, style: str, test: str
) -> None:
    """The cut (`_jsontext.cut_strings`, then `_put_back`) against msgspec decoding the whole
    measurement: the same parse, byte for byte, or the same reason to refuse it, whatever the
    pages hold (lone surrogates too) and however the JSON is written (raw UTF-8, escaped,
    spaces around the colons), also where a long string is no page: where msgspec skips it, where
    it decodes it, where it keeps it as raw JSON, and a long key. A test without typed keys
    keeps them as raw JSON: the original's."""
    requests: list[object] = []
    for text, kind in pages:
        body = {"text": text, "binary": {"format": "base64", "data": "/w=="}, "null": None}.get(
            kind
        )
        response = None if kind == "no response" else {"code": 200, "body": body}
        requests.append({"request": {"url": "http://x.org/", "body": ""}, "response": response})
    keys: dict[str, object] = {"requests": requests}
    if elsewhere != "none":
        key, value = _ELSEWHERE[elsewhere]
        keys[key] = [*requests, *value] if key == "requests" else value  # type: ignore[misc]
    m = measurement(test, keys)
    if style == "utf-8":  # a lone surrogate makes bytes that are not UTF-8: refused both ways
        data = json.dumps(m, ensure_ascii=False).encode("utf-8", "surrogatepass")
    else:
        data = json.dumps(m, separators=(", ", " : ") if style == "spaced" else (",", ":")).encode()
    assert _outcome(data, cut=True) == _outcome(data, cut=False)


@pytest.mark.parametrize("elsewhere", sorted(_ELSEWHERE))
def test_a_long_string_msgspec_skips_stays_cut(elsewhere: str) -> None:
    """Decoded from the shorter bytes (its network events are not in the original's) where
    msgspec skips the long string; from the original where it would decode it. A key is not
    cut."""
    key, value = _ELSEWHERE[elsewhere]
    keys = {"network_events": [{"operation": "read"}], key: value}
    data = dumps(measurement("web_connectivity", keys))
    assert (cut_strings(data, _parse.CUT_SIZE)[1] is None) is (elsewhere == "key")
    pm = parse_measurement(data)
    assert isinstance(pm.keys, WebConnectivityKeys)
    cut_kept = offset_in(pm.keys.network_events, data) == -1
    assert cut_kept is (elsewhere in ("certificate", "received"))
    assert _outcome(data, cut=True) == _outcome(data, cut=False)


_PUT_BACK = {".network_events", ".requests[].response.body", ".requests[].response.headers_list"}
"""Where `_parse._put_back` looks for raw JSON in a test's keys."""


def _raw_json_in(kind: mi.Type, path: str = "", within: tuple[type, ...] = ()) -> set[str]:
    """The paths to the raw JSON (msgspec.Raw) a type keeps."""
    if isinstance(kind, mi.RawType):
        return {path}
    parts: list[tuple[mi.Type, str]] = []
    if isinstance(kind, mi.StructType) and kind.cls not in within:
        within = (*within, kind.cls)
        parts = [(field.type, f"{path}.{field.encode_name}") for field in kind.fields]
    elif isinstance(kind, mi.UnionType):
        parts = [(member, path) for member in kind.types]
    elif isinstance(kind, (mi.ListType, mi.VarTupleType, mi.SetType, mi.FrozenSetType)):
        parts = [(kind.item_type, f"{path}[]")]
    elif isinstance(kind, mi.TupleType):
        parts = [(item, f"{path}[]") for item in kind.item_types]
    elif isinstance(kind, mi.DictType):
        parts = [(kind.value_type, f"{path}{{}}")]
    return set().union(*(_raw_json_in(part, where, within) for part, where in parts))


@pytest.mark.parametrize("test", sorted(TEST_KEYS))
def test_a_test_is_cut_if_its_keys_keep_raw_json_only_where_put_back_looks(test: str) -> None:
    """A cut string left in raw JSON would stay cut: `_put_back` finds what msgspec kept as raw
    JSON in a test's own requests and network events, and a test that keeps it elsewhere too
    (DNSCheck's lookups, Tor's targets) is decoded as it is."""
    keys = TEST_KEYS[test]
    raw = _raw_json_in(msgspec.inspect.type_info(keys))
    where_put_back_looks = not raw or (issubclass(keys, Primitives) and raw <= _PUT_BACK)
    assert (test in _parse._CUT) is where_put_back_looks


def test_pages_deeper_than_put_back_looks_are_read_as_the_probe_wrote_them() -> None:
    page = "<p>" * 1000
    keys = {"lookups": {"r": {"requests": [{"response": {"body": page}}]}}}
    pm = parse_measurement(dumps(measurement("dnscheck", keys)))
    assert isinstance(pm.keys, DNSCheckKeys) and pm.keys.lookups
    response = pm.keys.lookups["r"].requests[0].response  # type: ignore[index]
    assert response is not None and response.text() == page


def test_a_string_is_cut_where_it_is_a_value_msgspec_would_take() -> None:
    page = 'a\\b"c\u00e9' * 300
    tail = json.dumps(page)
    inner = '"q\\"body\\": \\"' + "z" * 2000 + '"'  # quotes escaped inside: one string
    doc = ('{"x": ' + inner + ', "body" :\n ' + tail + ', "' + "k" * 100 + '": [1]}').encode()
    invalid, shorter, places = cut_strings(doc, 1024)
    assert invalid == -1 and shorter is not None
    p = b'"\xff"'
    assert shorter == b'{"x": ' + p + b', "body" :\n ' + p + b', "' + b"k" * 100 + b'": [1]}'
    assert [doc[a:b] for a, b in places.values()] == [inner.encode(), tail.encode()]
    assert all(shorter[at : at + 3] == p for at in places)
    # at the size, cut; below it, not; not a string, not ended, a key: not cut
    for size, cuts in ((len(tail), True), (len(tail) + 1, False)):
        assert (cut_strings(b'{"body":' + tail.encode() + b"}", size)[1] is not None) is cuts
    for doc in (b'{"b": {"format": "base64"}}', b'{"b": 7}', b'{"b": "' + b"a" * 99):
        assert cut_strings(doc, 65) == (-1, None, {})
    assert cut_strings(b'{"' + b"a" * 99 + b'" \n: 1}', 65)[1] is None
    # an odd run of backslashes escapes the quote after it; an even one does not
    assert cut_strings(b'["' + b"a" * 99 + b'\\\\\\"]', 65)[1] is None
    assert cut_strings(b'["' + b"a" * 99 + b'\\\\"]', 65)[1] == b'["\xff"]'
    for size in (1, 64):
        with pytest.raises(ValueError, match="min_size"):
            cut_strings(doc, size)


@pytest.mark.parametrize(
    ("inside", "reason"),
    [
        ("a\tb", "invalid character"),
        ("a\\xb", "invalid escaped character"),
        ("a\\udc00b", "invalid utf-16 surrogate pair"),
        ("a\\ud800b", "unexpected end of hex escape"),
        ("a\\ud800\\u0041", "invalid utf-16 surrogate pair"),
        ("a\\u12g4", "invalid character in unicode escape"),
    ],
)
@pytest.mark.parametrize("before", [0, 1, 60, 63, 64, 1500])
def test_a_page_msgspec_would_refuse_is_left_for_it_to_refuse(
    inside: str, reason: str, before: int
) -> None:
    """Left in place, with the reason msgspec gives, wherever in the page (and in the
    cut's 64-byte blocks) the fault lies."""
    page = "p" * before + inside + "q" * 1500
    raw = dumps(measurement("web_connectivity", {"requests": [{"response": {"body": "@"}}]}))
    data = raw.replace(b'"@"', b'"' + page.encode() + b'"')
    for level in SIMD_LEVELS:
        with simd(level), pytest.raises(InvalidMeasurement, match=re.escape(reason)):
            parse_measurement(data)


_JSON_PARTS = st.sampled_from(
    [b'"', b"\\", b'\\"', b"\\\\", b":", b" ", b",", b"{", b"[", b"\\u00e9", b"\\ud800\\udc00"]
)
_ODD_PARTS = st.sampled_from(
    [b"\\ud800", b"\\udc00", b"\\x", b"\t", b"\xc3\xa9", b"\xf0\x9f\x98\x80", b"\xff", b"\xe2\x82"]
)


@pytest.mark.skipif(len(SIMD_LEVELS) < 2, reason="the processor runs one instruction set")
@settings(max_examples=1500, deadline=None)
@given(
    st.lists(
        _JSON_PARTS | _ODD_PARTS | st.integers(1, 300).map(lambda n: b"a" * n), max_size=40
    ).map(b"".join),
    st.sampled_from([0, 65, 100, 1024]),
)
@example(
    b'["' + b"a" * 200 + b'", "\\u00e9' + b"b" * 70 + b'", "\xc3\xa9\t' + b"c" * 99 + b'"]', 65
)
def test_the_passes_find_the_same_with_each_instruction_set(data: bytes, min_size: int) -> None:
    """The AVX2 passes against the base ones (which the cut's tests check against msgspec on
    this processor only if it lacks AVX2): the same UTF-8 verdict and the same cuts, on
    fragments of JSON, escapes, bytes that are not UTF-8 and long runs across the blocks."""
    found = []
    for level in SIMD_LEVELS:
        with simd(level):
            found.append(cut_strings(data, min_size))
    assert found[0] == found[1]


def test_a_cut_page_is_a_view_of_the_measurement_s_bytes() -> None:
    """After the cut, a page is read where it is in the measurement; what else msgspec kept
    as raw JSON (the network events) is in the shorter bytes it decoded."""
    page = json.dumps("<p>" * 1000)
    keys = {"requests": [{"response": {"body": "@"}}], "network_events": [{"operation": "r"}]}
    raw = dumps(measurement("web_connectivity", keys))
    data = raw.replace(b'"@"', page.encode())
    pm = parse_measurement(data)
    assert isinstance(pm.keys, WebConnectivityKeys) and pm.keys.requests
    response = pm.keys.requests[0].response
    assert response is not None and offset_in(response.body, data) == data.index(b'"<p>')
    assert response.body_length() == 3000 and offset_in(pm.keys.network_events, data) == -1


def test_offset_in_tells_where_a_view_lies() -> None:
    whole = b"0123456789"
    assert offset_in(memoryview(whole)[3:5], whole) == 3
    assert offset_in(whole, whole) == 0
    assert offset_in(b"34", whole) == -1
