"""Accuracy on real data (docs/accuracy.md): scenarios, OONI's own verdicts, every miss argued."""

from __future__ import annotations

import pytest

from tests.accuracy.expectations import GENERATED
from tests.accuracy.report import DOC, Row, generated_rows, real_rows, render, summary

GENERATED_ROWS = generated_rows()
REAL_ROWS = real_rows()


@pytest.mark.parametrize("row", GENERATED_ROWS, ids=lambda r: r.name)
def test_scenario_gets_the_verdict_its_name_describes(row: Row) -> None:
    assert row.expected is not None
    assert (row.ours.verdict, row.ours.technique) == (row.expected.verdict, row.expected.technique)
    assert row.ours.reason


@pytest.mark.parametrize("row", GENERATED_ROWS, ids=lambda r: r.name)
def test_scenario_agrees_with_ooni_or_the_difference_is_argued(row: Row) -> None:
    if row.agrees:
        assert not row.argument, "an argument is only for a disagreement"
    else:
        assert len(row.argument) > 80, f"{row.name}: we differ from OONI ({row.ooni}) unargued"


def test_every_labelled_scenario_is_covered() -> None:
    assert len(GENERATED) == 50 == len(GENERATED_ROWS)


@pytest.mark.parametrize("row", REAL_ROWS, ids=lambda r: f"{r.name}:{r.target}")
def test_real_measurement_agrees_with_ooni_or_the_difference_is_argued(row: Row) -> None:
    if not row.agrees:
        assert len(row.argument) > 80, f"{row.name}: we differ from OONI ({row.ooni}) unargued"


def test_agreement_with_ooni_on_real_measurements() -> None:
    figures = summary(GENERATED_ROWS, REAL_ROWS)
    called, called_total = figures["real: same outcome where OONI made a call (anomaly or not)"]
    blocked, total = figures["real: same answer to 'is it blocked?' (anomaly vs everything else)"]
    assert total >= 38
    assert called / called_total >= 0.95
    assert blocked / total >= 0.95


def test_accuracy_document_is_up_to_date() -> None:
    assert DOC.read_text() == render(GENERATED_ROWS, REAL_ROWS), (
        "docs/accuracy.md is stale: run `python -m tests.accuracy.report`"
    )
