"""Build the accuracy rows and docs/accuracy.md.

python -m tests.accuracy.report          # rewrite docs/accuracy.md
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import orjson

from reachwatch.model import parse_measurement
from reachwatch.pipeline.verdicts import Verdict, verdicts_of

from .expectations import GENERATED, OUR_OUTCOME, REAL, Expected
from .ooni_classic import classic_verdict

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "ooni"
ANALYSIS = ROOT / "tests" / "fixtures" / "ooni-analysis"
DOC = ROOT / "docs" / "accuracy.md"

# OONI's blocking types and the techniques of ours each one covers
OONI_TYPES = {
    "dns": ("dns.",),
    "tcp_ip": ("tcp.",),
    "http-failure": ("tcp.", "tls.", "http.reset", "http.timeout", "throttled"),
    "http-diff": ("http.diff", "http.blockpage"),
}


@dataclass
class Row:
    group: str
    name: str
    target: str
    ours: Verdict
    ooni: str
    ooni_source: str
    agrees: bool
    argument: str = ""
    expected: Expected | None = None

    @property
    def meets_expectation(self) -> bool:
        e = self.expected
        return e is None or (self.ours.verdict, self.ours.technique) == (e.verdict, e.technique)


def _verdicts(path: Path) -> list[Verdict]:
    return verdicts_of(parse_measurement(path.read_bytes()))


def _classic(kind: str, name: str) -> str:
    return classic_verdict(orjson.loads((ANALYSIS / kind / f"{name}.classic.json").read_bytes()))


def agrees_with_classic(ours: Verdict, ooni: str) -> bool:
    """Same class, and for blocking a technique within OONI's blocking type."""
    if not ooni.startswith("blocked:"):
        return ours.verdict == ooni
    kinds = OONI_TYPES.get(ooni.split(":", 1)[1], ())
    return ours.verdict == "blocked" and (ours.technique or "").startswith(kinds)


def generated_rows() -> list[Row]:
    rows = []
    for name, expected in sorted(GENERATED.items()):
        (ours,) = _verdicts(SAMPLES / "minipipeline" / "generated" / name / "measurement.json")
        ooni = _classic("generated", name)
        rows.append(
            Row(
                "generated",
                name,
                ours.target,
                ours,
                ooni,
                "classic analysis",
                agrees_with_classic(ours, ooni),
                expected.argument,
                expected,
            )
        )
    return rows


def real_rows() -> list[Row]:
    rows = []
    for folder in sorted((SAMPLES / "minipipeline" / "manual").iterdir()):
        (ours,) = _verdicts(folder / "measurement.json")
        ooni = _classic("manual", folder.name)
        outcome = {"ok": "no anomaly", "down": "no anomaly", "error": "failure"}.get(
            ooni, "anomaly"
        )
        rows.append(
            Row(
                "manual",
                folder.name,
                ours.target,
                ours,
                f"{outcome} ({ooni})",
                "classic analysis",
                OUR_OUTCOME[ours.verdict] == outcome,
            )
        )
    for path in sorted((SAMPLES / "fastpath").glob("*.json")):
        for ours in _verdicts(path):
            ooni = REAL.get((path.name, ours.target)) or REAL.get((path.name, "*"))
            if ooni is None:
                raise KeyError(f"no OONI verdict recorded for {path.name} {ours.target}")
            rows.append(
                Row(
                    "fastpath",
                    path.name,
                    ours.target,
                    ours,
                    ooni.outcome,
                    ooni.source,
                    OUR_OUTCOME[ours.verdict] == ooni.outcome,
                    ooni.argument,
                )
            )
    return rows


def _pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f}%)" if whole else "0/0"


def summary(generated: list[Row], real: list[Row]) -> dict[str, tuple[int, int]]:
    called = [r for r in real if not r.ooni.startswith("failure")]
    censorship = [
        (OUR_OUTCOME[r.ours.verdict] == "anomaly") == r.ooni.startswith("anomaly") for r in real
    ]
    return {
        "generated: verdict and technique as the scenario's name describes": (
            sum(r.meets_expectation for r in generated),
            len(generated),
        ),
        "generated: agreement with OONI's classic analysis": (
            sum(r.agrees for r in generated),
            len(generated),
        ),
        "real: same outcome as OONI (anomaly / no anomaly / failure)": (
            sum(r.agrees for r in real),
            len(real),
        ),
        "real: same outcome where OONI made a call (anomaly or not)": (
            sum(r.agrees for r in called),
            len(called),
        ),
        "real: same answer to 'is it blocked?' (anomaly vs everything else)": (
            sum(censorship),
            len(censorship),
        ),
    }


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def render(generated: list[Row], real: list[Row]) -> str:
    out = [
        "# Accuracy of reachwatch's verdicts",
        "",
        "Made by `python -m tests.accuracy.report` from the bundled real OONI data "
        "(`samples/`, CC BY-NC-SA 4.0); `tests/test_accuracy.py` fails if this file is stale, if a "
        "scenario's verdict changes, or if a disagreement with OONI has no argument.",
        "",
        "| measure | result |",
        "| --- | --- |",
    ]
    for label, (part, whole) in summary(generated, real).items():
        out.append(f"| {label} | {_pct(part, whole)} |")
    out += [
        "",
        "How OONI's side is read: for the 50 generated scenarios and probe-cli's `manual/` "
        "measurements, OONI's classic web_connectivity decision replayed over OONI's own "
        "`analysis_classic.json` (`tests/accuracy/ooni_classic.py`; it reproduces the probe's "
        "`blocking`/`accessible` on all 50 scenarios). For the fastpath files, the outcome OONI's "
        "fastpath tests assert for that file (the score OONI Explorer shows), else the probe's own "
        "`blocking`. OONI has no *down*: a site down is *no anomaly* there, so our `down` and "
        "`ok` both count as *no anomaly*; our `error` is OONI's *failure*. A blocking verdict "
        "agrees with OONI's when our technique is one of the kinds OONI's type covers "
        "(`dns` -> `dns.*`; `tcp_ip` -> `tcp.*`; `http-failure` -> any failure while fetching; "
        "`http-diff` -> `http.diff`, `http.blockpage`).",
        "",
        "## 50 labelled scenarios (emulated censorship, OONI probe-cli)",
        "",
        "| scenario | reachwatch | technique | OONI | agrees | why we differ |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in generated:
        out.append(
            f"| {r.name} | {r.ours.verdict} | {r.ours.technique or ''} | {r.ooni} | "
            f"{'yes' if r.agrees else 'no'} | {_cell(r.argument)} |"
        )
    out += [
        "",
        "## Real measurements (OONI fastpath test data, probe-cli manual cases)",
        "",
        "| measurement | target | reachwatch | technique | OONI | OONI's source | agrees "
        "| why we differ |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in real:
        out.append(
            f"| {r.group}/{r.name} | {_cell(r.target)} | {r.ours.verdict} "
            f"| {r.ours.technique or ''} | {r.ooni} | {r.ooni_source} "
            f"| {'yes' if r.agrees else 'no'} | {_cell(r.argument)} |"
        )
    out += [
        "",
        "## Reasons reachwatch gave",
        "",
        "Every verdict carries a one-line reason that can be checked against the observations:",
        "",
        "| measurement | target | reason |",
        "| --- | --- | --- |",
    ]
    for r in generated + real:
        out.append(f"| {r.name} | {_cell(r.target)} | {_cell(r.ours.reason)} |")
    return "\n".join(out) + "\n"


def main() -> None:
    text = render(generated_rows(), real_rows())
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text)
    sys.stdout.write(f"wrote {DOC.relative_to(ROOT)}\n")


if __name__ == "__main__":
    main()
