"""Claims files: what sources say about blocking, one claim per entry, checked when they load.

The YAML is read node by node, never through PyYAML's constructors: every value is taken as
written (an unquoted `NO` stays Norway, `2017-02-30` is refused by us with a reason instead of
raising inside PyYAML), and every mistake is refused as `file: claims[3] (id foo).end (line N):
reason`. The schema is in docs/claims.md.
"""

from __future__ import annotations

import calendar
import csv
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from functools import cache, partial
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml

from ..._errors import InputError, read_text
from ...probe.catalogue import default_catalogue

KINDS = ("news", "ngo", "measurement", "government", "isp", "aggregator", "blog")
STATUSES = ("blocked", "restricted", "accessible", "denied", "lifted")
BLOCKING = ("blocked", "restricted")
"""Statuses that say a block was in force; the others say it was not (any more)."""
FEATURES = ("messaging", "calls", "web", "registration", "media", "login")
"""The catalogue's features, plus `login`: the app itself, that is its messaging and web."""
PRECISIONS = ("day", "month", "year")
PHASES = ("before", "during", "after")
CIRCUMVENTION = ("vpn", "proxy", "tor")
EXTRA_APPS: dict[str, tuple[str, ...]] = {
    "facebook": ("facebook.com",),
    "instagram": ("instagram.com",),
    "linkedin": ("linkedin.com",),
    "tiktok": ("tiktok.com",),
    "twitter": ("twitter.com", "x.com"),
    "x": ("x.com", "twitter.com"),
    "youtube": ("youtube.com",),
}
"""Apps a claim may name beyond the catalogue's (sources name them, the probe measures them as
web sites): each with the domains whose URL targets stand for it."""
FIRST_YEAR, LAST_YEAR = 1970, 9998  # a claim about the Internet; LAST_YEAR + 1 still a date

_KEYS = (
    "id", "source", "publisher", "kind", "url", "published", "app", "site", "country",
    "asserted_status", "features", "start", "end", "precision", "networks", "technique",
    "reason", "blocker", "event", "event_phase", "circumvention", "quote", "note",
)  # fmt: skip
_REQUIRED = ("id", "country", "asserted_status")
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_ASN = re.compile(r"AS(\d{1,10})", re.IGNORECASE)
_MAX_ASN = 4294967294
_LABEL = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})+")
_ID = re.compile(r"\S+")
_T = TypeVar("_T")
_FORMS = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}


class ClaimsError(InputError):
    """A claims file that cannot be used; the message is `file: key (line N): reason`."""


@dataclass(frozen=True, order=True)
class When:
    """A date as a source gives it: a day, or only its month or year (`precision`). `day` is
    kept as written; the range it stands for is [first, after)."""

    day: date
    precision: str = "day"

    @property
    def first(self) -> datetime:
        d = self.day
        if self.precision == "year":
            d = d.replace(month=1, day=1)
        elif self.precision == "month":
            d = d.replace(day=1)
        return datetime(d.year, d.month, d.day)

    @property
    def after(self) -> datetime:
        first = self.first
        if self.precision == "year":
            return first.replace(year=first.year + 1)
        if self.precision == "month":
            return (first + timedelta(days=31)).replace(day=1)
        return first + timedelta(days=1)

    def __str__(self) -> str:
        """The range in ISO form: 2020-11-11, 2017-05 or 2015."""
        return self.first.strftime(_FORMS[self.precision])


@dataclass(frozen=True)
class Claim:
    """What one source says: a status of an app or a site in a country, over a period."""

    id: str
    country: str
    asserted_status: str
    app: str | None = None
    site: str | None = None
    source: str | None = None  # the document (an article's title)
    publisher: str | None = None
    kind: str | None = None
    url: str | None = None
    published: When | None = None
    features: tuple[str, ...] = ()  # empty: the app as a whole
    start: When | None = None
    end: When | None = None  # for `lifted`, when it was lifted (else `start`)
    networks: tuple[str, ...] = ()  # AS28787
    technique: str | None = None
    reason: str | None = None
    blocker: str | None = None
    event: str | None = None  # the named occasion the source ties the claim to
    event_phase: str | None = None  # before | during | after that occasion
    circumvention: tuple[str, ...] = ()  # what the source says restores access
    quote: str | None = None
    note: str | None = None

    @property
    def subject(self) -> str:
        """The app, or the site as `site:x.com`."""
        return self.app if self.app is not None else f"site:{self.site}"

    @property
    def blocking(self) -> bool:
        return self.asserted_status in BLOCKING

    def record(self) -> dict[str, Any]:
        """The claim as the store's `claims` columns: each date as its day and precision."""
        row: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _WHENS:
                column = _WHENS[f.name]
                row[column] = value.day if value else None
                row[f"{column}_precision"] = value.precision if value else None
            else:
                row[f.name] = list(value) if isinstance(value, tuple) else value
        return row

    @classmethod
    def from_record(cls, row: dict[str, Any]) -> Claim:
        """The claim back from the store's columns (other columns are ignored)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in _WHENS:
                column = _WHENS[f.name]
                day = row[column]
                values[f.name] = None if day is None else When(day, row[f"{column}_precision"])
            elif f.name in _LISTS:
                values[f.name] = tuple(row[f.name] or ())
            else:
                values[f.name] = row[f.name]
        return cls(**values)


_WHENS = {"published": "published", "start": "period_start", "end": "period_end"}
"""The claim's dates and the columns that hold them (`end` is a keyword of SQL)."""
_LISTS = ("features", "networks", "circumvention")


@cache
def country_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes (Censored Planet's list, see data/ATTRIBUTION.txt)."""
    path = resources.files("reachwatch.answers").joinpath("data/iso-country-codes.csv")
    rows = csv.reader(path.read_text(encoding="utf-8").splitlines())
    return frozenset(row[1].strip() for row in rows if len(row) == 2)


def known_apps() -> tuple[str, ...]:
    """The apps a claim may name: the catalogue's and EXTRA_APPS."""
    return tuple(sorted({*default_catalogue().apps, *EXTRA_APPS}))


def load_claims(path: Path) -> list[Claim]:
    """The claims in the file at `path`, each checked; refused whole at the first mistake."""
    text = read_text(path, ClaimsError)
    return _Parser(path, text).claims()


def _found(node: yaml.Node) -> str:
    """What the file has at `node`, as written, for 'must be X, not Y'."""
    if isinstance(node, yaml.ScalarNode):
        return "nothing" if node.value == "" and not node.style else repr(node.value)
    return "a mapping" if isinstance(node, yaml.MappingNode) else "a list"


class _Parser:
    """YAML nodes to claims, each reader told its key path for the messages."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.apps = known_apps()
        try:
            root = yaml.SafeLoader(text).get_single_node()
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).partition("\n")[0]
            raise ClaimsError(f"{path}: {where}not valid YAML: {problem}") from None
        except RecursionError:  # PyYAML composes nested collections recursively
            raise ClaimsError(f"{path}: not valid YAML: nested too deeply") from None
        if root is None:
            raise ClaimsError(f"{path}: the file is empty (it must be a list of claims)")
        self.root: yaml.Node = root

    def fail(self, key: str, node: yaml.Node, reason: str) -> ClaimsError:
        line = node.start_mark.line + 1
        return ClaimsError(f"{self.path}: {key} (line {line}): {reason}" if key else
                           f"{self.path}: line {line}: {reason}")  # fmt: skip

    # readers of one node

    def scalar(self, node: yaml.Node, key: str) -> str:
        """The text of a scalar as written (no YAML 1.1 booleans, dates or numbers)."""
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(key, node, f"must be a single value, not {_found(node)}")
        return str(node.value)

    def text(self, node: yaml.Node, key: str) -> str:
        value = self.scalar(node, key).strip()
        if not value:
            raise self.fail(key, node, f"must be a non-empty text, not {_found(node)}")
        return value

    def choice(self, node: yaml.Node, key: str, options: tuple[str, ...]) -> str:
        value = self.scalar(node, key)
        if value not in options:
            raise self.fail(key, node, f"must be one of {', '.join(options)}, not {_found(node)}")
        return value

    def choices(self, node: yaml.Node, key: str, options: tuple[str, ...]) -> tuple[str, ...]:
        """A list of distinct options (a single value is a list of one)."""
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        out: list[str] = []
        for i, item in enumerate(items):
            where = f"{key}[{i}]" if isinstance(node, yaml.SequenceNode) else key
            value = self.choice(item, where, options)
            if value in out:
                raise self.fail(where, item, f"{value} is listed twice")
            out.append(value)
        return tuple(out)

    def when(self, node: yaml.Node, key: str, precision: str | None) -> When:
        """YYYY-MM-DD, YYYY-MM or YYYY; its precision given, or that of the form written."""
        text = self.scalar(node, key).strip()
        match = _DATE.fullmatch(text)
        if match is None:
            raise self.fail(key, node, f"must be a date as YYYY-MM-DD, YYYY-MM or YYYY, "
                            f"not {_found(node)}")  # fmt: skip
        year, month, day = (int(part) if part else None for part in match.groups())
        assert year is not None  # the pattern requires it
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise self.fail(key, node, f"{text}: the year must be {FIRST_YEAR}-{LAST_YEAR}")
        if month is not None and not 1 <= month <= 12:
            raise self.fail(key, node, f"{text} is not a date: there is no month {month}")
        if day is not None and month is not None:
            days = calendar.monthrange(year, month)[1]
            if not 1 <= day <= days:
                name = calendar.month_name[month]
                raise self.fail(key, node, f"{text} is not a date: {name} {year} has {days} "
                                "days")  # fmt: skip
        written = "day" if day is not None else "month" if month is not None else "year"
        if precision is not None and PRECISIONS.index(precision) < PRECISIONS.index(written):
            raise self.fail(key, node, f"{text} is a {written}, too coarse for "
                            f"`precision: {precision}`")  # fmt: skip
        return When(date(year, month or 1, day or 1), precision or written)

    def domain(self, node: yaml.Node, key: str) -> str:
        value = self.text(node, key).lower()
        if "/" in value or ":" in value:
            raise self.fail(key, node, f"a site is a domain like x.com, not {_found(node)}")
        if not _DOMAIN.fullmatch(value):
            raise self.fail(key, node, f"{_found(node)} is not a domain name like x.com")
        return value

    # a claim

    def claims(self) -> list[Claim]:
        if not isinstance(self.root, yaml.SequenceNode):
            raise self.fail("", self.root, f"the file must be a list of claims, not "
                            f"{_found(self.root)}")  # fmt: skip
        out: list[Claim] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(self.root.value):
            claim = self.claim(item, i)
            if claim.id in seen:
                raise self.fail(f"claims[{i}] (id {claim.id}).id", item,
                                f"claims[{seen[claim.id]}] has the same id")  # fmt: skip
            seen[claim.id] = i
            out.append(claim)
        return out

    def mapping(self, node: yaml.Node, key: str) -> dict[str, yaml.Node]:
        """A claim's fields by name; `key` names the claim by its id when it has one."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(key, node, f"a claim must be a mapping, not {_found(node)}")
        pairs = [(self.scalar(k, key), k, v) for k, v in node.value]
        ident = next((v for name, _, v in pairs if name == "id"), None)
        if isinstance(ident, yaml.ScalarNode) and _ID.fullmatch(ident.value.strip()):
            key = f"{key} (id {ident.value.strip()})"
        items: dict[str, yaml.Node] = {}
        for name, key_node, value_node in pairs:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise self.fail(key, key_node, "`<<` merge keys are not supported: write the keys")
            if name not in _KEYS:
                raise self.fail(f"{key}.{name}", key_node, f"unknown key (allowed: "
                                f"{', '.join(_KEYS)})")  # fmt: skip
            if name in items:
                raise self.fail(f"{key}.{name}", key_node, "given twice")
            items[name] = value_node
        for name in _REQUIRED:
            if name not in items:
                raise self.fail(f"{key}.{name}", node, "required, but missing")
        return items

    def claim(self, node: yaml.Node, index: int) -> Claim:
        items = self.mapping(node, f"claims[{index}]")
        ident = self.text(items["id"], f"claims[{index}].id")
        if not _ID.fullmatch(ident):
            raise self.fail(f"claims[{index}].id", items["id"], f"{ident!r}: an id has no spaces")
        key = f"claims[{index}] (id {ident})"

        def read(name: str, reader: Callable[[yaml.Node, str], _T]) -> _T | None:
            return None if name not in items else reader(items[name], f"{key}.{name}")

        app, site = items.get("app"), items.get("site")
        if app is not None and site is not None:
            raise self.fail(f"{key}.site", site, "give app or site, not both")
        if app is None and site is None:
            raise self.fail(key, node, "needs an app or a site")
        if site is not None and "features" in items:
            raise self.fail(f"{key}.features", items["features"], "a site has no features: "
                            "leave them out or name the app")  # fmt: skip
        precision = read("precision", partial(self.choice, options=PRECISIONS))
        start = read("start", partial(self.when, precision=precision))
        end = read("end", partial(self.when, precision=precision))
        if start is not None and end is not None and end.after <= start.first:
            raise self.fail(f"{key}.end", items["end"],
                            f"the period ends ({end}) before it starts ({start})")  # fmt: skip
        event = read("event", self.text)
        if "event_phase" in items and event is None:
            raise self.fail(f"{key}.event_phase", items["event_phase"],
                            "needs `event`: the occasion the phase is relative to")  # fmt: skip
        return Claim(
            id=ident,
            country=self.country(items["country"], f"{key}.country"),
            asserted_status=self.choice(items["asserted_status"], f"{key}.asserted_status",
                                        STATUSES),
            app=read("app", self.app),
            site=read("site", self.domain),
            source=read("source", self.text),
            publisher=read("publisher", self.text),
            kind=read("kind", partial(self.choice, options=KINDS)),
            url=read("url", self.url),
            published=read("published", partial(self.when, precision=None)),
            features=read("features", partial(self.choices, options=FEATURES)) or (),
            start=start,
            end=end,
            networks=read("networks", self.networks) or (),
            technique=read("technique", self.text),
            reason=read("reason", self.text),
            blocker=read("blocker", self.text),
            event=event,
            event_phase=read("event_phase", partial(self.choice, options=PHASES)),
            circumvention=read("circumvention", partial(self.choices, options=CIRCUMVENTION))
            or (),
            quote=read("quote", self.text),
            note=read("note", self.text),
        )  # fmt: skip

    def country(self, node: yaml.Node, key: str) -> str:
        code = self.text(node, key).upper()
        if code not in country_codes():
            raise self.fail(key, node, f"{_found(node)} is not an ISO 3166-1 alpha-2 country "
                            "code (like AZ)")  # fmt: skip
        return code

    def app(self, node: yaml.Node, key: str) -> str:
        name = self.text(node, key)
        if name not in self.apps:
            raise self.fail(key, node, f"unknown app {name!r} (known: {', '.join(self.apps)}; "
                            "for anything else give `site: DOMAIN`)")  # fmt: skip
        return name

    def url(self, node: yaml.Node, key: str) -> str:
        value = self.text(node, key)
        try:
            parts = urlsplit(value)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise self.fail(key, node, f"must be an http:// or https:// URL, not {_found(node)}")
        return value

    def networks(self, node: yaml.Node, key: str) -> tuple[str, ...]:
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        out: list[str] = []
        for i, item in enumerate(items):
            where = f"{key}[{i}]" if isinstance(node, yaml.SequenceNode) else key
            match = _ASN.fullmatch(self.text(item, where))
            if match is None or not 1 <= int(match[1]) <= _MAX_ASN:
                raise self.fail(where, item, f"must be an AS number like AS28787, not "
                                f"{_found(item)}")  # fmt: skip
            asn = f"AS{int(match[1])}"
            if asn in out:
                raise self.fail(where, item, f"{asn} is listed twice")
            out.append(asn)
        return tuple(out)
