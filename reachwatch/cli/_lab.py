"""`reachwatch lab ...` and `reachwatch demo`: run a censored network in namespaces, measure
it with the real probe, and see what the pipeline makes of it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..pipeline import ingest as run_ingest
from ..store import DB_ENV, DEFAULT_DB, Store, verdict_rows
from ..store import status as status_query
from ._answers import events
from ._common import StatusFormat, console, errors, print_status
from ._serve import serve

if TYPE_CHECKING:
    from ..lab.accuracy import Score
    from ..lab.run import LabRun
    from ..lab.scenario import Scenario

lab_app = typer.Typer(
    help="A censored network in namespaces (needs root): run scenarios, measure accuracy.",
    no_args_is_help=True,
)
SCENARIOS = Path(__file__).parent.parent / "lab" / "scenarios"


def _run(scenario: Scenario, out: Path) -> LabRun:
    from ..lab.run import run_scenario

    columns = (TextColumn("[bold]lab[/] {task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total} runs"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=errors, transient=True) as bar:
        task = bar.add_task(scenario.name, total=len(scenario.times()))
        result = run_scenario(
            scenario, out, progress=lambda done, total: bar.update(task, completed=done)
        )
    summary = result.summary
    errors.print(
        f"{scenario.name}: {summary['measurements']} measurements from "
        f"{len(summary['networks'])} networks, {summary['runs_per_network']} runs each "
        f"({summary['first_run']} to {summary['last_run']}), in {summary['wall_seconds']}s "
        f"-> {result.measurements}"
    )
    return result


def _ingest_and_score(scenario: Scenario, result: LabRun, db: Path) -> Score:
    from ..lab.accuracy import score

    with Store(db) as store:
        report = run_ingest([result.measurements], store)
        errors.print(f"ingested {report.stored} new measurements into {db}")
        return score(scenario, verdict_rows(store))


def _print_score(result: Score) -> None:
    if not result.scenario.expect:
        return
    share = 100 * result.correct / max(result.rows, 1)
    console.print(f"[bold]expectations[/]: {result.correct}/{result.rows} verdicts as the "
                  f"scenario expects ({share:.1f}%); {result.unchecked} not covered by any"
                  )  # fmt: skip
    for cell in result.missed():
        via = " via proxy" if cell.via else ""
        got = ", ".join(f"{v} {t or ''}".strip() for v, t in cell.misses) or "no measurement"
        note = "; ".join(e.note for e in cell.expected if e.note)
        console.print(f"  miss: {cell.network} {cell.target}{via}: got {got}"
                      f"{' (' + note + ')' if note else ''}")  # fmt: skip


@lab_app.command("run")
def lab_run(
    scenario_file: Annotated[Path, typer.Argument(help="The scenario (YAML; docs/lab.md).")],
    out: Annotated[Path, typer.Option(help="Folder for measurements.jsonl and summary.json.")],
    db: Annotated[
        Path | None,
        typer.Option(
            "--db", envvar=DB_ENV, help="Ingest into this DuckDB file (default: OUT/lab.duckdb)."
        ),
    ] = None,
) -> None:
    """Build the scenario's networks and censors, run the probe schedule in simulated time,
    write the measurements as OONI JSONL, ingest them and check the scenario's expectations."""
    from ..lab.scenario import load_scenario

    scenario = load_scenario(scenario_file)  # refused here, before anything is built
    result = _run(scenario, out)
    _print_score(_ingest_and_score(scenario, result, db or out / "lab.duckdb"))


@lab_app.command("accuracy")
def lab_accuracy(
    out: Annotated[Path, typer.Option(help="Where the matrix goes (markdown).")] = Path(
        "docs/lab-accuracy.md"
    ),
    work: Annotated[
        Path | None, typer.Option(help="Keep the lab's files here (default: a temporary folder).")
    ] = None,
) -> None:
    """Every censor technique x every experiment (sites, apps, calls, through a proxy): the
    pipeline's verdicts against the expected ones, written as a matrix."""
    from ..lab.accuracy import matrix_markdown
    from ..lab.scenario import load_scenario

    scenario = load_scenario(SCENARIOS / "accuracy.yaml")
    with tempfile.TemporaryDirectory(prefix="reachwatch-lab-") as temporary:
        folder = work or Path(temporary)
        result = _run(scenario, folder)
        db = folder / "lab.duckdb"
        db.unlink(missing_ok=True)
        scored = _ingest_and_score(scenario, result, db)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(matrix_markdown(scored, "reachwatch lab accuracy"))
    _print_score(scored)
    console.print(f"matrix -> {out}")
    unexplained = [c for c in scored.missed() if not any(e.note for e in c.expected)]
    if unexplained or scored.uncovered():
        raise typer.Exit(1)


@lab_app.command("clean")
def lab_clean() -> None:
    """Remove what lab runs that were killed (kill -9) left behind: their namespaces."""
    from ..lab._netns import remove_stale

    removed = remove_stale()
    console.print(f"removed {len(removed)} namespaces" + (f": {', '.join(removed)}" if removed
                                                           else ""))  # fmt: skip


def demo(
    db: Annotated[
        Path,
        typer.Option("--db", envvar=DB_ENV, help=f"DuckDB file (default: {DEFAULT_DB})."),
    ] = Path(DEFAULT_DB),
    out: Annotated[Path, typer.Option(help="Folder for the lab's measurements.")] = Path(
        "demo-lab"
    ),
    serve_on: Annotated[
        int | None,
        typer.Option(
            "--serve",
            min=0,
            max=65535,
            metavar="PORT",
            help="Then serve the explorer and the API on the demo's data on this port.",
        ),
    ] = None,
) -> None:
    """Azerbaijan, spring 2017, re-enacted in the lab: two networks over six simulated weeks,
    WhatsApp and Skype calls blocked on one, Telegram's web client on the other, a proxy that
    restores both. Runs it (needs root), ingests it, prints the status and the events, and
    with --serve opens the explorer on it."""
    from ..lab.scenario import load_scenario

    scenario = load_scenario(SCENARIOS / "az-2017.yaml")
    result = _run(scenario, out)
    scored = _ingest_and_score(scenario, result, db)
    with Store(db, read_only=True) as store:
        rows = [r for r in status_query(store, cc=scenario.country) if "/" in r.target
                or r.target in scenario.targets]  # fmt: skip
    print_status(rows, StatusFormat.table, scenario.country)
    events(db=db, cc=scenario.country)
    _print_score(scored)
    table = Table(title="next", show_header=False)
    if serve_on is not None:
        where = f"http://127.0.0.1:{serve_on}"
        table.add_row(f"{where}/answer?subject=skype&cc=AZ&at=2017-05-15")
        table.add_row(f"{where}/answer?subject=telegram&cc=AZ&at=2017-05-28")
        table.add_row(f"{where}/country/AZ")
    table.add_row(f"reachwatch answer skype --cc AZ --at 2017-05-15 --db {db}")
    table.add_row(f"reachwatch answer telegram --cc AZ --at 2017-05-28 --db {db}")
    table.add_row(f"reachwatch verdicts --db {db} --cc AZ --target whatsapp/calls")
    console.print(table)
    if serve_on is not None:
        serve(db=db, port=serve_on)
