"""configs of the council's web services (WA523-WA527): HTTPS, HSTS, the headers browsers are
told to protect pages with, session cookies, and version tokens. From one GET of each web
service's front page (evidence/web.py), as the NCSC's Web Check judged them."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

from checks.base import CheckContext, Weakness, check
from warpagent.model.evidence import WebPage
from warpagent.model.findings import Host, Service, Severity
from warpagent.text import shown

HSTS_MIN_AGE = 31_536_000  # a year: what browsers' preload lists and the NCSC ask for
REDIRECTS = (301, 302, 303, 307, 308)
VERSION_HEADERS = ("server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version", "x-generator")
_VERSION = re.compile(r"\d+\.\d+")
_MAX_AGE = re.compile(r"max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_SESSION_NAME = re.compile(r"sess|sid|auth|token|login", re.IGNORECASE)


def _pages(host: Host) -> Iterator[tuple[WebPage, Service]]:
    by_port = {s.port: s for s in host.open_services() if s.protocol == "tcp" and not s.component}
    for page in host.evidence.web:
        if page.port in by_port:
            yield page, by_port[page.port]


def _on(service: Service, subject: str, severity: Severity, title: str, evidence: str, fix: str) -> Weakness:
    made = Weakness.on(service, title=title, severity=severity, evidence=evidence, remediation=fix)
    return dataclasses.replace(made, subject=f"{service.endpoint}:{subject}") if subject else made


@check("WA523", "configs", "http-without-https")
def http_without_https(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A web service answering over plain HTTP without redirecting to HTTPS. Medium.

    Board: a council web service can be used without encryption.

    Why it matters: anything sent to it, a login included, crosses the network readable and
    changeable by anyone on the path.
    Fix: redirect every HTTP request to the same address over HTTPS (a 301 to https://), and
    serve the site only over HTTPS.
    """
    for page, service in _pages(host):
        location = page.header("location") or ""
        if page.scheme == "http" and not (page.status in REDIRECTS and location.lower().startswith("https://")):
            said = f"HTTP {page.status}" + (f" to {shown(location, 80)}" if location else "")
            yield _on(service, "", Severity.MEDIUM, f"Web service on port {page.port} is served without HTTPS",
                      f"GET http://{shown(host.asset)}:{page.port}/ answered {said}, not a redirect to https://",
                      "Redirect all HTTP requests to HTTPS (301) and serve the site over HTTPS only.")


@check("WA524", "configs", "hsts-missing")
def hsts_missing(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """An HTTPS service without Strict-Transport-Security, or with a max-age under a year. Low.

    Why it matters: without HSTS, a browser's first request can be downgraded to plain HTTP by
    anyone on the path, and the user never notices.
    Fix: send `Strict-Transport-Security: max-age=31536000; includeSubDomains` on every HTTPS
    response.
    """
    for page, service in _pages(host):
        if page.scheme != "https":
            continue
        value = page.header("strict-transport-security")
        age = _MAX_AGE.search(value or "")
        if value is None or age is None or int(age[1]) < HSTS_MIN_AGE:
            said = f"Strict-Transport-Security: {shown(value, 80)}" if value else "no Strict-Transport-Security"
            yield _on(service, "hsts", Severity.LOW, f"HTTPS service on port {page.port} has no year-long HSTS",
                      f"GET https://{shown(host.asset)}:{page.port}/: {said}",
                      "Send Strict-Transport-Security: max-age=31536000; includeSubDomains.")


def _missing_headers(page: WebPage) -> Iterator[tuple[str, str]]:
    csp = page.header("content-security-policy") or ""
    if (page.header("x-content-type-options") or "").lower() != "nosniff":
        yield "nosniff", "X-Content-Type-Options: nosniff"
    if "frame-ancestors" not in csp.lower() and page.header("x-frame-options") is None:
        yield "frame", "frame protection (CSP frame-ancestors or X-Frame-Options)"
    if not csp:
        yield "csp", "Content-Security-Policy"


@check("WA525", "configs", "security-headers-missing")
def security_headers_missing(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A web page without X-Content-Type-Options: nosniff, without frame protection (CSP
    frame-ancestors or X-Frame-Options), or without a Content-Security-Policy. Info.

    Why it matters: they are how a site tells browsers to refuse content-type tricks, being
    framed by another site (clickjacking), and scripts it did not mean to run.
    Fix: send `X-Content-Type-Options: nosniff`, `Content-Security-Policy: frame-ancestors 'self'`
    and a CSP fitted to the site.
    """
    for page, service in _pages(host):
        if page.scheme == "http" and page.status in REDIRECTS:
            continue  # judged where it redirects to
        for key, header in _missing_headers(page):
            yield _on(service, f"header:{key}", Severity.INFO, f"Web page on port {page.port} sends no {header}",
                      f"GET {page.scheme}://{shown(host.asset)}:{page.port}/: no {header}",
                      f"Send {header} on every response.")


def _cookie(text: str) -> tuple[str, set[str], bool]:
    """(name, lower-case attribute names, whether it lives only for the session)."""
    parts = [p.strip() for p in text.split(";")]
    name = parts[0].split("=", 1)[0].strip()
    attributes = {p.split("=", 1)[0].strip().lower() for p in parts[1:] if p}
    return name, attributes, not attributes & {"expires", "max-age"}


@check("WA526", "configs", "session-cookie-unprotected")
def session_cookie_unprotected(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """A session cookie (one that lives for the session, or is named like one: PHPSESSID,
    JSESSIONID, ASP.NET_SessionId, *token*) set without Secure over HTTPS (medium) or without
    HttpOnly (low).

    Why it matters: a session cookie without Secure can be sent over plain HTTP and stolen on
    the path; without HttpOnly, any script injected into the page can read it and take over
    the session.
    Fix: set session cookies with `Secure; HttpOnly; SameSite=Lax` (or Strict).
    """
    for page, service in _pages(host):
        for text in page.cookies:
            name, attributes, session = _cookie(text)
            if not (session or _SESSION_NAME.search(name)):
                continue
            lacking = [a for a in ("secure", "httponly") if a not in attributes
                       and (a != "secure" or page.scheme == "https")]
            if lacking:
                severity = Severity.MEDIUM if "secure" in lacking else Severity.LOW
                flags = " and ".join({"secure": "Secure", "httponly": "HttpOnly"}[a] for a in lacking)
                yield _on(service, f"cookie:{name.lower()[:40]}", severity,
                          f"Session cookie '{shown(name, 40)}' on port {page.port} is set without {flags}",
                          f"Set-Cookie: {shown(text, 120)}", "Set session cookies with Secure; HttpOnly; SameSite=Lax.")


@check("WA527", "configs", "version-in-headers")
def version_in_headers(host: Host, ctx: CheckContext) -> Iterator[Weakness]:
    """Response headers that name the server's software and version (Server: nginx/1.22.1,
    X-Powered-By: PHP/8.1.2). Info.

    Why it matters: it tells an attacker which published flaws to try, without a scan.
    Fix: send no version (nginx `server_tokens off;`, Apache `ServerTokens Prod`, PHP
    `expose_php = Off`), and remove X-Powered-By and X-AspNet-Version.
    """
    for page, service in _pages(host):
        told = [f"{k}: {shown(v, 60)}" for k, v in page.headers if k in VERSION_HEADERS and _VERSION.search(v)]
        if told:
            yield _on(service, "version-headers", Severity.INFO,
                      f"Web service on port {page.port} names its software version in headers",
                      "; ".join(told), "Turn version tokens off (server_tokens off, ServerTokens Prod, expose_php).")
