"""Measurement -> verdicts: one per target, `ok | blocked | down | error`, with a technique.

Each experiment has its own rule (one module per family: web, apps, circumvention, generic);
`verdicts_of` dispatches on test_name.
"""

from __future__ import annotations

from collections.abc import Callable

from ...model import ParsedMeasurement, Primitives
from ..fingerprints import Fingerprints, default_fingerprints
from ._common import BLOCKED, DOWN, ERROR, OK, Verdict
from .apps import (
    catalogue_app,
    facebook_messenger,
    signal,
    stunreachability,
    telegram,
    whatsapp,
)
from .circumvention import openvpn, psiphon, riseupvpn, tor, tor_bootstrap
from .generic import dnscheck, urlgetter
from .web_connectivity import web_connectivity

Rule = Callable[[ParsedMeasurement, Fingerprints], list[Verdict]]

RULES: dict[str, Rule] = {
    "web_connectivity": web_connectivity,
    "whatsapp": whatsapp,
    "telegram": telegram,
    "signal": signal,
    "facebook_messenger": facebook_messenger,
    "stunreachability": stunreachability,
    "dnscheck": dnscheck,
    "urlgetter": urlgetter,
    "tor": tor,
    "vanilla_tor": tor_bootstrap,
    "torsf": tor_bootstrap,
    "psiphon": psiphon,
    "riseupvpn": riseupvpn,
    "openvpn": openvpn,
    "skype": catalogue_app,
    "teams": catalogue_app,
    "viber": catalogue_app,
    "zoom": catalogue_app,
}


def verdicts_of(pm: ParsedMeasurement, fingerprints: Fingerprints | None = None) -> list[Verdict]:
    """The verdicts of one measurement; none for a test reachwatch does not judge."""
    rule = RULES.get(pm.base.test_name)
    if rule is None:
        return []
    keys = pm.keys
    if isinstance(keys, Primitives) and keys.x_features:
        rule = catalogue_app  # measured by reachwatch from its catalogue, feature by feature
    return rule(pm, fingerprints or default_fingerprints())


__all__ = ["BLOCKED", "DOWN", "ERROR", "OK", "RULES", "Verdict", "verdicts_of"]
