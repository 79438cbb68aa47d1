"""The `warpagent hub` commands: serve, aggregate, hash-password."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import getpass
import json
import logging
import sys

from reports.regional import render_page
from warpagent import clock, config
from warpagent.cli.common import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, write_out
from warpagent.hub import aggregate


def cmd_hub(args: argparse.Namespace) -> int:
    if args.hub_action == "hash-password":
        return _hash_password()
    settings = config.load(args.config)
    if args.hub_action == "serve":
        from warpagent.hub import server  # medallion, Flask and cheroot: only a hub loads them

        if args.verbose == 0:
            logging.getLogger().setLevel(logging.INFO)  # a server's log is its record
        server.serve(settings)
        return EXIT_OK
    return _aggregate(args, settings)


def _hash_password() -> int:
    from warpagent.hub.server import hash_password  # as above: the hub's heavy dependencies

    password = getpass.getpass("hub password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if len(password) < 12:
        print("warpagent: the password is shorter than 12 characters; choose a longer one", file=sys.stderr)
        return EXIT_USAGE
    print(hash_password(password))
    return EXIT_OK


def _aggregate(args: argparse.Namespace, settings: config.Settings) -> int:
    now = clock.now()
    result = aggregate.aggregate(settings, now, publish=not args.dry_run)
    picture = result.picture
    if args.bundle:
        write_out(args.bundle, result.bundle_text)
    if args.json:
        text = json.dumps(dataclasses.asdict(picture), indent=2, default=_json_default) + "\n"
    else:
        text = render_page(picture, settings.reports.primary_colour)
    if args.out:
        write_out(args.out, text)
    else:
        sys.stdout.write(text)
    reports = [result.pulled] + ([result.published] if result.published else [])
    for report in reports:
        for error in report.errors:
            print(f"warpagent: {error}", file=sys.stderr)
    print(f"regional picture {picture.as_of}: {picture.members_current} members counted, "
          f"{picture.members_total - picture.members_current} stale; {result.pulled.accepted_objects} new objects "
          f"pulled ({result.pulled.rejected_objects} rejected); "
          + ("not published (dry run)" if result.published is None else
             "published to the regional collection" if result.published.ok else "NOT published (kept in the outbox)"),
          file=sys.stderr)
    return EXIT_OK if all(r.ok for r in reports) else EXIT_INCOMPLETE


def _json_default(value: object) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(type(value).__name__)
