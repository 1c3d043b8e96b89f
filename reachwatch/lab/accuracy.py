"""How often the pipeline gets the lab's censorship right: each verdict the pipeline stored
for a lab run is held against the scenario's expectations (written by hand in the scenario
file, never derived from the pipeline), and the matrix technique x target is written out.

A row that no expectation covers is `unchecked`; the accuracy matrix counts those as misses
too: it must say what every (network, target, path) ought to give, so that a false positive
cannot hide in a cell nobody wrote down."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .scenario import Expectation, Scenario

Outcome = tuple[str, str | None]  # (verdict, technique)


@dataclass
class Cell:
    """One (network, target, path): what was expected, what the pipeline said."""

    network: str
    target: str
    via: str | None
    expected: list[Expectation] = field(default_factory=list)
    seen: Counter[Outcome] = field(default_factory=Counter)
    misses: Counter[Outcome] = field(default_factory=Counter)
    unchecked: Counter[Outcome] = field(default_factory=Counter)

    @property
    def rows(self) -> int:
        """Rows an expectation covered."""
        return sum(self.seen.values()) - sum(self.unchecked.values())

    @property
    def correct(self) -> int:
        return self.rows - sum(self.misses.values())


@dataclass
class Score:
    scenario: Scenario
    cells: dict[tuple[str, str, str | None], Cell]

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.cells.values())

    @property
    def correct(self) -> int:
        return sum(c.correct for c in self.cells.values())

    @property
    def unchecked(self) -> int:
        return sum(sum(c.unchecked.values()) for c in self.cells.values())

    def missed(self) -> list[Cell]:
        return [c for c in self.cells.values() if c.misses]

    def uncovered(self) -> list[Cell]:
        """Cells with rows no expectation covers, or with no row at all."""
        return [c for c in self.cells.values() if c.unchecked or not c.seen]


def score(scenario: Scenario, rows: Iterable[dict[str, Any]]) -> Score:
    """Hold each verdict row (as `reachwatch.store.verdict_rows` gives them) against the
    expectations covering its network, target, path and time."""
    by_asn = {f"AS{n.asn}": n.name for n in scenario.networks}
    targets = set(scenario.targets)
    cells: dict[tuple[str, str, str | None], Cell] = {}
    paths: list[str | None] = [None, "proxy"] if scenario.proxy else [None]
    for network in scenario.networks:
        for target in scenario.targets:
            for via in paths:
                cells[(network.name, target, via)] = Cell(network.name, target, via)
    for expectation in scenario.expect:
        cells[(expectation.network, expectation.target, expectation.via)].expected.append(
            expectation
        )
    for row in rows:
        name = by_asn.get(row["probe_asn"])
        if name is None or row["target"] not in targets:
            continue  # another scenario's, or a feature the scenario did not ask about
        via = "proxy" if row.get("via") else None
        cell = cells[(name, row["target"], via)]
        outcome: Outcome = (row["verdict"], row["technique"])
        cell.seen[outcome] += 1
        at = datetime.fromisoformat(row["measurement_start_time"]).replace(tzinfo=UTC)
        covering = [e for e in cell.expected if e.window.active(at)]
        if not covering:
            cell.unchecked[outcome] += 1
        elif not all(_meets(e, outcome) for e in covering):
            cell.misses[outcome] += 1
    return Score(scenario, cells)


def _meets(expectation: Expectation, outcome: Outcome) -> bool:
    verdict, technique = outcome
    if verdict != expectation.verdict:
        return False
    return expectation.technique is None or expectation.technique == technique


def _label(outcome: Outcome) -> str:
    verdict, technique = outcome
    return f"{verdict} {technique}" if technique else verdict


def _expected(cell: Cell) -> str:
    return "; ".join(_label((e.verdict, e.technique)) for e in cell.expected) or "(no expectation)"


def matrix_markdown(result: Score, command: str) -> str:
    """The accuracy table: a row per target, a column per network (one technique each in the
    accuracy scenario), for each path; every miss listed under it with its expectation's note."""
    scenario = result.scenario
    paths: list[str | None] = [None, "proxy"] if scenario.proxy else [None]
    total = result.rows + result.unchecked
    lines = [
        "# Lab accuracy",
        "",
        f"Made by `{command}` from the scenario `{scenario.name}` "
        f"(`reachwatch/lab/scenarios/{scenario.path.name}`): each network of the lab has one "
        "censor technique applied to every target it can touch; the probe measured every "
        "target from every network, directly and through the lab's proxy outside the censor; "
        "the pipeline's verdicts (not the probe's) are held against the expectations written "
        "in the scenario. A cell shows the technique of a `blocked` verdict, or the verdict "
        "(`ok`, `down`); ✗ marks a miss, with what was expected.",
        "",
        f"**{result.correct}/{total} verdicts as expected "
        f"({100 * result.correct / max(total, 1):.1f}%)**, over {len(scenario.targets)} "
        f"targets x {len(scenario.networks)} networks x {len(paths)} paths, "
        f"{len(scenario.times())} runs each.",
        "",
    ]
    for via in paths:
        heading = "through the proxy outside the censor" if via else "direct"
        lines += [f"## {heading.capitalize()}", ""]
        lines.append("| target | " + " | ".join(n.name for n in scenario.networks) + " |")
        lines.append("|---|" + "---|" * len(scenario.networks))
        for target in scenario.targets:
            cells = [result.cells[(n.name, target, via)] for n in scenario.networks]
            lines.append(f"| `{target}` | " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    lines += ["## Misses", ""]
    if not result.missed() and not result.uncovered():
        lines.append("None: every verdict was the expected one.")
    for cell in result.uncovered():
        got = ", ".join(f"{_label(o)} x{n}" for o, n in sorted(cell.unchecked.items(), key=str))
        lines.append(f"- {cell.network}, `{cell.target}`{' via proxy' if cell.via else ''}: "
                     f"no expectation covers {got or 'it, and nothing was measured'}.")  # fmt: skip
    for cell in result.missed():
        notes = "; ".join(e.note for e in cell.expected if e.note) or "(not explained)"
        got = ", ".join(f"{_label(o)} x{n}" for o, n in sorted(cell.misses.items(), key=str))
        lines.append(
            f"- {cell.network}, `{cell.target}`{' via proxy' if cell.via else ''}: expected "
            f"{_expected(cell)}, got {got}. {notes}"
        )
    return "\n".join(lines) + "\n"


def _cell(cell: Cell) -> str:
    if not cell.seen:
        return "✗ not measured"
    shown = " / ".join(technique or verdict for verdict, technique in sorted(cell.seen, key=str))
    if cell.unchecked:
        return f"✗ {shown} (unchecked)"
    return f"✗ {shown} (expected {_expected(cell)})" if cell.misses else shown
