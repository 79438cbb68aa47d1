"""Rendering reports with Jinja2: self-contained HTML, autoescaped (every user string is escaped),
and the plain-text part of e-mails from `*.txt.j2` templates, never HTML-escaped (a board member
reads "Audit & Governance", not "Audit &amp; Governance")."""

from __future__ import annotations

import base64
import mimetypes
from pathlib import Path
from typing import Any

import jinja2

from warpagent.errors import WarpagentError

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"),
                          autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                                              disabled_extensions=("txt.j2",), default=True),
                          undefined=jinja2.StrictUndefined, trim_blocks=False)


class ReportError(WarpagentError):
    """A report cannot be rendered, written or sent."""


def logo_data_uri(path: Path | None) -> str:
    """The logo embedded as a data: URI, so the report needs nothing from the network."""
    if path is None:
        return ""
    kind = mimetypes.guess_type(path.name)[0] or ""
    if kind not in ("image/png", "image/jpeg", "image/svg+xml"):
        raise ReportError(f"{path}: reports.logo must be a PNG, JPEG or SVG file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReportError(f"{path}: cannot read reports.logo ({exc.strerror}); fix the path") from None
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def render(template: str, **context: Any) -> str:
    return _ENV.get_template(template).render(**context)
