"""web_connectivity (0.4 and 0.5): a verdict for the input URL from the observations and the
control, never from the probe's own `blocking` field (that one is kept only to compare).

The order of the questions follows what a censor can and cannot fake:

1. a confirmed fingerprint (a known censor's DNS answer or blockpage) is blocking, whatever else;
2. a page fetched over TLS with a valid certificate came from the real site: accessible;
3. without a control nothing else can tell censorship from a site that is down: error;
4. a cleartext page is compared with the control's (status, body length, headers, title);
   a server's bot challenge (Cloudflare) is the site's choice, not censorship;
5. a failed fetch is located at the stage where it failed (DNS, TCP, TLS, HTTP); if the control
   failed at that stage too, the site is down; otherwise it is blocked there. A DNS answer that
   is a bogon or disagrees with the control's takes precedence, since what follows it was
   decided by that answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from ...model import (
    Control,
    ControlHTTP,
    HTTPResponse,
    HTTPTransaction,
    ParsedMeasurement,
    TLSHandshake,
    WebConnectivityKeys,
)
from ..fingerprints import BLOCKING_SCOPES, Fingerprint, Fingerprints
from ._common import (
    CERTIFICATE,
    EOFS,
    NXDOMAIN,
    RESETS,
    TIMEOUTS,
    UNREACHABLE,
    Verdict,
    blocked,
    down,
    error,
    is_bogon,
    is_ip,
    is_network_failure,
    ok,
    technique_for,
)
from ._reach import url_host

SYSTEM_ENGINES = frozenset({"", "system", "getaddrinfo", "golang_net_resolver", "go", "unknown"})
BODY_PROPORTION = 0.7
TITLE = re.compile(r"<title>([^<]{1,512})</title>", re.IGNORECASE)
COMMON_HEADERS = frozenset(
    {
        "date", "content-type", "server", "cache-control", "vary", "set-cookie", "location",
        "expires", "x-powered-by", "content-encoding", "last-modified", "accept-ranges", "pragma",
        "x-frame-options", "etag", "x-content-type-options", "age", "via", "p3p",
        "x-xss-protection", "content-language", "cf-ray", "strict-transport-security", "link",
        "x-varnish",
    }
)  # fmt: skip
CHALLENGE_MARKERS = ("cf-chl", "challenge-platform", "Just a moment...", "Attention Required!")


def probe_says(keys: WebConnectivityKeys | None) -> str:
    """The probe's own conclusion in our words: ok, down, error, or blocked:<OONI's type>."""
    if keys is None or keys.blocking is None:
        return "error"
    if keys.blocking is False:
        return "ok" if keys.accessible else "down"
    if keys.blocking is True:
        return "blocked"
    return f"blocked:{keys.blocking}"


def web_connectivity(pm: ParsedMeasurement, fingerprints: Fingerprints) -> list[Verdict]:
    keys = pm.keys
    target = pm.input or ""
    if not isinstance(keys, WebConnectivityKeys):
        return [error(target or "(no input)", "test_keys are missing", probe_says(None))]
    says = probe_says(keys)
    if not target:
        return [error("(no input)", "the measurement names no URL", says)]
    host = _norm_host(url_host(target))
    if not host:
        return [error(target, f"the input {target[:80]!r} is not a URL", says)]
    verdict = _Analysis(pm, keys, host, fingerprints).run()
    return [verdict._replace(target=target, probe_says=says)]


# The classes below, made for every measurement (an attempt for each endpoint), spell out
# their __init__: mypyc compiles it, where the one `dataclasses` generates runs interpreted
# (0.4 to 0.9 us a construction, 1.1% of an ingest's worker).


class _DNS:
    """What the probe's system resolver said about the input's host, checked against the control."""

    def __init__(
        self, state: str, detail: str, addrs: set[str] | None = None, failure: str | None = None
    ) -> None:
        # consistent | inconsistent | bogon | censor | failed | both_failed | unknown
        self.state = state
        self.detail = detail
        self.addrs: set[str] = addrs if addrs is not None else set()
        self.failure = failure


class _Outcome:
    """The end of the fetch: a page, or the step that failed there."""

    def __init__(
        self,
        response: HTTPResponse | None = None,
        verified_tls: bool = False,
        stage: str = "http",
        where: str = "",
        failure: str | None = None,
        depth: int = 0,
        control_failure: str | None = None,
        stalled: HTTPResponse | None = None,  # headers came, then the body timed out
    ) -> None:
        self.response = response
        self.verified_tls = verified_tls
        self.stage = stage
        self.where = where
        self.failure = failure
        self.depth = depth
        self.control_failure = control_failure
        self.stalled = stalled


_STAGE_RANK = {"http": 3, "tls": 2, "tcp": 1}


class _Attempt:
    """One 0.5 transaction: an endpoint tried at one redirect depth, and how far it got."""

    def __init__(
        self,
        tid: int,
        depth: int,
        fetch_body: bool,
        classic: bool,
        ip: str,
        port: int | None,
        t: float = 0.0,
        tcp_failure: str | None = None,
    ) -> None:
        self.tid = tid
        self.depth = depth
        self.fetch_body = fetch_body
        self.classic = classic
        self.ip = ip
        self.port = port
        self.t = t
        self.tcp_failure = tcp_failure
        self.tls: TLSHandshake | None = None
        self.http: HTTPTransaction | None = None

    @property
    def sni(self) -> str | None:
        return self.tls.server_name if self.tls else None

    @property
    def url(self) -> str | None:
        return self.http.request.url if self.http and self.http.request else None

    @property
    def page(self) -> HTTPResponse | None:
        http = self.http
        if http and http.failure is None and http.response and (http.response.code or 0) > 0:
            return http.response
        return None

    def failed_step(self) -> tuple[str, str | None]:
        if self.tcp_failure:
            return "tcp", self.tcp_failure
        if self.tls is not None and self.tls.failure:
            return "tls", self.tls.failure
        if self.http is not None and self.http.failure:
            return "http", self.http.failure
        return "http", None

    @property
    def rank(self) -> int:
        stage, failure = self.failed_step()
        return _STAGE_RANK[stage] if failure else 0


def _attempts(keys: WebConnectivityKeys) -> list[_Attempt]:
    by_tid: dict[int, _Attempt] = {}
    for index, connect in enumerate(keys.tcp_connects()):
        tid = connect.transaction_id if connect.transaction_id is not None else -1 - index
        by_tid[tid] = _Attempt(
            tid=tid,
            depth=_depth(connect.tags) or 0,
            fetch_body="fetch_body=false" not in (connect.tags or ()),
            classic="classic" in (connect.tags or ()),
            ip=connect.ip or "",
            port=connect.port,
            t=float(connect.t or 0.0),
            tcp_failure=connect.status.failure if connect.status else None,
        )
    for handshake in keys.tls_handshakes or ():
        attempt = by_tid.get(
            handshake.transaction_id if handshake.transaction_id is not None else -(10**9)
        )
        if attempt is not None:
            attempt.tls = handshake
            attempt.t = max(attempt.t, float(handshake.t or 0.0))
    for transaction in keys.requests or ():
        attempt = by_tid.get(
            transaction.transaction_id if transaction.transaction_id is not None else -(10**9)
        )
        if attempt is not None and attempt.http is None:
            attempt.http = transaction
            attempt.t = max(attempt.t, float(transaction.t or 0.0))
    return list(by_tid.values())


def _depth(tags: list[str] | None) -> int | None:
    for tag in tags or ():
        if tag.startswith("depth="):
            try:
                return int(tag[6:])
            except ValueError:
                return None
    return None


class _Analysis:
    def __init__(
        self,
        pm: ParsedMeasurement,
        keys: WebConnectivityKeys,
        host: str,
        fingerprints: Fingerprints,
    ) -> None:
        self.pm = pm
        self.keys = keys
        self.host = host
        self.fps = fingerprints
        control = keys.control if not keys.control_failure else None
        if control is not None and control.http_request is None and control.dns is None:
            control = None
        self.control: Control | None = control
        self.requests: list[HTTPTransaction] = keys.requests or []
        self.final = self.requests[0] if self.requests else None
        # the resolver the user's browser would use: the system's; a probe told to use one
        # resolver over UDP (as reachwatch's lab probes are) records no system lookup at all
        engines = {q.engine or "" for q in keys.queries or ()}
        self.engines = SYSTEM_ENGINES if engines & SYSTEM_ENGINES or not engines else {"udp"}
        self._texts: dict[int, str] = {}

    def _text(self, response: HTTPResponse) -> str:
        """A page's text, decoded once: the comparison with the control, the blockpage scan
        and the challenge check may each read it (most pages none of them)."""
        text = self._texts.get(id(response))
        if text is None:
            text = self._texts[id(response)] = response.text()
        return text

    # --- the decision ---------------------------------------------------------------------

    def run(self) -> Verdict:
        dns = self._dns()
        if dns.state == "censor":
            technique = "dns.bogon" if any(is_bogon(a) for a in dns.addrs) else "dns.inconsistent"
            return blocked("", technique, dns.detail)
        outcome = self._outcome(dns)
        response = outcome.response
        control = self._control_page()
        diff = None
        if response is not None and control is not None and not outcome.verified_tls:
            diff = _http_diff(response, control, self._text)
        # a page with the control's length or title is no blockpage: no need to scan its body
        same_page = outcome.verified_tls or (diff is not None and diff.same_content)
        page = self._blockpage(scan_bodies=not same_page)
        if page is not None:
            if dns.state in ("bogon", "inconsistent"):
                return blocked("", f"dns.{dns.state}", f"{dns.detail}; it served {page}")
            return blocked("", "http.blockpage", f"the response is {page}")
        if response is not None and outcome.verified_tls:
            return ok("", f"fetched over TLS with a valid certificate (HTTP {response.code})")
        if self.control is None:
            what = "a cleartext page" if response is not None else "a failure"
            return error(
                "", f"no control measurement: {what} cannot be told apart from a down site"
            )
        if response is not None:
            return self._compare(response, dns, diff)
        return self._failed(dns, outcome)

    def _control_page(self) -> ControlHTTP | None:
        """The control's fetch, if it got a page."""
        page = self.control.http_request if self.control else None
        if page is None or page.failure or (page.status_code or 0) <= 0:
            return None
        return page

    def _compare(self, response: HTTPResponse, dns: _DNS, diff: _Diff | None) -> Verdict:
        if diff is None:
            if dns.state in ("bogon", "inconsistent"):
                return blocked("", f"dns.{dns.state}", dns.detail)
            return error("", "the control could not fetch the page: nothing to compare with")
        why = diff.why
        if not diff.differs:
            if dns.state == "inconsistent":
                return ok("", f"same page as the control ({why}) although {dns.detail}")
            return ok("", f"same page as the control ({why})")
        challenge = self._server_challenge(response)
        if challenge:
            return ok("", f"the site answered with its own {challenge}, not a censor's page")
        if dns.state in ("bogon", "inconsistent"):
            return blocked("", f"dns.{dns.state}", f"{dns.detail}; the page differs ({why})")
        return blocked("", "http.diff", f"the page differs from the control's: {why}")

    def _failed(self, dns: _DNS, outcome: _Outcome) -> Verdict:
        failure = outcome.failure
        if outcome.stage == "dns" and outcome.depth == 0:
            if dns.state == "both_failed":
                return down("", f"{dns.detail}; the name does not resolve from outside either")
            if dns.state == "failed":
                return blocked("", technique_for("dns", dns.failure or ""), dns.detail)
        if dns.state in ("bogon", "inconsistent"):
            then = (
                f"; then {outcome.stage.upper()} {outcome.where} failed with {failure}"
                if failure
                else ""
            )
            return blocked("", f"dns.{dns.state}", f"{dns.detail}{then}")
        if not failure:
            if dns.addrs and all(is_bogon(a) for a in dns.addrs):
                return down("", f"{dns.detail}; the name points at a private address everywhere")
            return error("", "no fetch was made and no failure was recorded")
        control_http = self.control.http_request if self.control else None
        control_ok = bool(
            control_http and not control_http.failure and (control_http.status_code or 0) > 0
        )
        portal = _private_redirect(outcome.stalled or (self.final.response if self.final else None))
        if portal and control_ok:
            return blocked(
                "", "http.diff", f"redirected to {portal}, a private address (a middlebox's page)"
            )
        if not is_network_failure(failure):
            if not control_ok:
                return down("", f"the fetch failed ({failure}) and the control's failed too")
            return error(
                "", f"the fetch failed on the server's own reply ({failure}), not on the network"
            )
        what = f"{outcome.stage.upper()} {outcome.where} failed with {failure}"
        response = outcome.stalled
        if response is not None and control_ok and failure in TIMEOUTS:
            size = control_http.body_length if control_http else None
            return blocked(
                "",
                "throttled",
                f"the response started (HTTP {response.code}) but the body stalled ({failure}); "
                f"the control fetched {size} bytes",
            )
        if outcome.control_failure is not None or not control_ok:
            theirs = outcome.control_failure or (control_http.failure if control_http else None)
            return down("", f"{what}; the control failed too ({theirs or 'no page'})")
        return blocked("", technique_for(outcome.stage, failure), f"{what}; the control succeeded")

    # --- the fetch as the user's browser would have made it --------------------------------

    def _outcome(self, dns: _DNS) -> _Outcome:
        """Where the fetch ended: a page, or the step that failed (and what the control saw)."""
        keys = self.keys
        if any(_depth(c.tags) is not None for c in keys.tcp_connects()):
            return self._outcome_05(dns)
        final = self.final
        if final is None:
            if dns.failure or not keys.http_experiment_failure:
                return _Outcome(stage="dns", where=f"lookup of {self.host}", failure=dns.failure)
            stage, where, control_failure = self._stage_of(keys.http_experiment_failure)
            return _Outcome(stage=stage, where=where, failure=keys.http_experiment_failure,
                            control_failure=control_failure)  # fmt: skip
        response = final.response
        if final.failure is None and response is not None and (response.code or 0) > 0:
            return _Outcome(response=response, verified_tls=self._verified_tls(final))
        failure = final.failure or keys.http_experiment_failure
        stage, where, control_failure = self._stage_of(failure or "")
        stalled = response if stage == "http" and response and (response.code or 0) > 0 else None
        return _Outcome(
            stage=stage,
            where=where,
            failure=failure,
            control_failure=control_failure,
            stalled=stalled,
        )

    def _outcome_05(self, dns: _DNS) -> _Outcome:
        """0.5 probes record one transaction per endpoint and redirect depth; the user's path is
        the one through the system resolver's addresses (OONI tags it `classic`)."""
        attempts = _attempts(self.keys)
        classic = any(a.classic for a in attempts)
        system = self._system_addresses()
        path = [
            a
            for a in attempts
            if a.fetch_body and (a.classic if classic else (a.ip in system or is_ip(self.host)))
        ]
        if not path:
            return _Outcome(stage="dns", where=f"lookup of {self.host}", failure=dns.failure)
        deepest = max(a.depth for a in path)
        level = [a for a in path if a.depth == deepest]
        pages = [a for a in level if a.page is not None]
        if pages:
            final = [a for a in pages if a.page and not 300 <= (a.page.code or 0) < 400]
            chosen = (final or pages)[0]
            if not final:
                failed_lookup = self._redirect_lookup_failure(chosen)
                if failed_lookup is not None:
                    return failed_lookup
            assert chosen.page is not None and chosen.http is not None
            return _Outcome(response=chosen.page, verified_tls=self._verified_tls(chosen.http))
        worst = max(level, key=lambda a: (a.rank, a.t))
        stage, failure = worst.failed_step()
        control_failure = self._control_failure(stage, worst)
        where = {
            "tcp": f"connect to {_endpoint(worst.ip, worst.port)}",
            "tls": f"handshake with {_endpoint(worst.ip, worst.port)} (SNI {worst.sni})",
            "http": f"request for {worst.url}",
        }.get(stage, f"step at depth {deepest}")
        stalled = worst.http.response if worst.http and stage == "http" else None
        if stalled is not None and (stalled.code or 0) <= 0:
            stalled = None
        return _Outcome(
            stage=stage,
            where=where,
            failure=failure,
            depth=deepest,
            control_failure=control_failure,
            stalled=stalled,
        )

    def _redirect_lookup_failure(self, attempt: _Attempt) -> _Outcome | None:
        location = attempt.page.header("location") if attempt.page else None
        host = _norm_host(url_host(location))
        if not host:
            return None
        for query in self.keys.queries or ():
            if (
                (query.engine or "") in self.engines
                and _norm_host(query.hostname) == host
                and query.failure
                and not query.answers
            ):
                return _Outcome(
                    stage="dns",
                    where=f"lookup of {host}",
                    failure=query.failure,
                    depth=attempt.depth + 1,
                )
        return None

    def _system_addresses(self) -> set[str]:
        return {
            answer.ipv4 or answer.ipv6 or ""
            for query in self.keys.queries or ()
            if (query.engine or "") in self.engines
            for answer in query.answers or ()
        }

    def _control_failure(self, stage: str, attempt: _Attempt) -> str | None:
        control = self.control
        if control is None:
            return None
        endpoint = _endpoint(attempt.ip, attempt.port)
        if stage == "tcp" and control.tcp_connect:
            theirs = control.tcp_connect.get(endpoint)
            if theirs is not None and theirs.status is False:
                return theirs.failure or "failed"
        if stage == "tls" and control.tls_handshake:
            tls = control.tls_handshake.get(endpoint)
            if (
                tls is not None
                and tls.status is False
                and _norm_host(tls.server_name) == _norm_host(attempt.sni)
            ):
                return tls.failure or "failed"
        return None

    # --- stages ---------------------------------------------------------------------------

    def _dns(self) -> _DNS:
        if is_ip(self.host):
            return _DNS("consistent", "the URL names an IP address")
        queries = [
            q
            for q in self.keys.queries or ()
            if (q.engine or "") in self.engines and _norm_host(q.hostname) == self.host
        ]
        addrs: set[str] = set()
        asns: set[int] = set()
        failure: str | None = None
        for query in queries:
            for answer in query.answers or ():
                ip = answer.ipv4 or answer.ipv6
                if ip:
                    addrs.add(ip)
                    if answer.asn:
                        asns.add(answer.asn)
                elif answer.hostname and self.fps.match_dns(answer.hostname):
                    addrs.add(answer.hostname)
            if query.failure and not (
                query.query_type == "AAAA" and query.failure == "dns_no_answer"
            ):
                failure = failure or query.failure
        if not addrs and not failure:
            failure = self.keys.dns_experiment_failure
        if not addrs and not failure:
            return _DNS("unknown", "no lookup of the host was recorded")
        for addr in sorted(addrs):
            fp = self.fps.match_dns(addr)
            if (
                fp is not None
                and fp.scope in BLOCKING_SCOPES
                and fp.confirmed_for(self.pm.base.probe_cc)
            ):
                return _DNS("censor", f"the resolver answered {addr}, {_known(fp)}", addrs)
        control_dns = self.control.dns if self.control else None
        if control_dns is None:
            state = "failed" if not addrs and failure else "unknown"
            return _DNS(
                state, f"the resolver failed with {failure}" if failure else "", addrs, failure
            )
        control_addrs = {a for a in control_dns.addrs or () if is_ip(a)}
        control_failed = control_dns.failure or not control_addrs
        if not addrs:
            if control_failed:
                theirs = control_dns.failure or "no address"
                return _DNS(
                    "both_failed",
                    f"the resolver failed with {failure}; the control: {theirs}",
                    addrs,
                    failure,
                )
            return _DNS(
                "failed",
                f"the resolver failed with {failure} while the control resolved "
                f"{', '.join(sorted(control_addrs)[:3])}",
                addrs,
                failure,
            )
        shown = ", ".join(sorted(addrs)[:3])
        if control_failed:
            theirs = control_dns.failure or "no address"
            return _DNS(
                "inconsistent",
                f"the resolver answered {shown} where the control found {theirs}",
                addrs,
            )
        bogons = {a for a in addrs if is_bogon(a) and a not in control_addrs}
        if bogons and not all(is_bogon(a) for a in control_addrs):
            return _DNS(
                "bogon",
                f"the resolver answered {', '.join(sorted(bogons))}, a private or reserved address",
                addrs,
            )
        if addrs & control_addrs:
            return _DNS("consistent", "the resolver's answers overlap the control's", addrs)
        ip_info = (self.control.ip_info if self.control else None) or {}
        control_asns = {
            info.asn for ip, info in ip_info.items() if ip in control_addrs and info.asn
        }
        if asns & control_asns:
            return _DNS("consistent", "the resolver's answers are in the control's networks", addrs)
        return _DNS(
            "inconsistent",
            f"the resolver answered {shown}, none of which the control saw "
            f"({', '.join(sorted(control_addrs)[:3])})",
            addrs,
        )

    def _verified_tls(self, transaction: HTTPTransaction) -> bool:
        url = transaction.request.url if transaction.request else None
        if not url or not url.lower().startswith("https://"):
            return False
        host = _norm_host(url_host(url))
        if not host:
            return False
        handshakes = [
            h for h in self.keys.tls_handshakes or () if _norm_host(h.server_name) == host
        ]
        if not handshakes:
            # 0.4 probes record no handshakes; their HTTP client verifies certificates
            return True
        return any(not h.failure and not h.no_tls_verify for h in handshakes)

    def _blockpage(self, scan_bodies: bool) -> str | None:
        """A confirmed blockpage fingerprint in any response of the chain, described."""
        cc = self.pm.base.probe_cc
        for transaction in self.requests:
            response = transaction.response
            if response is None:
                continue
            headers = response.header_map()
            found = self.fps.match_headers(headers)
            url = transaction.request.url if transaction.request else ""
            cleartext = not (url or "").lower().startswith("https://")
            if scan_bodies and (cleartext or not self._verified_tls(transaction)):
                found += self.fps.match_body(self._text(response))
            for fp in found:
                if fp.scope in BLOCKING_SCOPES and fp.confirmed_for(cc):
                    return _known(fp)
        return None

    def _server_challenge(self, response: HTTPResponse) -> str | None:
        """A CDN's bot challenge or error page, known to OONI as a false positive."""
        body = self._text(response)
        false_positive = [fp for fp in self.fps.match_body(body) if fp.scope == "fp"]
        if (response.header("cf-mitigated") or "") == "challenge" or (
            (response.header("server") or "").lower() == "cloudflare"
            and any(marker in body for marker in CHALLENGE_MARKERS)
        ):
            return "Cloudflare bot challenge"
        if false_positive:
            return f"page known to be no blockpage ({false_positive[0].name})"
        return None

    def _stage_of(self, failure: str) -> tuple[str, str, str | None]:
        """(stage, what failed, the control's failure at that same place if it failed too)."""
        keys = self.keys
        control = self.control
        candidates: list[tuple[float, int, str, str, str | None]] = []
        order = 0
        for connect in keys.tcp_connects():
            status = connect.status
            if not status or status.failure != failure or _extra_check(connect.tags):
                continue
            endpoint = _endpoint(connect.ip or "", connect.port)
            if failure in UNREACHABLE and ":" in (connect.ip or ""):
                continue  # an IPv6 route the probe's network lacks, not a censor
            theirs = control.tcp_connect.get(endpoint) if control and control.tcp_connect else None
            control_failure = (
                (theirs.failure or "failed") if theirs and theirs.status is False else None
            )
            order += 1
            candidates.append(
                (connect.t or 0.0, order, "tcp", f"connect to {endpoint}", control_failure)
            )
        for handshake in keys.tls_handshakes or ():
            if handshake.failure != failure or _extra_check(handshake.tags):
                continue
            address = handshake.address or "?"
            theirs_tls = (
                control.tls_handshake.get(address) if control and control.tls_handshake else None
            )
            control_failure = (
                (theirs_tls.failure or "failed")
                if theirs_tls and theirs_tls.status is False
                else None
            )
            order += 1
            candidates.append(
                (
                    handshake.t or 0.0,
                    order,
                    "tls",
                    f"handshake with {address} (SNI {handshake.server_name})",
                    control_failure,
                )
            )
        for query in keys.queries or ():
            if query.failure == failure and (query.engine or "") in self.engines:
                order += 1
                candidates.append(
                    (query.t or 0.0, order, "dns", f"lookup of {query.hostname}", None)
                )
        if candidates:
            _t, _o, stage, where, control_failure = max(candidates)
            return stage, where, control_failure
        url = (self.final.request.url if self.final and self.final.request else None) or ""
        secure = url.lower().startswith("https://")
        certificate = failure in CERTIFICATE or failure.startswith("ssl_error")
        shook = any(h.failure is None for h in keys.tls_handshakes or ())
        risky = failure in RESETS or failure in EOFS or failure in TIMEOUTS or certificate
        if secure and not shook and risky:
            # 0.4 probes record no handshakes: an https fetch that failed after a good connect
            connected = any(c.status and c.status.success for c in keys.tcp_connects())
            if connected or certificate:
                return "tls", f"handshake for {url}", None
        if failure in NXDOMAIN:
            return "dns", f"lookup for {url}", None
        return "http", f"request for {url}", None


@dataclass(frozen=True)
class _Diff:
    differs: bool  # OONI's http-diff decision
    why: str  # what matched or differed, for the reason
    same_content: bool  # the body's length or the title matches: no blockpage to look for


def _http_diff(
    response: HTTPResponse, control: ControlHTTP, text: Callable[[HTTPResponse], str]
) -> _Diff:
    """OONI's comparison of a page with the control's (`text` gives a page's text)."""
    code = response.code or 0
    control_code = control.status_code or 0
    status_match: bool | None = None
    if code > 0 and control_code > 0:
        status_match = code == control_code
        if not status_match and control_code // 100 != 2:
            status_match = None
    body_length = response.body_length()
    control_length = control.body_length or 0
    body_match: bool | None = None
    proportion = 0.0
    if body_length > 0 and control_length > 0 and not response.body_is_truncated:
        proportion = min(body_length, control_length) / max(body_length, control_length)
        body_match = proportion > BODY_PROPORTION
    headers_match: bool | None = None
    if control_code > 0:
        ours = set(response.header_map()) - COMMON_HEADERS
        theirs = {h.lower() for h in control.headers or {}} - COMMON_HEADERS
        headers_match = bool(ours & theirs)
    title_match: bool | None = None
    if control_code > 0:
        found = TITLE.search(text(response)[:65536])
        ours_title = _long_words(found.group(1) if found else "")
        theirs_title = _long_words(control.title or "")
        title_match = not (ours_title ^ theirs_title)
    matched = [
        name
        for name, value in (
            ("body length", body_match),
            ("headers", headers_match),
            ("title", title_match),
        )
        if value
    ]
    same_content = bool(status_match and (body_match or title_match))
    if status_match and matched:
        return _Diff(False, f"status {code} and {', '.join(matched)} match", same_content)
    differences = []
    if status_match is not True:
        differences.append(f"status {code} vs {control_code}")
    if body_match is False:
        differences.append(f"body {body_length} vs {control_length} bytes")
    if title_match is False:
        differences.append("title")
    if headers_match is False:
        differences.append("no uncommon header in common")
    return _Diff(True, "; ".join(differences) or "nothing could be compared", same_content)


def _private_redirect(response: HTTPResponse | None) -> str | None:
    """The Location of a redirect that points at a private address: no public site does that."""
    if response is None or not 300 <= (response.code or 0) < 400:
        return None
    location = response.header("location") or ""
    host = url_host(location)
    return location[:120] if host and is_bogon(host) else None


def _long_words(title: str) -> set[str]:
    return {w.lower() for w in title.split(" ") if len(w.encode("utf-8")) >= 5}


def _extra_check(tags: list[str] | None) -> bool:
    """0.5 probes also connect to port 443 of http:// sites; those checks are not the fetch."""
    return bool(tags) and "fetch_body=false" in (tags or ())


def _endpoint(ip: str, port: int | None) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _known(fp: Fingerprint) -> str:
    where = ", ".join(sorted(fp.expected_countries)) or "any country"
    return f"a known censor fingerprint {fp.name} ({fp.scope}, {where})"


@lru_cache(maxsize=65536)
def _norm_host(host: str | None) -> str:
    if not host:
        return ""
    host = host.strip().rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host
