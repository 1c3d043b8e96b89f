"""OONI's base measurement (df-000) and the record the pipeline reads; `_parse` makes one from
bytes."""

from __future__ import annotations

from datetime import datetime

import msgspec

from ._testkeys import TestKeys


class Measurement(msgspec.Struct, kw_only=True, gc=False):
    """The base keys of every OONI measurement (its `test_keys` are typed per test)."""

    test_name: str
    measurement_start_time: str
    # OONI writes "ZZ"/"AS0" for an unknown country or network; very old probes omit them
    probe_cc: str = "ZZ"
    probe_asn: str | int = "AS0"
    probe_network_name: str | None = None
    input: str | list[str] | None = None
    measurement_uid: str | None = None
    report_id: str | None = None
    test_version: str | None = None
    test_start_time: str | None = None
    test_runtime: float | None = None
    software_name: str | None = None
    software_version: str | None = None
    data_format_version: str | None = None
    resolver_asn: str | None = None
    resolver_ip: str | None = None
    resolver_network_name: str | None = None


class ParsedMeasurement(msgspec.Struct, kw_only=True, gc=False):
    """A measurement ready for the pipeline: normalised keys plus the typed test_keys."""

    uid: str
    uid_computed: bool
    base: Measurement
    start_time: datetime
    probe_asn: int
    input: str | None
    known_test: bool
    keys: TestKeys | None
    size: int


class Envelope(Measurement, kw_only=True, gc=False):
    """The base keys and the test_keys left as bytes, to type once the test is known."""

    test_keys: msgspec.Raw
