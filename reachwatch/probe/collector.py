"""Submitting measurements to a collector with OONI's probe-services flow: open a report, submit
each measurement to it, close it. A collector that is down loses nothing: the measurements are
in the output file first, and `reachwatch submit FILE.jsonl` sends them later."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin

from ._http import NetConfig, request_json


@dataclass
class Submitted:
    """What a submission achieved: how many were acknowledged, and why the others were not."""

    acknowledged: int = 0
    failures: list[str] = field(default_factory=list)


class Collector:
    """A collector at `base` (http(s)://host:port/); one report per test and network."""

    def __init__(self, base: str, net: NetConfig | None = None) -> None:
        self.base = base if base.endswith("/") else base + "/"
        self.net = net or NetConfig()
        self._reports: dict[tuple[str, ...], str] = {}

    async def submit(self, measurement: dict[str, Any]) -> str | None:
        """Send one measurement; None once the collector acknowledged it, else the failure."""
        key = _report_key(measurement)
        report_id = self._reports.get(key)
        if report_id is None:
            reply, failure = await request_json(
                urljoin(self.base, "report"), _report_metadata(measurement), self.net
            )
            if failure is not None or not isinstance(reply, dict) or not reply.get("report_id"):
                return f"the collector did not open a report: {failure or reply}"
            report_id = str(reply["report_id"])
            self._reports[key] = report_id
        reply, failure = await request_json(
            urljoin(self.base, f"report/{quote(report_id)}"),
            {"format": "json", "content": measurement},
            self.net,
        )
        if failure is not None:
            return f"the collector did not take the measurement: {failure}"
        return None

    async def close(self) -> None:
        """Close every report opened; a collector that cannot be reached is left as it is."""
        for report_id in self._reports.values():
            await request_json(urljoin(self.base, f"report/{quote(report_id)}/close"), {}, self.net)
        self._reports.clear()

    async def submit_all(self, measurements: Iterable[dict[str, Any]]) -> Submitted:
        result = Submitted()
        for measurement in measurements:
            failure = await self.submit(measurement)
            if failure is None:
                result.acknowledged += 1
            else:
                result.failures.append(failure)
        await self.close()
        return result


def _report_key(measurement: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        str(measurement.get(k))
        for k in ("test_name", "test_version", "probe_cc", "probe_asn", "software_name")
    )


def _report_metadata(measurement: dict[str, Any]) -> dict[str, Any]:
    """The fields OONI's collector asks for when a report is opened."""
    return {
        "data_format_version": measurement.get("data_format_version", "0.2.0"),
        "format": "json",
        "probe_asn": measurement.get("probe_asn", "AS0"),
        "probe_cc": measurement.get("probe_cc", "ZZ"),
        "software_name": measurement.get("software_name", "reachwatch"),
        "software_version": measurement.get("software_version", ""),
        "test_name": measurement.get("test_name", ""),
        "test_start_time": measurement.get("test_start_time", ""),
        "test_version": measurement.get("test_version", ""),
    }
