"""The target catalogue: the shipped one loads; mistakes are refused with file, line, reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from reachwatch.probe.catalogue import CatalogueError, default_catalogue, load_catalogue

GOOD = """\
version: 1
apps:
  chat:
    name: Chat
    networks: [64500]
    features:
      messaging:
        rule: any
        endpoints:
          - {host: a.chat.example, port: 443, protocol: tcp, source: tests}
          - {ip: 192.0.2.1, port: 5222, protocol: tls, source: tests}
      calls:
        rule: each
        endpoints:
          - {host: stun.chat.example, port: 3478, protocol: udp-stun, source: tests}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "apps.yaml"
    path.write_text(text)
    return path


def test_a_good_catalogue_loads(tmp_path: Path) -> None:
    catalogue = load_catalogue(write(tmp_path, GOOD))
    app = catalogue.app("chat")
    assert app.networks == (64500,)
    assert app.features["messaging"].rule == "any"
    assert [e.target for e in app.features["messaging"].endpoints] == [
        "a.chat.example",
        "192.0.2.1",
    ]
    assert app.features["calls"].endpoints[0].protocol == "udp-stun"


@pytest.mark.parametrize(
    ("change", "line", "reason"),
    [
        (("protocol: tls", "protocol: carrier-pigeon"), 11, "protocol 'carrier-pigeon' unknown"),
        (("port: 5222", "port: 70000"), 11, "port 70000 is not 1-65535"),
        (("        rule: each\n", ""), 13, "chat/calls: no rule"),
        (("rule: any", "rule: some"), 8, "rule 'some' is not"),
        (("messaging:", "chatting:"), 8, "unknown feature"),
        ((", source: tests}\n      calls", "}\n      calls"), 11, "names its `source`"),
        (("ip: 192.0.2.1", "ip: not-an-ip"), 11, "'not-an-ip' is not an IP address"),
        (("name: Chat", "nmae: Chat"), 4, "unknown key 'nmae'"),
    ],
)
def test_mistakes_are_refused_with_file_line_and_reason(
    tmp_path: Path, change: tuple[str, str], line: int, reason: str
) -> None:
    path = write(tmp_path, GOOD.replace(*change, 1))
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert reason in str(info.value)


def test_a_duplicate_app_is_refused(tmp_path: Path) -> None:
    twice = GOOD + GOOD.split("apps:\n", 1)[1]
    with pytest.raises(CatalogueError, match=r":16: apps: .chat. is given twice"):
        load_catalogue(write(tmp_path, twice))


def test_not_yaml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="not valid YAML"):
        load_catalogue(write(tmp_path, "version: 1\napps: [unclosed\n"))


def test_an_unknown_app_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="no app 'skype' in the catalogue; it knows: chat"):
        load_catalogue(write(tmp_path, GOOD)).app("skype")


def test_the_shipped_catalogue_loads_and_covers_the_apps() -> None:
    catalogue = default_catalogue()
    apps = {
        "whatsapp",
        "telegram",
        "signal",
        "facebook_messenger",
        "teams",
        "skype",
        "viber",
        "zoom",
    }
    assert apps <= set(catalogue.apps)
    for app in ("whatsapp", "signal", "facebook_messenger", "teams", "skype"):
        calls = catalogue.app(app).features["calls"]
        assert any(e.protocol == "udp-stun" for e in calls.endpoints)
    for app in catalogue.apps.values():
        for feature in app.features.values():
            assert all(endpoint.source for endpoint in feature.endpoints)
