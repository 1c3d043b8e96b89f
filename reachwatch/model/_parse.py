"""Bytes -> a checked `ParsedMeasurement`: decoding, the checks and the normalising every
measurement goes through. Compiled by mypyc (setup.py), like the analysis: this is the glue
around msgspec's decoding that runs for each measurement. The Structs stay in `_measurement`,
since mypyc would drop their class keywords (`kw_only`)."""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_left
from datetime import UTC, datetime
from typing import Any

import msgspec

from .._errors import InvalidMeasurement
from ._jsontext import PLACEHOLDER_SIZE, cut_strings, offset_in
from ._measurement import Envelope, Measurement, ParsedMeasurement
from ._testkeys import TEST_KEYS, Primitives, TestKeys

_BASE = msgspec.json.Decoder(Envelope)
_KEYS = {name: msgspec.json.Decoder(keys_type) for name, keys_type in TEST_KEYS.items()}
_WHOLE = {
    name: msgspec.json.Decoder(
        msgspec.defstruct(
            f"_{name}",
            [("test_keys", keys_type | None)],
            bases=(Measurement,),
            kw_only=True,
            gc=False,
        )
    )
    for name, keys_type in TEST_KEYS.items()
}
"""A decoder per test of the whole measurement, test_keys typed: one pass over the bytes
instead of two (the test_keys are most of them), when the test is known beforehand."""
_TEST_NAME = re.compile(rb'"test_name"\s*:\s*"([a-z0-9_]{1,64})"')
_ASN = re.compile(r"(?:AS)?(\d{1,10})", re.IGNORECASE)
_CC = re.compile(r"[A-Z]{2}")
CUT_SIZE = 1024
"""Strings of this many bytes or more (pages, certificates, what a probe received) are cut out
of a measurement before msgspec decodes it (`_jsontext.cut_strings`): msgspec passes over a
string it skips a byte at a time, the cut finds its end sixty-four bytes at a time, in the pass
that checks the bytes are UTF-8. Shorter ones are left to msgspec: they are little of a
measurement's bytes."""
_CUT = frozenset(TEST_KEYS) - {"dnscheck", "tor"}
"""The tests whose measurements are cut: those whose keys keep raw JSON (msgspec.Raw) only
where `_put_back` looks, if at all; DNSCheck's and Tor's keep pages deeper (tests/test_model.py
walks every test's keys)."""


def parse_measurement(data: bytes) -> ParsedMeasurement:
    """Decode and validate one measurement; raise `InvalidMeasurement` with a reason otherwise."""
    test = _test_named(data)
    decoder = _WHOLE.get(test)
    invalid, shorter, places = cut_strings(data, CUT_SIZE if test in _CUT or decoder is None else 0)
    if invalid >= 0:
        raise InvalidMeasurement(f"invalid UTF-8 at byte {invalid}")
    whole = None
    if decoder is not None:
        if shorter is not None:
            whole = _decoded(decoder, shorter, test)
            if whole is not None and not _put_back(whole.test_keys, data, shorter, places):  # type: ignore[attr-defined]
                whole = None
        if whole is None:
            whole = _decoded(decoder, data, test)
    if whole is not None:
        return _parsed(data, whole, whole.test_keys, *_check(whole))  # type: ignore[attr-defined]
    base = _base_of(data, shorter, places)

    checked = _check(base)
    keys_decoder = _KEYS.get(base.test_name)
    keys: TestKeys | None = None
    if keys_decoder is not None and not _is_null(base.test_keys):
        try:
            keys = keys_decoder.decode(base.test_keys)
        except msgspec.ValidationError as exc:
            where = str(exc).replace("`$", "`$.test_keys")
            raise InvalidMeasurement(f"test_keys of {base.test_name}: {where}") from None
        except RecursionError:
            raise InvalidMeasurement("invalid JSON: nesting too deep") from None
    return _parsed(data, base, keys, *checked)


def _test_named(data: bytes) -> str:
    """The test a measurement says it ran, read before decoding it, so that it is decoded in one
    pass (`_WHOLE`). Its last occurrence, since OONI's probes write it after the test_keys
    (which may hold the words too); a guess that proves wrong costs a second decode, never a
    wrong result: the two passes find what is wrong and say it as they always did."""
    at = data.rfind(b'"test_name"')
    found = _TEST_NAME.match(data, at) if at >= 0 else None
    return found.group(1).decode() if found else ""


def _base_of(data: bytes, shorter: bytes | None, places: dict[int, tuple[int, int]]) -> Envelope:
    """The base keys, and the test_keys as raw JSON in `data`: decoded from the shorter bytes
    where they decode (a test without typed keys, or not named where it is looked for), from
    `data` otherwise, where msgspec says what is wrong."""
    if shorter is not None:
        try:
            base = _BASE.decode(shorter)
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
            pass
        else:
            base.test_keys = _in_original(base.test_keys, data, shorter, places)
            return base
    try:
        return _BASE.decode(data)
    except msgspec.ValidationError as exc:
        raise InvalidMeasurement(f"not an OONI measurement: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidMeasurement(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise InvalidMeasurement("invalid JSON: nesting too deep") from None


def _in_original(
    raw: msgspec.Raw, data: bytes, shorter: bytes, places: dict[int, tuple[int, int]]
) -> msgspec.Raw:
    """Raw JSON decoded from `shorter`, as the same JSON in `data`: each placeholder before it,
    or in it, moved it or grew it by the length it stands for."""
    start = offset_in(raw, shorter)
    if start < 0:
        return raw  # not from the bytes: left out, the default
    stop = start + len(raw)
    before = within = 0
    for at, (cut_start, cut_stop) in places.items():
        grown = cut_stop - cut_start - PLACEHOLDER_SIZE
        if at < start:
            before += grown
        elif at < stop:
            within += grown
    return msgspec.Raw(memoryview(data)[start + before : stop + before + within])


def _decoded(decoder: msgspec.json.Decoder[Any], data: bytes, test: str) -> Measurement | None:
    """The measurement decoded whole, if it is valid and of that test; else None. A placeholder
    of the cut decoded into a str fails as bytes that are not UTF-8 do."""
    try:
        whole = decoder.decode(data)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return None  # ValidationError is a DecodeError
    if not isinstance(whole, Measurement) or whole.test_name != test:
        return None
    return whole


def _put_back(
    keys: TestKeys | None, data: bytes, shorter: bytes, places: dict[int, tuple[int, int]]
) -> bool:
    """Each cut page back in its response, as a view of `data`. A placeholder is told by its
    place in `shorter` (`offset_in`), so no text a probe writes can pass for one. Any other
    placeholder was skipped by msgspec, or failed the decode, unless it lies in what msgspec
    kept as raw JSON (the network events, a page that is an object, a list of headers): then
    False, and the measurement is decoded again whole."""
    if not isinstance(keys, Primitives):
        return True  # keys of a test in `_CUT` keep no raw JSON then
    view = memoryview(data)
    kept: list[msgspec.Raw] = [keys.network_events]
    for transaction in keys.requests or ():
        response = transaction.response
        if response is None:
            continue
        kept.append(response.headers_list)
        span = places.get(offset_in(response.body, shorter))
        if span is None:
            kept.append(response.body)
        else:
            response.body = msgspec.Raw(view[span[0] : span[1]])
    cuts = list(places)
    for raw in kept:
        at = offset_in(raw, shorter)
        following = bisect_left(cuts, at)
        if at >= 0 and following < len(cuts) and cuts[following] < at + len(raw):
            return False
    return True


def _check(base: Measurement) -> tuple[datetime, int]:
    """Refuse what no measurement has, in the order the reasons have always been given;
    returns the start time and the AS number, parsed."""
    start_time = _parse_time(base.measurement_start_time)
    probe_asn = parse_asn(base.probe_asn)
    if not _CC.fullmatch(base.probe_cc):
        raise InvalidMeasurement(f"probe_cc {base.probe_cc!r} is not a two-letter country code")
    if not base.test_name:
        raise InvalidMeasurement("test_name is empty")
    return start_time, probe_asn


def _parsed(
    data: bytes, base: Measurement, keys: TestKeys | None, start_time: datetime, probe_asn: int
) -> ParsedMeasurement:
    """The checked base keys and test_keys, normalised for the pipeline."""
    uid = base.measurement_uid
    computed = not uid
    if not uid:
        uid = measurement_uid_for(data, start_time, base.probe_cc, base.test_name)
    inp = base.input
    if isinstance(inp, list):
        inp = inp[0] if inp else None
    return ParsedMeasurement(
        uid=uid,
        uid_computed=computed,
        base=base,
        start_time=start_time,
        probe_asn=probe_asn,
        input=inp or None,
        known_test=base.test_name in TEST_KEYS,
        keys=keys,
        size=len(data),
    )


def _is_null(raw: msgspec.Raw) -> bool:
    view = memoryview(raw)  # no copy of what may be megabytes of test_keys
    return len(view) == 4 and view.tobytes() == b"null"


def measurement_uid_for(data: bytes, start_time: datetime, probe_cc: str, test_name: str) -> str:
    """OONI's measurement_uid, as its collector assigns it on submission.

    OONI's API writes ``{timestamp}_{probe_cc}_{test name without underscores}_{hash}`` where the
    hash is the first 16 hex digits of the SHA-512 of the submitted bytes. Its timestamp is the
    time of reception, which we do not know for a measurement that arrives without a uid; we use
    the measurement's start time instead, so that ingesting the same bytes twice gives the same
    uid (idempotence) while keeping OONI's shape and hash.
    """
    digest = hashlib.sha512(data).hexdigest()[:16]
    stamp = start_time.strftime("%Y%m%d%H%M%S.%f")
    return f"{stamp}_{probe_cc}_{test_name.replace('_', '')}_{digest}"


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidMeasurement(
            f"measurement_start_time {value[:40]!r} is not a time like '2024-05-01 12:00:00'"
        ) from None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
            raise InvalidMeasurement(
                f"measurement_start_time {value[:40]!r} is out of range in UTC"
            ) from None
    return parsed


def parse_asn(value: str | int) -> int:
    if isinstance(value, int):
        if 0 <= value < 2**32:
            return value
    else:
        match = _ASN.fullmatch(value.strip())
        if match and int(match.group(1)) < 2**32:
            return int(match.group(1))
    raise InvalidMeasurement(f"probe_asn {str(value)[:40]!r} is not an AS number like 'AS12345'")
