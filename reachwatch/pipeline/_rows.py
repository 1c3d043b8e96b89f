"""A chunk's records -> rows in its columns: the loop every record goes through in analysis.
Compiled by mypyc (setup.py), like the analysis it calls; `_ingest` makes the tables."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .._errors import InvalidMeasurement
from ..archive import RawRecord, gzip_member
from ..model import Primitives, parse_measurement
from . import _columns
from ._observations import Observation, observations_of
from .fingerprints import Fingerprints
from .verdicts import verdicts_of


class Filled:
    """What `fill` leaves beside the rows it put in the columns: per measurement row, its
    compressed bytes (or None if its gzip input is kept) and that input and line; per
    observation and verdict row, its measurement's row; and what was rejected, and why."""

    def __init__(self) -> None:
        self.read = 0
        self.members: list[bytes | None] = []
        self.cans: list[str | None] = []
        self.lines: list[int] = []
        self.observed_in: list[int] = []
        self.judged_in: list[int] = []
        self.rejected: list[tuple[RawRecord, str]] = []


Rows = tuple[tuple[Any, ...], list[Observation], list[tuple[Any, ...]]]
"""A measurement's row, observations and verdicts."""


def fill(
    records: Iterable[RawRecord],
    rows_of: Callable[[RawRecord, Fingerprints], Rows],
    fps: Fingerprints,
    archived: bool,
    measurements: _columns.Columns,
    observations: _columns.Columns,
    verdicts: _columns.Columns,
) -> Filled:
    """`_ingest.analyse`'s loop: every record's rows (`rows_of`: `rows`, unless a test puts a
    faulty analysis there) into the columns, or the record rejected with its reason."""
    filled = Filled()
    for record in records:
        filled.read += 1
        if record.problem:
            filled.rejected.append((record, record.problem))
            continue
        row = len(measurements)
        try:
            measurement, its_observations, its_verdicts = rows_of(record, fps)
            _extend((measurements, [measurement]), (observations, its_observations),
                    (verdicts, its_verdicts))  # fmt: skip
        except InvalidMeasurement as exc:
            filled.rejected.append((record, exc.reason))
            continue
        except Exception as exc:  # a bug must not lose the record: it goes to quarantine
            filled.rejected.append((record, f"analysis failed: {type(exc).__name__}: {exc}"))
            continue
        kept = record.line > 0 or archived
        filled.members.append(None if kept else gzip_member(record.data))
        filled.cans.append(record.source if record.line else None)
        filled.lines.append(record.line)
        filled.observed_in.extend([row] * len(its_observations))
        filled.judged_in.extend([row] * len(its_verdicts))
    return filled


def _extend(*tables: tuple[_columns.Columns, list[Any]]) -> None:
    """A measurement's rows into their tables: into all of them, or into none."""
    done: list[_columns.Columns] = []
    try:
        for columns, its_rows in tables:
            columns.extend(its_rows)
            done.append(columns)
    except BaseException:
        for columns in done:
            columns.undo()
        raise


def rows(record: RawRecord, fps: Fingerprints) -> Rows:
    """One measurement's row, observations and verdicts, in the store's column order."""
    pm = parse_measurement(record.data)
    base = pm.base
    keys = pm.keys
    via, run_id = (keys.x_via, keys.x_run) if isinstance(keys, Primitives) else (None, None)
    verdicts = [
        (pm.uid, v.target, v.verdict, v.technique, v.reason, v.probe_says, base.test_name,
         base.probe_cc, pm.probe_asn, pm.start_time, via, run_id, base.probe_network_name)
        for v in verdicts_of(pm, fps)
    ]  # fmt: skip
    measurement = (
        pm.uid,
        pm.uid_computed,
        base.report_id,
        base.test_name,
        base.test_version,
        pm.known_test,
        base.probe_cc,
        pm.probe_asn,
        base.probe_network_name,
        pm.input,
        pm.start_time,
        base.software_name,
        base.software_version,
        base.resolver_asn,
        len(record.data),
        f"{record.source}:{record.locator}",
    )
    return measurement, observations_of(pm), verdicts
