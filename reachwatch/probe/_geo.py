"""Country and network of an address, from an offline IP database: the probe asks the test helper
which address it comes from, looks it up here, and keeps only the country and the network.

The database is ip-location-db's (RouteViews and DB-IP for networks, CC BY 4.0; RIR delegations
and WHOIS for countries), installed from the npm registry by `./dev` into `.venv/ipdb`.
"""

from __future__ import annotations

import bisect
import csv
import ipaddress
import os
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .._errors import InputError

IPDB_ENV = "REACHWATCH_IPDB"


@dataclass(frozen=True)
class Network:
    """Where an address belongs: what a measurement may say about its probe."""

    cc: str = "ZZ"
    asn: int = 0
    name: str | None = None


def default_ipdb() -> Path:
    """`REACHWATCH_IPDB`, else the copy `./dev` installs beside the virtual environment."""
    configured = os.environ.get(IPDB_ENV)
    if configured:
        return Path(configured)
    return Path(sys.prefix) / "ipdb" / "node_modules" / "@ip-location-db"


class _Ranges:
    """Inclusive numeric ranges of one CSV (start,end,value...) searched by bisection."""

    def __init__(self, path: Path) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.values: list[list[str]] = []
        with open(path, newline="", encoding="utf-8") as rows:
            for row in csv.reader(rows):
                if len(row) < 3 or not row[0].isdigit():
                    continue
                self.starts.append(int(row[0]))
                self.ends.append(int(row[1]))
                self.values.append(row[2:])

    def find(self, number: int) -> list[str] | None:
        index = bisect.bisect_right(self.starts, number) - 1
        if index >= 0 and self.ends[index] >= number:
            return self.values[index]
        return None


class IPDatabase:
    """Country (geo-whois-asn-country) and network (asn) of IPv4 and IPv6 addresses."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_ipdb()
        if not (self.root / "asn").is_dir():
            raise InputError(
                f"{self.root}: no IP database (run ./dev to install it, or set {IPDB_ENV}); "
                "give --cc and --asn instead"
            )

    @cache  # noqa: B019 - one database per process, loaded once per file
    def _ranges(self, name: str) -> _Ranges:
        return _Ranges(self.root / name)

    def lookup(self, address: str) -> Network:
        ip = ipaddress.ip_address(address)
        family = "ipv4" if ip.version == 4 else "ipv6"
        number = int(ip)
        network = self._ranges(f"asn/asn-{family}-num.csv").find(number)
        country = self._ranges(
            f"geo-whois-asn-country/geo-whois-asn-country-{family}-num.csv"
        ).find(number)
        return Network(
            cc=(country[0].upper() if country else "ZZ"),
            asn=int(network[0]) if network and network[0].isdigit() else 0,
            name=network[1] if network and len(network) > 1 else None,
        )
