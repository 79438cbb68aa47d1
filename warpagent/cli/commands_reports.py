"""Reports by hand: the board's monthly summary (and its e-mail), the technical report with its CSV."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path

from checks import frameworks
from reports import caf, produce, render, technical
from warpagent import clock, config
from warpagent.cli.common import EXIT_INCOMPLETE, EXIT_OK, no_store, write_out
from warpagent.cli.output import findings_csv
from warpagent.errors import ConfigError
from warpagent.model.findings import FindingStatus
from warpagent.scan import coverage
from warpagent.store.findings import Store


def cmd_report(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    if not settings.store.exists():
        return no_store(settings)
    now = clock.now()
    with Store(settings.store) as store:
        if args.report_kind == "board":
            return _board(args, settings, store, now)
        if args.report_kind == "caf":
            return _caf(args, settings, store)
        return _technical(args, settings, store, now)


def _board(args: argparse.Namespace, settings: config.Settings, store: Store, now: dt.datetime) -> int:
    this_month = clock.month_of(now, clock.zone(settings.schedule.timezone))  # the council's calendar
    month = args.month or this_month
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month) or month > this_month:
        raise ConfigError([f"--month: '{month}' is not a month up to now; write it as YYYY-MM, e.g. {this_month}"])
    if args.email and settings.reports.email is None:
        raise ConfigError([f"{settings.source}: At 'reports': no email settings; add reports.email "
                           "(smtp_host, from, to) to send the board report"])
    output = produce.board_report(settings, store, month, now)
    if args.out:
        write_out(args.out, output.html)
    elif not args.email:
        sys.stdout.write(output.html)
    store.log_report("board", now)
    if not args.email:
        return EXIT_OK
    sent, problems = produce.email_board(settings, output, month)
    for problem in problems:
        print(f"warpagent: {problem}", file=sys.stderr)
    print(f"board report for {output.data.month}: {sent} message(s) sent"
          + ("; the rest is kept for the next attempt" if problems else ""), file=sys.stderr)
    return EXIT_INCOMPLETE if problems else EXIT_OK


def _technical(args: argparse.Namespace, settings: config.Settings, store: Store, now: dt.datetime) -> int:
    found = store.findings()
    measured = produce.estate_coverage(settings.estates, settings.feeds, store)
    data = technical.build(found, organisation=settings.organisation.name, now=now,
                           since=store.last_report("technical"), coverage=measured)
    html = render.render("technical.html.j2", report=data, colour=settings.reports.primary_colour)
    if args.out:
        write_out(args.out, html)
        csv_path = str(Path(args.out).with_suffix(".csv"))
        write_out(csv_path, findings_csv([t for t in found if t.status is FindingStatus.OPEN]))
    else:
        sys.stdout.write(html)
    store.log_report("technical", now)
    return EXIT_OK


def _caf(args: argparse.Namespace, settings: config.Settings, store: Store) -> int:
    measured = coverage.measured_checks(store.latest_finished_runs().values())
    rows = caf.build(store.findings(), measured, frameworks.table())
    text = {"json": caf.to_json, "csv": caf.to_csv}.get(args.format, lambda r: caf.to_html(
        r, settings.organisation.name, settings.reports.primary_colour))(rows)
    write_out(args.out or "-", text)
    return EXIT_OK
