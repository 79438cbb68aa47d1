"""One GET of the front page of each web service nmap found, for the web checks: the headers,
the cookies it sets, and the CMS its page says it runs.

Only the address and port nmap has just scanned (inside scope) are contacted: one request
each, no redirect followed, nothing sent but the request line and a Host header. The
certificate is not judged here (the TLS checks do that), so a self-signed service is read too.
"""

from __future__ import annotations

import dataclasses
import html.parser
import re
import warnings

import urllib3

from warpagent.model.evidence import WebPage
from warpagent.model.findings import Host, Service

TIMEOUT_S = 5.0  # a page that takes longer is not read (nmap's own view of the service stands)
MAX_BODY = 256 * 1024  # the generator tag sits in <head>
WEB_NAMES = ("http", "https", "http-alt", "http-proxy", "https-alt")
# a CMS named by <meta name="generator">, as its CPE (endoflife.date and NVD know it by that)
CMS = ((re.compile(r"^WordPress (\d+(?:\.\d+){1,2})\b"), "wordpress", "cpe:/a:wordpress:wordpress"),
       (re.compile(r"^Drupal (\d+(?:\.\d+){0,2})\b"), "drupal", "cpe:/a:drupal:drupal"),
       (re.compile(r"^Joomla! (\d+(?:\.\d+){1,2})\b"), "joomla", "cpe:/a:joomla:joomla%21"))


def is_web(service: Service) -> bool:
    return service.state == "open" and service.protocol == "tcp" and not service.component and (
        service.name in WEB_NAMES or service.name.startswith("http"))


class _Generator(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.generator = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): v or "" for k, v in attrs}
        if tag == "meta" and values.get("name", "").lower() == "generator" and not self.generator:
            self.generator = values.get("content", "")[:120]


def generator_of(body: bytes) -> str:
    parser = _Generator()
    parser.feed(body.decode("utf-8", "replace"))
    return parser.generator


def fetch(address: str, service: Service, host_header: str, timeout_s: float = TIMEOUT_S) -> WebPage | None:
    scheme = "https" if service.tunnel == "ssl" or service.name.startswith("https") else "http"
    pool: urllib3.HTTPConnectionPool
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(address, service.port, cert_reqs="CERT_NONE", assert_hostname=False,
                                           timeout=timeout_s, retries=False)
    else:
        pool = urllib3.HTTPConnectionPool(address, service.port, timeout=timeout_s, retries=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            response = pool.request("GET", "/", headers={"Host": host_header, "User-Agent": "warpagent"},
                                    redirect=False, preload_content=False)
            body = response.read(MAX_BODY)
            response.release_conn()
    except (urllib3.exceptions.HTTPError, OSError):
        return None
    finally:
        pool.close()
    headers = tuple((k.lower(), v) for k, v in response.headers.items() if k.lower() != "set-cookie")
    return WebPage(port=service.port, scheme=scheme, status=response.status, headers=headers,
                   cookies=tuple(response.headers.getlist("set-cookie")), generator=generator_of(body))


def cms_services(pages: tuple[WebPage, ...]) -> tuple[Service, ...]:
    """A service entry for each CMS a page names, for the patches and end-of-life checks."""
    found = []
    for page in pages:
        for pattern, name, cpe in CMS:
            match = pattern.match(page.generator)
            if match:
                found.append(Service(port=page.port, protocol="tcp", state="open", name="http",
                                     product=page.generator.split(" ")[0], version=match[1],
                                     cpes=(f"{cpe}:{match[1]}",), component=name))
    return tuple(found)


def probe(host: Host, timeout_s: float = TIMEOUT_S, silent: frozenset[int] = frozenset()) -> Host:
    """The host with its web pages read and the CMS they name added as services. `silent`: ports
    whose version detection overran its budget; a GET there would only wait out its timeout too."""
    pages = tuple(page for service in host.open_services() if is_web(service) and service.port not in silent
                  if (page := fetch(host.address, service, host.asset, timeout_s)) is not None)
    if not pages:
        return host
    return dataclasses.replace(host, services=host.services + cms_services(pages),
                               evidence=dataclasses.replace(host.evidence, web=pages))
