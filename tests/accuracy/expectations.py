"""What each labelled measurement should get, and what OONI itself concluded, with arguments.

GENERATED: the 50 scenarios OONI made in an emulated censored network. The expected verdict and
technique follow from the scenario's name (what the emulated censor or server did). Where our
verdict's class differs from OONI's (replayed from its classic analysis), the argument says why.

REAL: measurements from real networks. OONI's verdict is the one OONI's own code asserts for that
file (its fastpath tests, OONI's backend scoring), else the probe's own `blocking`/`accessible`;
for probe-cli's `manual/` files, OONI's classic analysis replayed. Disagreements are argued.
"""

from __future__ import annotations

from typing import NamedTuple


class Expected(NamedTuple):
    verdict: str
    technique: str | None = None
    argument: str = ""  # why we differ from OONI, where we do


CAPTCHA = (
    "OONI calls the Cloudflare CAPTCHA an http-diff; it is the site's own bot challenge served "
    "to the probe's address (503, `Just a moment...`, Cloudflare headers), not a censor's page."
)
BROKEN_REDIRECT = (
    "OONI calls it http-failure, but the failure is in the server's own reply (a redirect whose "
    "Location has no valid host): the network delivered it intact, so there is no evidence of "
    "censorship; the probe could not follow the site's redirect, so the measurement says too "
    "little."
)

GENERATED: dict[str, Expected] = {
    "badSSLWithExpiredCertificate": Expected("down"),
    "badSSLWithUnknownAuthorityWithConsistentDNS": Expected("down"),
    "badSSLWithUnknownAuthorityWithInconsistentDNS": Expected("blocked", "dns.inconsistent"),
    "badSSLWithWrongServerName": Expected("down"),
    "cloudflareCAPTCHAWithHTTP": Expected("ok", argument=CAPTCHA),
    "cloudflareCAPTCHAWithHTTPS": Expected("ok"),
    "controlFailureWithSuccessfulHTTPSWebsite": Expected("ok"),
    "controlFailureWithSuccessfulHTTPWebsite": Expected("error"),
    "dnsBlockingAndroidDNSCacheNoData": Expected("blocked", "dns.nxdomain"),
    "dnsBlockingBOGON": Expected("blocked", "dns.bogon"),
    "dnsBlockingNXDOMAIN": Expected("blocked", "dns.nxdomain"),
    "dnsHijackingToLocalhostWithHTTP": Expected("blocked", "dns.bogon"),
    "dnsHijackingToLocalhostWithHTTPS": Expected("blocked", "dns.bogon"),
    "dnsHijackingToProxyWithHTTPSURL": Expected("ok"),
    "dnsHijackingToProxyWithHTTPURL": Expected("ok"),
    "ghostDNSBlockingWithHTTP": Expected("blocked", "dns.inconsistent"),
    "ghostDNSBlockingWithHTTPS": Expected("blocked", "dns.inconsistent"),
    "httpBlockingConnectionReset": Expected("blocked", "http.reset"),
    "httpDiffWithConsistentDNS": Expected("blocked", "http.diff"),
    "httpDiffWithInconsistentDNS": Expected("blocked", "dns.inconsistent"),
    "idnaWithoutCensorshipLowercase": Expected("ok"),
    "idnaWithoutCensorshipWithFirstLetterUppercase": Expected("ok"),
    "largeFileWithHTTP": Expected("ok"),
    "largeFileWithHTTPS": Expected("ok"),
    "localhostWithHTTP": Expected("down"),
    "localhostWithHTTPS": Expected("down"),
    "redirectWithBrokenLocationForHTTP": Expected("error", argument=BROKEN_REDIRECT),
    "redirectWithBrokenLocationForHTTPS": Expected("error", argument=BROKEN_REDIRECT),
    "redirectWithConsistentDNSAndThenConnectionRefusedForHTTP": Expected("blocked", "tcp.refused"),
    "redirectWithConsistentDNSAndThenConnectionRefusedForHTTPS": Expected("blocked", "tcp.refused"),
    "redirectWithConsistentDNSAndThenConnectionResetForHTTP": Expected("blocked", "http.reset"),
    "redirectWithConsistentDNSAndThenConnectionResetForHTTPS": Expected("blocked", "tls.reset"),
    "redirectWithConsistentDNSAndThenEOFForHTTP": Expected("blocked", "http.reset"),
    "redirectWithConsistentDNSAndThenEOFForHTTPS": Expected("blocked", "tls.eof"),
    "redirectWithConsistentDNSAndThenNXDOMAIN": Expected("blocked", "dns.nxdomain"),
    "redirectWithConsistentDNSAndThenTimeoutForHTTP": Expected("blocked", "http.timeout"),
    "redirectWithConsistentDNSAndThenTimeoutForHTTPS": Expected("blocked", "tls.timeout"),
    "redirectWithMoreThanTenRedirectsAndHTTP": Expected("down"),
    "redirectWithMoreThanTenRedirectsAndHTTPS": Expected("down"),
    "successWithHTTP": Expected("ok"),
    "successWithHTTPS": Expected("ok"),
    "tcpBlockingConnectTimeout": Expected("blocked", "tcp.timeout"),
    "tcpBlockingConnectionRefusedWithInconsistentDNS": Expected("blocked", "dns.inconsistent"),
    "throttlingWithHTTP": Expected("blocked", "throttled"),
    "throttlingWithHTTPS": Expected("blocked", "throttled"),
    "tlsBlockingConnectionResetWithConsistentDNS": Expected("blocked", "tls.reset"),
    "tlsBlockingConnectionResetWithInconsistentDNS": Expected("blocked", "dns.inconsistent"),
    "websiteDownNXDOMAIN": Expected("down"),
    "websiteDownNoAddrs": Expected("down"),
    "websiteDownTCPConnect": Expected("down"),
}


class Ooni(NamedTuple):
    """OONI's outcome for one real measurement and target, in OONI's words."""

    outcome: str  # anomaly | no anomaly | failure (OONI's words)
    source: str
    argument: str = ""  # why we differ, where we do


FASTPATH = "OONI fastpath test"
PROBE = "probe's test_keys"

REAL: dict[tuple[str, str], Ooni] = {
    ("20250527233111.802678_ID_webconnectivity_5a37ec909dbf14e3.json", "*"): Ooni(
        "anomaly", FASTPATH + " (confirmed fingerprint ooni.id_lamanlabuh_kominfo)"
    ),
    ("bug_351.json", "*"): Ooni("failure", FASTPATH),
    ("bug_352.json", "*"): Ooni("anomaly", FASTPATH),
    ("report1.json", "*"): Ooni("no anomaly", PROBE),
    ("report1blocked.json", "*"): Ooni("no anomaly", PROBE),
    ("report2.json", "*"): Ooni("no anomaly", PROBE),
    ("report2blocked.json", "*"): Ooni("no anomaly", PROBE),
    ("requests_none.json", "*"): Ooni(
        "anomaly",
        FASTPATH,
        "The probe got NXDOMAIN for www.wikispaces.com in January 2021, and so did the control: "
        "its DNS answer held no address and its HTTP fetch failed with dns_lookup_error. "
        "Wikispaces closed in 2018; a name that resolves nowhere is down, not blocked. OONI's "
        "legacy analysis counted the control's bare CNAME as a resolution.",
    ),
    ("test_keys_none.json", "*"): Ooni("failure", FASTPATH),
    ("web_connectivity_b64_hdr.json", "*"): Ooni("anomaly", PROBE),
    ("web_connectivity_b64_incorrect.json", "*"): Ooni("no anomaly", PROBE),
    ("web_connectivity_ir_fp.json", "*"): Ooni("anomaly", FASTPATH),
    ("web_connectivity_no_body.json", "*"): Ooni("no anomaly", FASTPATH),
    ("web_connectivity_null.json", "*"): Ooni("failure", FASTPATH),
    ("web_connectivity_null2.json", "*"): Ooni(
        "failure",
        FASTPATH,
        "OONI marks it failed because the probe concluded nothing (blocking null). The "
        "evidence does say something: the probe's TLS handshake with yooz.ir failed on its "
        "certificate and the control could not fetch the page either (unknown_error), so the "
        "site failed from outside too: down, not censorship. Neither side calls it blocked.",
    ),
    ("web_connectivity_odd_hdr.json", "*"): Ooni("anomaly", FASTPATH),
    ("signal_022.json", "*"): Ooni("no anomaly", FASTPATH),
    ("signal_2627.json", "*"): Ooni("failure", FASTPATH),
    ("signal_679.json", "*"): Ooni(
        "failure",
        FASTPATH,
        "OONI discards Signal measurements from engines older than 3.17.2 after 2023-05-02 "
        "because they still tested api.directory.signal.org, which Signal retired. We drop only "
        "that endpoint: the five live ones (storage, chat, both CDNs, sfu) all answered over "
        "TLS, so Signal worked. Neither side calls it blocked.",
    ),
    ("telegram_nourl.json", "telegram/messaging"): Ooni(
        "failure",
        FASTPATH,
        "OONI fails the whole measurement because its HTTP requests carry no URL (a 2019 client "
        "bug). The TCP connects to the data centres are intact: 12 of 12 succeeded, so "
        "messaging was reachable. Neither side calls it blocked.",
    ),
    ("telegram_nourl.json", "telegram/web"): Ooni("failure", FASTPATH),
    ("whatsapp.json", "whatsapp/messaging"): Ooni("no anomaly", FASTPATH),
    ("whatsapp.json", "whatsapp/registration"): Ooni("no anomaly", FASTPATH),
    ("whatsapp.json", "whatsapp/web"): Ooni(
        "no anomaly", FASTPATH + " (the probe's own 'blocked' was an expected-status bug)"
    ),
    ("riseupvpn.json", "*"): Ooni(
        "failure", FASTPATH + " (scoring disabled since 2023-10-17: no judgement)"
    ),
    ("openvpn.json", "*"): Ooni("no anomaly", FASTPATH),
    ("tor.json", "*"): Ooni("no anomaly", FASTPATH),
    ("tor_list.json", "*"): Ooni("failure", FASTPATH),
    ("torsf_1.json", "*"): Ooni("anomaly", FASTPATH),
    ("torsf_2.json", "*"): Ooni("no anomaly", FASTPATH),
    ("torsf_383.json", "*"): Ooni("failure", FASTPATH),
    ("vanilla_tor.json", "*"): Ooni("anomaly", FASTPATH),
    ("vanilla_tor_ok.json", "*"): Ooni("no anomaly", FASTPATH),
}

OUR_OUTCOME = {"ok": "no anomaly", "down": "no anomaly", "blocked": "anomaly", "error": "failure"}
"""Our verdicts in OONI's three outcomes: a site that is down is no anomaly for OONI either."""
