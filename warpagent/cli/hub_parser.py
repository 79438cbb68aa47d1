"""The `warpagent hub` command line: its words only, so `--help` need not load the hub."""

from __future__ import annotations

import argparse
from typing import Any

HELP_EPILOG = """\
examples:
  warpagent --config hub.yaml hub serve            the WARP's TAXII 2.1 server (foreground)
  warpagent --config hub.yaml hub aggregate --out regional.html
                                                   pull members' posture, publish the regional picture
  warpagent hub hash-password < pw.txt             a password_hash for hub.users (many members)

Members share to the hub with 'warpagent share' (a peer with collection: members) and read the
regional picture with a second peer, collection: regional, direction: pull. See docs/hub.md.
"""


def add_parser(commands: Any) -> None:
    hub = commands.add_parser(
        "hub", help="run a WARP hub: the TAXII 2.1 server and the regional picture",
        description="A WARP hub: medallion's TAXII 2.1 server with warpagent's persistent backend, where member "
                    "councils publish anonymised posture, and the regional picture built from it (k-anonymised, "
                    "members under pseudonyms only).",
        epilog=HELP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = hub.add_subparsers(dest="hub_action", metavar="ACTION")
    actions.required = True
    actions.add_parser("serve", help="serve TAXII 2.1 for the WARP until SIGTERM",
                       description="Serve the hub's API root with a members' collection (members write and read) "
                                   "and a regional collection (the coordinator writes, everyone reads). Data lives "
                                   "in hub.store and survives restarts.")
    aggregate = actions.add_parser(
        "aggregate", help="build the regional picture and publish it",
        description="Pull every member's posture from the hub (as the first coordinator account), build the "
                    "regional picture (figures on fewer than sharing.k members withheld), write it as HTML and "
                    "publish it as a STIX report to the regional collection.")
    aggregate.add_argument("--out", metavar="FILE", help="write the HTML page to FILE (default: stdout)")
    aggregate.add_argument("--bundle", metavar="FILE", help="also write the published STIX bundle to FILE")
    aggregate.add_argument("--json", action="store_true", help="print the picture as JSON instead of HTML")
    aggregate.add_argument("--dry-run", action="store_true", help="build the picture but publish nothing")
    actions.add_parser("hash-password", help="print a password_hash for hub.users (reads the password from stdin)",
                       description="Read a password (a prompt on a terminal, else the first line of stdin) and "
                                   "print it as a salted PBKDF2-SHA256 hash for hub.users[].password_hash.")
