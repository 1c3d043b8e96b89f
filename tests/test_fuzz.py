"""Hostile input, as bench/fuzz.py makes it, with a few examples per target so CI runs it: the
parser, the ingest and the scenario and claims loaders accept each input or refuse it with a
reason; the ingest's counts reconcile, its quarantine holds every bad record with the parser's
reason and nothing stored before changes. Then the harness itself: it must see a crash, a
refusal without a reason, rows that went and a quarantine that lost records."""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from pathlib import Path

import pytest

from bench import fuzz
from reachwatch import InputError, InvalidMeasurement
from reachwatch.model import ParsedMeasurement, parse_measurement
from reachwatch.pipeline import IngestReport, ingest
from reachwatch.store import Store

SEED = 1  # not the benchmark's 0: CI adds other inputs to the ones the benchmark tries


def clean(tally: fuzz.Tally, at_least: int) -> None:
    """No failure, and both ways out taken: a run that refuses everything proves little."""
    assert [(f / "problem.txt").read_text() for f in tally.failures] == []
    assert tally.inputs >= at_least
    assert tally.accepted + tally.refused == tally.inputs
    assert tally.accepted > 0 and tally.refused > 0


def test_the_parser_accepts_or_refuses_with_a_reason(tmp_path: Path) -> None:
    clean(fuzz.fuzz_parser(400, SEED, tmp_path), 400)


def test_the_ingest_reconciles_quarantines_with_the_reason_and_keeps_what_it_stored(
    tmp_path: Path,
) -> None:
    tally = fuzz.fuzz_pipeline(8, SEED, tmp_path, batch=20)
    clean(tally, 8 * 20)


def test_the_scenario_loader_loads_or_refuses_with_file_and_reason(tmp_path: Path) -> None:
    clean(fuzz.fuzz_scenario(200, SEED, tmp_path), 200)


def test_the_claims_loader_loads_or_refuses_with_file_and_reason(tmp_path: Path) -> None:
    clean(fuzz.fuzz_claims(200, SEED, tmp_path), 200)


# the harness catches what it is there to catch


def test_a_crash_is_a_failure_with_its_input_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fragile(data: bytes) -> ParsedMeasurement:
        if b'"test_name":"web_connectivity"' in data:
            raise KeyError("web_connectivity")
        return parse_measurement(data)

    monkeypatch.setattr(fuzz, "parse_measurement", fragile)
    tally = fuzz.fuzz_parser(200, SEED, tmp_path)
    assert tally.failures and tally.accepted  # the others still run, and count
    for folder in tally.failures:
        assert b'"test_name":"web_connectivity"' in (folder / "input.json").read_bytes()
        assert "KeyError: 'web_connectivity'" in (folder / "problem.txt").read_text()


def test_a_refusal_without_a_reason_is_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def curt(data: bytes) -> ParsedMeasurement:
        raise InvalidMeasurement(" ")

    monkeypatch.setattr(fuzz, "parse_measurement", curt)
    tally = fuzz.fuzz_parser(20, SEED, tmp_path)
    assert len(tally.failures) == tally.inputs == 20
    assert "refused without a reason" in (tally.failures[0] / "problem.txt").read_text()


def test_an_ingest_that_loses_quarantined_records_is_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def careless(paths: Iterable[str | PathLike[str]], store: Store) -> IngestReport:
        report = ingest(paths, store)
        store.execute("DELETE FROM quarantine")
        return report

    monkeypatch.setattr(fuzz, "ingest", careless)
    tally = fuzz.fuzz_pipeline(2, SEED, tmp_path, batch=20)
    assert len(tally.failures) == 2
    assert "is not in quarantine" in (tally.failures[0] / "problem.txt").read_text()


def test_an_ingest_that_changes_what_was_stored_is_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def careless(paths: Iterable[str | PathLike[str]], store: Store) -> IngestReport:
        earlier = store.execute("SELECT measurement_uid FROM verdicts LIMIT 1").fetchone()
        report = ingest(paths, store)
        if earlier:
            store.execute("UPDATE verdicts SET reason = 'x' WHERE measurement_uid = ?", [*earlier])
        return report

    monkeypatch.setattr(fuzz, "ingest", careless)
    tally = fuzz.fuzz_pipeline(3, SEED, tmp_path, batch=20)
    assert tally.failures
    problems = (tally.failures[0] / "problem.txt").read_text()
    assert "verdicts rows stored before changed or went" in problems


def test_a_loader_refusal_must_name_the_file(tmp_path: Path) -> None:
    def vague(path: Path) -> object:
        raise InputError("something is wrong")

    tally = fuzz.Tally("scenario", tmp_path)
    fuzz.fuzz_loader(tally, (fuzz.SCENARIO,), vague, 10, SEED)
    assert len(tally.failures) == 10
    assert "refused without `file: reason`" in (tally.failures[0] / "problem.txt").read_text()
