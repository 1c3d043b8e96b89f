"""The `reachwatch` command. Every command that touches the store takes `--db` (or REACHWATCH_DB).

`--format jsonl|json` output is for machines and stays stable; `table` and `md` are for people.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .. import ReachwatchError
from ..store import DEFAULT_DB, Store, verdict_rows
from ..store import status as status_query
from ._common import (
    VERDICT_STYLE,
    CcFilter,
    DbOption,
    StatusFormat,
    TargetFilter,
    console,
    errors,
    print_status,
)

if TYPE_CHECKING:  # the probe's modules load only for the commands that use them
    from ..probe import NetConfig

app = typer.Typer(
    name="reachwatch",
    help="Is it blocked? Measurements, verdicts and the evidence behind them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# the options the probe and the test helper share: how they reach the network
ResolverOption = Annotated[
    str | None, typer.Option(help="Resolve through IP:PORT over UDP, not the system's.")
]
CAFileOption = Annotated[
    Path | None, typer.Option(help="Trust this CA file instead of the system's roots.")
]
TimeoutOption = Annotated[float, typer.Option(min=0.1, help="Seconds per operation.")]


class TableFormat(StrEnum):
    table = "table"
    jsonl = "jsonl"


@app.command()
def verdicts(
    db: DbOption = Path(DEFAULT_DB),
    cc: CcFilter = None,
    test: Annotated[str | None, typer.Option(help="Test name, e.g. web_connectivity.")] = None,
    target: Annotated[str | None, typer.Option(help="Target, e.g. whatsapp/messaging.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many rows.")] = None,
    fmt: Annotated[
        TableFormat, typer.Option("--format", help="table or jsonl.")
    ] = TableFormat.table,
) -> None:
    """List verdicts per measurement and target."""
    with Store(db, read_only=True) as store:
        rows = verdict_rows(store, cc=cc, test=test, target=target, limit=limit)
        if fmt is TableFormat.jsonl:
            out = sys.stdout.buffer
            for row in rows:
                out.write(orjson.dumps(row) + b"\n")
            return
        table = Table()
        names = ("time", "cc", "asn", "test", "target", "verdict", "technique", "via", "tunnel")
        for name in names:
            table.add_column(name)
        for row in rows:
            table.add_row(
                row["measurement_start_time"],
                row["probe_cc"],
                row["probe_asn"],
                row["test_name"],
                row["target"],
                f"[{VERDICT_STYLE[row['verdict']]}]{row['verdict']}",
                row["technique"] or "",
                row["via"] or "",
                row["circumvention"] or "",
            )
        console.print(table)


@app.command()
def status(
    db: DbOption = Path(DEFAULT_DB),
    cc: CcFilter = None,
    target: TargetFilter = None,
    fmt: Annotated[StatusFormat, typer.Option("--format", help="table, md or json.")] = (
        StatusFormat.table
    ),
) -> None:
    """Per target, the latest verdict on each network, with the counts behind it."""
    with Store(db, read_only=True) as store:
        rows = status_query(store, cc=cc, target=target)
    print_status(rows, fmt, cc)


@app.command()
def probe(
    urls: Annotated[list[str] | None, typer.Argument(help="URLs to measure.")] = None,
    input_file: Annotated[
        Path | None, typer.Option("--input-file", help="A Citizen Lab test list (CSV).")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="Measurements at once.")] = 8,
    output: Annotated[
        Path, typer.Option(help="Where the OONI measurements go (JSONL, appended).")
    ] = Path("measurements.jsonl"),
    helper: Annotated[
        str | None, typer.Option(help="Test helper URL (e.g. http://th.example:8780/).")
    ] = None,
    resolver: ResolverOption = None,
    cc: Annotated[
        str | None, typer.Option(help="The network's country code (default: looked up).")
    ] = None,
    asn: Annotated[
        str | None, typer.Option(help="The network's AS number, e.g. AS28707 (default: looked up).")
    ] = None,
    source_address: Annotated[
        str | None, typer.Option(help="Connect from this local address (an interface's).")
    ] = None,
    ca_file: CAFileOption = None,
    timeout: TimeoutOption = 10.0,
    collector: Annotated[
        str | None, typer.Option(help="Submit the measurements to this collector too.")
    ] = None,
    apps: Annotated[
        list[str] | None,
        typer.Option("--app", help="Measure an app's features (e.g. teams); repeatable."),
    ] = None,
    catalogue_file: Annotated[
        Path | None, typer.Option("--catalogue", help="App catalogue (default: the shipped one).")
    ] = None,
    via: Annotated[
        str | None,
        typer.Option(help="Measure through socks5://HOST:PORT or http://HOST:PORT."),
    ] = None,
    interface: Annotated[
        str | None,
        typer.Option(help="Measure through this interface (a VPN's tunnel)."),
    ] = None,
    compare_via: Annotated[
        str | None,
        typer.Option(
            help="Measure directly AND through this tunnel (a proxy URL or interface:NAME), "
            "side by side."
        ),
    ] = None,
) -> None:
    """Measure websites (OONI's web_connectivity, with a control) and apps, feature by feature
    (messaging, calls, web...) from the catalogue, from this network."""
    import asyncio

    from ..model import parse_asn
    from ..probe import NetConfig
    from ..probe._geo import IPDatabase, Network
    from ..probe.catalogue import load_catalogue
    from ..probe.runner import Skipped, locate, measure_all, read_test_list, valid_targets
    from ..probe.web_connectivity import ProbeContext

    inputs = list(urls or [])
    skipped: list[Skipped] = []
    if input_file is not None:
        listed, broken = read_test_list(input_file)
        inputs += listed
        skipped += broken
    targets, invalid = valid_targets(inputs)
    skipped += invalid
    for item in skipped:
        errors.print(f"skipped {item.input}: {item.reason}")
    catalogue = load_catalogue(catalogue_file)
    for key in apps or ():
        catalogue.app(key)  # an unknown app fails here, before anything is measured
    if not targets and not apps:
        raise ReachwatchError("nothing to measure: give URLs, --input-file or --app")
    tunnels = [t for t in (via, interface and f"interface:{interface}", compare_via) if t]
    if len(tunnels) > 1:
        raise ReachwatchError("give one of --via, --interface or --compare-via")
    net = NetConfig(
        resolver=resolver,
        source=source_address,
        ca_file=str(ca_file) if ca_file else None,
        timeout=timeout,
    )
    direct = net
    if tunnels:
        net = _through(net, tunnels[0])
    locating = cc is None and asn is None and helper is not None
    ipdb = None
    if apps or locating:
        try:
            ipdb = IPDatabase()
        except ReachwatchError as exc:
            if locating:
                raise
            errors.print(f"DNS answers will not be checked against the apps' networks: {exc}")
    network = Network()
    if locating and helper and ipdb:
        # the network is this one's, whatever tunnel the measurements then take
        network = asyncio.run(locate(helper, direct, ipdb))
    context = ProbeContext(
        probe_cc=network.cc if cc is None else cc.upper(),
        probe_asn=network.asn if asn is None else parse_asn(asn),
        network_name=network.name if cc is None and asn is None else None,
        helper=helper,
        net=net,
    )
    where = f"{context.probe_cc} AS{context.probe_asn} {context.network_name or ''}"
    errors.print(f"measuring from {where.strip()}")
    results: list[tuple[str, str, str]] = []
    measured: list[dict[str, Any]] = []
    with (
        open(output, "ab") as out,
        Progress(
            TextColumn("[bold]probe"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeRemainingColumn(), console=errors, transient=True,
        ) as bar,
    ):  # fmt: skip
        paths = [context]
        if compare_via:  # one run, the same targets: direct first, then through the tunnel
            paths = [replace(context, net=direct), context]
        run_id = uuid.uuid4().hex if compare_via else None
        total = (len(targets) + len(apps or ())) * len(paths)
        task = bar.add_task("probe", total=total)

        def label(measurement: dict[str, Any]) -> str:
            via = measurement["test_keys"].get("x_via")
            return f" via {via}" if via else ""

        def done(measurement: dict[str, Any]) -> None:
            out.write(orjson.dumps(measurement) + b"\n")
            out.flush()
            measured.append(measurement)
            bar.advance(task)
            verdicts = measurement["test_keys"]["x_reachwatch"]
            if measurement["input"] is not None:  # a URL's one verdict; an app's per feature
                verdicts = {measurement["input"]: verdicts}
            else:
                verdicts = {f"{measurement['test_name']}/{f}": v for f, v in verdicts.items()}
            for target, verdict in verdicts.items():
                results.append((f"{target}{label(measurement)}", verdict["verdict"],
                                verdict["technique"] or ""))  # fmt: skip

        def failed(item: Skipped) -> None:
            errors.print(f"not measured {item.input}: {item.reason}")
            results.append((item.input, "error", ""))
            bar.advance(task)

        asyncio.run(
            measure_all(targets, list(apps or ()), paths, catalogue, ipdb, concurrency=concurrency,
                        on_measurement=done, on_failure=failed, run_id=run_id)
        )  # fmt: skip
    table = Table(title=f"{len(measured)} measurements -> {output}")
    for name in ("target", "verdict", "technique"):
        table.add_column(name, overflow="fold")
    for url, verdict, technique in sorted(results):
        table.add_row(url, f"[{VERDICT_STYLE[verdict]}]{verdict}", technique)
    console.print(table)
    if collector:
        _submit(collector, measured, output, net)


def _through(net: NetConfig, tunnel: str) -> NetConfig:
    """`net` sent through a tunnel: a proxy URL, or `interface:NAME` (bound by its address)."""
    from ..probe._conn import interface_address
    from ..probe._proxy import parse_proxy

    if tunnel.startswith("interface:"):
        name = tunnel.split(":", 1)[1]
        return replace(net, source=interface_address(name), interface=name)
    return replace(net, via=parse_proxy(tunnel))


@app.command()
def submit(
    path: Annotated[Path, typer.Argument(help="Measurements (JSONL) the probe wrote.")],
    collector: Annotated[str, typer.Option(help="The collector's URL.")],
    timeout: TimeoutOption = 10.0,
) -> None:
    """Send measurements a probe wrote to a collector (again): e.g. after it was down."""
    from ..probe import NetConfig

    measurements: list[dict[str, object]] = []
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ReachwatchError(f"{path}: cannot read: {exc.strerror or exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            errors.print(f"skipped {path}:{number}: invalid JSON ({exc})")
            continue
        if isinstance(item, dict):
            measurements.append(item)
        else:
            errors.print(f"skipped {path}:{number}: not a measurement")
    _submit(collector, measurements, path, NetConfig(timeout=timeout))


def _submit(
    collector: str, measurements: list[dict[str, object]], path: Path, net: NetConfig
) -> None:
    import asyncio

    from ..probe.collector import Collector

    done = asyncio.run(Collector(collector, net).submit_all(measurements))
    console.print(f"submitted {done.acknowledged} of {len(measurements)} to {collector}")
    if done.failures:
        errors.print(f"not submitted: {done.failures[0]} (and {len(done.failures) - 1} more)")
        errors.print(f"they are kept in {path}: reachwatch submit {path} --collector {collector}")
        raise typer.Exit(1)


@app.command(name="helper")
def helper_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8780,
    resolver: ResolverOption = None,
    ca_file: CAFileOption = None,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Serve the web connectivity control (OONI's test helper protocol) over HTTP."""
    import asyncio

    from ..probe import NetConfig
    from ..probe.helper import serve

    net = NetConfig(resolver=resolver, ca_file=str(ca_file) if ca_file else None, timeout=timeout)
    errors.print(f"test helper on http://{host}:{port}/ (Ctrl-C stops it)")
    try:
        asyncio.run(serve(host, port, net))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise ReachwatchError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


from ._answers import answer, events  # noqa: E402 - the commands of other modules
from ._ingest import export, ingest, reprocess  # noqa: E402
from ._lab import demo, lab_app  # noqa: E402
from ._serve import serve  # noqa: E402

app.command()(ingest)
app.command()(reprocess)
app.command()(export)
app.command()(events)
app.command()(answer)
app.add_typer(lab_app, name="lab")
app.command()(demo)
app.command()(serve)

from ._claims import claims_app  # noqa: E402 - what sources claim, checked

app.add_typer(claims_app, name="claims")


def main() -> None:
    """Entry point: errors reachwatch raises on purpose become one clear line and exit code 2."""
    try:
        app()
    except ReachwatchError as exc:
        errors.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(2) from None
