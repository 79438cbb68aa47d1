"""The regional picture as a page a WARP coordinator can forward (self-contained HTML)."""

from __future__ import annotations

from reports import render
from reports.board import CATEGORY_NAMES
from warpagent.sharing.regional import RegionalPicture

SHORT_NAMES = {"patches": "Patch", "unsupported": "EOL", "privileges": "Priv", "passwords": "Pass",
               "configs": "Conf", "supply_chain": "Supply", "backups": "Backup"}


def render_page(picture: RegionalPicture, colour: str = "#1d4f91") -> str:
    months = [point.strftime("%b") for point in picture.trend_points]
    return render.render("regional.html.j2", p=picture, colour=colour, names=CATEGORY_NAMES, short=SHORT_NAMES,
                         months=months)
