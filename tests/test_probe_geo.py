"""The probe's network from its public address: the offline IP database and the helper's /ip."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reachwatch import InputError
from reachwatch.probe import NetConfig
from reachwatch.probe._geo import IPDatabase, Network
from reachwatch.probe.runner import locate

from .conftest import reachwatch
from .netlab import PROBE_ADDRESS, Lab

IPDB = Path(__file__).parent / "fixtures" / "ipdb"


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("85.132.0.1", Network("AZ", 29049, "Delta Telecom Ltd")),
        ("213.154.0.1", Network("AZ", 28787, "Aztelekom LLC")),
        ("1.1.1.1", Network("AU", 13335, "Cloudflare, Inc.")),
        ("2a03:2880::1", Network("IE", 32934, "Facebook, Inc.")),
        ("192.0.2.1", Network("ZZ", 0, None)),  # in no range: unknown, never guessed
    ],
)
def test_lookup(address: str, network: Network) -> None:
    assert IPDatabase(IPDB).lookup(address) == network


def test_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no IP database"):
        IPDatabase(tmp_path)


def test_the_helper_tells_the_address_and_only_the_network_is_kept(lab: Lab) -> None:
    network = asyncio.run(locate(lab.ports["helper"], NetConfig(timeout=2), IPDatabase(IPDB)))
    assert network == Network("AZ", 28707, "Lab network (test data)")


def test_probe_without_cc_looks_its_network_up(lab: Lab, tmp_path: Path) -> None:
    output = tmp_path / "m.jsonl"
    done = reachwatch(
        "probe", f"http://example.test:{lab.ports['page']}/", "--output", str(output),
        "--helper", lab.ports["helper"], "--resolver", lab.ports["dns"], "--timeout", "2",
        "--source-address", PROBE_ADDRESS, env={"REACHWATCH_IPDB": str(IPDB)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "measuring from AZ AS28707 Lab network (test data)" in done.stderr
    text = output.read_text()
    assert '"probe_cc":"AZ"' in text and '"probe_asn":"AS28707"' in text
    assert PROBE_ADDRESS not in text  # the address the helper saw is nowhere
