"""Blocking events from verdict series: start and end with their bounds, robustness to noise,
gaps and errors, arrival order, and the grouping of coinciding networks."""

from __future__ import annotations

import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from reachwatch.answers import Observation, detect, events_for, network_events
from reachwatch.store import Store

from .answers_history import Row, series, write
from .conftest import reachwatch

T0 = datetime(2017, 4, 17)
BLOCK = (datetime(2017, 5, 8), datetime(2017, 5, 22))


def obs(verdicts: str, per_day: int = 4) -> list[Observation]:
    """A series from a string: `.` ok, `X` blocked."""
    step = timedelta(days=1) / per_day
    return [
        Observation(
            (T0 + k * step).replace(tzinfo=UTC), "blocked" if c == "X" else "ok", None, f"u{k:04d}"
        )
        for k, c in enumerate(verdicts)
    ]


def test_a_block_is_found_from_its_first_to_its_last_blocked_measurement() -> None:
    assert detect(obs("." * 20 + "X" * 12 + "." * 20)) == [(20, 31)]
    (event,) = network_events("AZ", 29049, "Delta Telecom", "skype/calls",
                              obs("." * 20 + "X" * 12 + "." * 20))  # fmt: skip
    assert event.start == T0.replace(tzinfo=UTC) + timedelta(hours=6 * 20)
    assert event.start_after == event.start - timedelta(hours=6)  # the last ok before
    assert event.end == event.end_after + timedelta(hours=6)  # the first ok after
    assert event.blocked == 12 and event.confidence == 1.0 and not event.ongoing


def test_noise_neither_makes_nor_splits_an_event() -> None:
    assert detect(obs("." * 15 + "X" + "." * 15)) == []  # one flaky measurement
    assert detect(obs("." * 10 + "X" + "." * 3 + "X" + "." * 10)) == []
    assert detect(obs("." * 10 + "XXXXXX.XXXXXX" + "." * 10)) == [(10, 22)]  # one ok inside


def test_a_series_that_ends_blocked_is_ongoing_and_one_that_starts_blocked_has_no_lower_bound() -> (
    None
):
    (event,) = network_events("AZ", 1, None, "t", obs("X" * 12 + "." * 10))
    assert event.start_after is None and event.end is not None
    (event,) = network_events("AZ", 1, None, "t", obs("." * 10 + "X" * 12))
    assert event.ongoing and event.end is None


@given(st.integers(min_value=0, max_value=2**32 - 1))
@settings(max_examples=10, deadline=None)
def test_the_same_verdicts_give_the_same_events_whatever_the_order_of_arrival(seed: int) -> None:
    rows = series(29049, "skype/calls", T0, 30, 3, BLOCK) + series(
        31721, "skype/calls", T0, 30, 2, (BLOCK[0] + timedelta(hours=20), BLOCK[1])
    )
    shuffled = rows[:]
    random.Random(seed).shuffle(shuffled)
    found = []
    with tempfile.TemporaryDirectory() as folder:
        for order, name in ((rows, "a"), (shuffled, "b")):
            db = Path(folder) / f"{name}.duckdb"
            write(db, order)
            with Store(db, read_only=True) as store:
                found.append(events_for(store, cc="AZ"))
    assert found[0] == found[1] and len(found[0]) == 1


def test_coinciding_networks_make_one_event_and_distant_ones_two(tmp_path: Path) -> None:
    late = (BLOCK[0] + timedelta(days=6), BLOCK[1])
    write(tmp_path / "r.duckdb", series(29049, "skype/calls", T0, 42, 2, BLOCK)
          + series(31721, "skype/calls", T0, 42, 2, (BLOCK[0] + timedelta(hours=12), BLOCK[1]))
          + series(28787, "skype/calls", T0, 42, 2, late))  # fmt: skip
    with Store(tmp_path / "r.duckdb", read_only=True) as store:
        first, second = events_for(store, cc="AZ")
    assert first.networks == ("AS29049 Delta Telecom", "AS31721 Azercell")
    assert first.start == BLOCK[0].replace(tzinfo=UTC)
    assert first.end == BLOCK[1].replace(tzinfo=UTC)
    assert second.networks == ("AS28787 Baktelekom",)
    assert len(first.measurements) == 2 * 28 - 1  # both networks' blocked measurements


def test_errors_and_tunnels_are_not_evidence_and_gaps_are_bridged(tmp_path: Path) -> None:
    rows = series(29049, "whatsapp/calls", T0, 42, 4, BLOCK)
    middle = BLOCK[0] + timedelta(days=5)
    rows = [r for r in rows if not middle <= r.at < middle + timedelta(days=3)]  # a gap
    rows += [Row(29049, "whatsapp/calls", BLOCK[0] + timedelta(days=2, minutes=3), "error"),
             Row(29049, "whatsapp/calls", BLOCK[0] + timedelta(days=2, minutes=4), "down"),
             Row(29049, "whatsapp/calls", BLOCK[0] + timedelta(days=2, minutes=5), "ok",
                 via="socks5://198.18.0.10:1080")]  # fmt: skip
    write(tmp_path / "r.duckdb", rows)
    with Store(tmp_path / "r.duckdb", read_only=True) as store:
        (event,) = events_for(store, cc="AZ", targets=["whatsapp/calls"])
    assert (event.start, event.end) == (BLOCK[0].replace(tzinfo=UTC), BLOCK[1].replace(tzinfo=UTC))
    assert event.technique == "udp.timeout"


def test_events_command(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    write(db, series(29049, "skype/calls", T0, 42, 2, BLOCK))
    done = reachwatch("events", "--db", str(db), "--cc", "az", "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    (record,) = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert record["start"] == "2017-05-08T00:00:00Z" and record["end"] == "2017-05-22T00:00:00Z"
    assert record["start_after"] == "2017-05-07T12:00:00Z"
    assert record["end_after"] == "2017-05-21T12:00:00Z"
    assert record["networks"] == ["AS29049 Delta Telecom"] and record["ongoing"] is False
    assert len(record["measurements"]) == 28 and record["per_network"][0]["blocked"] == 28
    table = reachwatch("events", "--db", str(db))
    assert "skype/calls" in table.stdout and "udp.timeout" in table.stdout
