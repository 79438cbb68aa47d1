"""The warpagent command line: the argument parser, logging, and errors mapped to exit codes.

What each command does lives in the cli/commands_*.py modules, one per part of the job."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

from warpagent import __version__
from warpagent.cli import hub_parser
from warpagent.cli.common import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE
from warpagent.collect.nmap_runner import Interrupted
from warpagent.errors import CollectError, ConfigError, DecisionError, ScopeError, StoreError, WarpagentError
from warpagent.model.findings import CATEGORIES, FindingStatus, Severity

log = logging.getLogger("warpagent")

DESCRIPTION = """\
Cyber hygiene scanner and WARP sharing agent for UK councils.

Scans the estates in your config with nmap, turns what it sees into findings across the
"unlucky seven" (patches, unsupported, privileges, passwords, configs, supply_chain,
backups), and tracks each finding from first seen to resolved in a local SQLite store.
"""

EPILOG = """\
examples:
  warpagent init                      write a commented config to ./config/warpagent.yaml
  warpagent check-config              validate it (one line per problem)
  warpagent scan                      scan every estate, store findings, print what changed
  warpagent scan --estate schools --json > tonight.json
  warpagent findings --category configs --format csv > configs.csv
  warpagent feeds update              fetch intel (NVD, OSV, KEV, EPSS, endoflife.date)
  warpagent feeds update --from /media/intel   import it offline; 'feeds status' shows its age
  warpagent report board --out board.html      this month's board report
  warpagent report board --month 2026-10 --email   e-mail October's to the board
  warpagent share --dry-run --out bundle.json   see exactly what would be shared
  warpagent share && warpagent pull   push the anonymised bundle to WARP peers, fetch theirs
  warpagent run                       the daemon: all of the above on schedule
  warpagent jobs                      what the daemon will do next, and how each job last went
  warpagent hub serve                 a WARP coordinator's TAXII 2.1 hub ('hub --help' for more)
  warpagent worker --concurrency 4    scan chunks for agents elsewhere (scan.executor: celery)

config: --config PATH, else $WARPAGENT_CONFIG, else ./config/warpagent.yaml; with none of
these, the embedded default scans this machine's loopback address (127.0.0.1).

exit codes: 0 done; 1 open findings at or above --fail-on (opt-in); 2 bad usage or config;
3 could not complete: a failed, partial or interrupted scan, a peer or mail server that could
not be reached (what was not delivered is kept and sent next time).
"""


FEEDS_EPILOG = """\
importing (--from DIR, repeatable): the feeds' files are found by their own names anywhere
under DIR, and any file inside a folder named after a feed (the layout of <feeds.dir>/raw)
belongs to that feed:
  known_exploited_vulnerabilities.json             CISA KEV catalog
  epss_scores-*.csv.gz                             FIRST EPSS scores (gzipped CSV)
  nvdcve-2.0-YYYY.json.gz, or nvd/*.json           NVD CVE API 2.0 JSON (yearly files or API pages)
  Debian/all.zip, Ubuntu/all.zip                   OSV advisories per ecosystem
  endoflife/full.json, or endoflife*/products/*.md endoflife.date API v1 JSON, or a repository clone
  debian.csv, ubuntu.csv                           distro-info-data (/usr/share/distro-info)
  security-support-ended.debNN                     debian-security-support
  *_dists_<suite>_main_binary-*_Packages, or
  dists/<suite>/main/binary-*/Packages.xz          Debian's package indexes (/var/lib/apt/lists, a mirror)
Feeds with no files under DIR keep what they had. Until a feed has data of its own, KEV and
endoflife.date come from the dated snapshot bundled with warpagent (feeds.bundled).

examples:
  warpagent feeds update                                   download everything that changed
  warpagent feeds update --from /media/usb/intel           an air-gapped machine
  warpagent feeds update --from /usr/share/distro-info --from /usr/share/debian-security-support
"""


FINDINGS_EPILOG = """\
examples:
  warpagent findings --status all --format json     every finding, for scripting
  warpagent findings show 3f9a2c                    one finding and its history
  warpagent accept 3f9a2c --reason "replacement ordered, isolated VLAN" --until 2027-03-31
  warpagent false-positive 3f9a2c --reason "banner only; patched build confirmed with the vendor"
  warpagent reopen 3f9a2c
"""

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="warpagent", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", metavar="PATH", help="config file (default: $WARPAGENT_CONFIG, "
                        "then ./config/warpagent.yaml, then the embedded default)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log detail on stderr (-v info, -vv debug)")
    parser.add_argument("--version", action="version", version=f"warpagent {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")  # none given: the help

    init = commands.add_parser("init", help="write a commented example config",
                               description="Write a commented example config to DIR/warpagent.yaml.")
    init.add_argument("dir", nargs="?", default="config", help="folder to write into (default: ./config)")
    init.add_argument("--force", action="store_true", help="overwrite an existing warpagent.yaml")

    commands.add_parser("check-config", help="validate the config; one line per problem",
                        description="Validate the config against its schema and resolve every "
                                    "estate's scope. Prints one line per problem; exit 2 if any.")

    scan = commands.add_parser(
        "scan", help="scan the estates now and store the findings",
        description="Run nmap over each estate's explicit address list, run every check, store the "
                    "findings and print what is new, still open and resolved. A complete run "
                    "resolves findings it no longer sees; a partial run resolves nothing.")
    scan.add_argument("--estate", metavar="NAME", help="scan only this estate")
    scan.add_argument("--json", action="store_true",
                      help="print a JSON document with 'summary' and 'findings' (no progress bar)")
    scan.add_argument("--fail-on", choices=[s.label for s in Severity], metavar="SEVERITY",
                      help="exit 1 if an open finding is at or above SEVERITY "
                           "(info, low, medium, high, critical); overrides scan.fail_on")
    scan.add_argument("--verify", metavar="ID",
                      help="re-measure one finding now (its host and port only, or its evidence re-read) and "
                           "resolve it if it is gone; nothing else is resolved")

    share = commands.add_parser(
        "share", help="share anonymised posture with WARP peers (STIX 2.1 over TAXII 2.1)",
        description="Build an anonymised STIX 2.1 bundle from the open findings (no council, estate, host or "
                    "person named; see docs/sharing.md), validate it, queue it in the outbox and deliver it to "
                    "every peer in sharing.peers. Undelivered bundles stay queued for the next run.")
    share.add_argument("--dry-run", action="store_true", help="build and validate only: queue and send nothing")
    share.add_argument("--out", metavar="FILE",
                       help="also write the bundle to FILE ('-' for stdout), and the versions bundle for a hub's "
                            "sealed collection, if any, beside it (bundle.json: bundle.versions.json)")
    share.add_argument("--json", action="store_true", help="print a JSON summary per peer")

    pull = commands.add_parser(
        "pull", help="fetch what peers published since the last pull",
        description="Fetch objects added to each peer's collection since the last pull (TAXII added_after, "
                    "paginated), validate them and keep them locally; malformed or oversized input is "
                    "rejected with a log line and the rest kept.")
    pull.add_argument("--json", action="store_true", help="print a JSON summary per peer")

    feeds = commands.add_parser(
        "feeds", help="intel feeds for the patches and unsupported checks",
        description="Intel feeds: NVD CVE JSON 2.0, OSV (Debian, Ubuntu), CISA KEV, FIRST EPSS, endoflife.date, "
                    "distro-info-data and debian-security-support, compiled into a local store that scans read.",
        epilog=FEEDS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    feed_actions = feeds.add_subparsers(dest="feeds_action", metavar="ACTION")
    feed_actions.required = True
    update = feed_actions.add_parser(
        "update", help="download the feeds (or import them with --from) and rebuild the intel store",
        description="Download each feed with conditional requests (only what changed), check it loads (and "
                    "NVD's sha256), and rebuild the intel store. A feed that fails keeps its previous data.",
        epilog=FEEDS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    update.add_argument("--from", dest="from_dirs", metavar="DIR", action="append", default=[],
                        help="import feed files found under DIR instead of downloading (air-gapped councils); "
                             "may be given more than once")
    update.add_argument("--json", action="store_true", help="print a JSON summary")
    status = feed_actions.add_parser("status", help="each feed's age and record count; warns when stale",
                                     description="Show each intel source's age and record count. Exit 3 when "
                                                 "there is no intel or a source is older than feeds.stale_after.")
    status.add_argument("--json", action="store_true", help="print JSON")

    report = commands.add_parser("report", help="board, technical and CAF evidence reports",
                                 description="Render reports from the findings store.")
    kinds = report.add_subparsers(dest="report_kind", metavar="KIND")
    kinds.required = True
    board = kinds.add_parser(
        "board", help="the monthly board report (self-contained HTML)",
        description="A five-minute read for the board: RAG per category with the rule that set it, trend, "
                    "top risks in plain words, remediation performance, coverage, and where the council stands "
                    "against its anonymised WARP peers. Self-contained HTML: inline CSS and SVG.")
    board.add_argument("--month", metavar="YYYY-MM", help="the month to report on (default: this month, to date)")
    board.add_argument("--out", metavar="FILE", help="write the HTML to FILE (default: stdout, unless --email)")
    board.add_argument("--email", action="store_true",
                       help="e-mail it to reports.email.to; one that cannot be sent is kept and sent next time")
    technical = kinds.add_parser(
        "technical", help="every open finding, by category and host, with a CSV beside it",
        description="Every open finding grouped by category and host with evidence, remediation, first seen "
                    "and age, and what changed since the last technical report. With --out X.html, the same "
                    "findings go to X.csv.")
    technical.add_argument("--out", metavar="FILE", help="write the HTML to FILE (and the CSV beside it)")
    caf = kinds.add_parser(
        "caf", help="evidence per NCSC CAF contributing outcome, for the council's self-assessment",
        description="For each CAF contributing outcome warpagent has evidence for (B4.d vulnerability management, "
                    "B2.c privileged user management, B5.c backups, ...): the checks that measure it, whether they "
                    "measured it, and what is open against it now.")
    caf.add_argument("--format", default="html", choices=["html", "csv", "json"], help="html (default), csv or json")
    caf.add_argument("--out", metavar="FILE", help="write it to FILE (default: stdout)")

    commands.add_parser(
        "run", help="the scheduler daemon: scans, shares, pulls and reports on schedule",
        description="Run in the foreground until SIGTERM or Ctrl-C: scan each estate on its schedule (and share "
                    "after a complete scan), pull from peers, and produce the board report monthly. Jobs persist "
                    "in the store; a run missed while the machine was down happens once on restart (within "
                    "schedule.misfire_grace). Only one daemon may run per store.")
    jobs = commands.add_parser("jobs", help="the schedule: next run times and each job's last result",
                               description="List the daemon's jobs with their schedule, next run and last result.")
    jobs.add_argument("--json", action="store_true", help="print JSON")

    hub_parser.add_parser(commands)

    worker = commands.add_parser(
        "worker", help="run scan chunks for agents on other machines (scan.executor: celery)",
        description="Consume scan chunks from the Redis broker in scan.celery and run them with nmap here. The "
                    "worker reads its own copy of the council's config: it scans only addresses inside the named "
                    "estate's scope (anything else is refused) with nmap arguments built from that config, and "
                    "sends nmap's output back to the agent, which stores the run.")
    worker.add_argument("--concurrency", type=int, default=2, metavar="N",
                        help="chunks this worker scans at once (default 2)")
    worker.add_argument("--name", default="warpagent", help="worker name in logs (default: warpagent)")

    findings = commands.add_parser(
        "findings", help="list stored findings, or show one with its history",
        description="List findings from the store, most severe first; 'findings show ID' prints one finding "
                    "with every event in its life (opened, re-opened, severity changed, became KEV, accepted, "
                    "expired, resolved).", epilog=FINDINGS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    findings.add_argument("words", nargs="*", metavar="show ID",
                          help="show one finding (its id or its first 6+ characters)")
    findings.add_argument("--status", default="open",
                          choices=[s.value for s in FindingStatus] + ["all"], help="default: open")
    findings.add_argument("--category", choices=CATEGORIES)
    findings.add_argument("--estate", metavar="NAME")
    findings.add_argument("--format", default="table", choices=["table", "json", "csv"],
                          help="table (default), json or csv")
    findings.add_argument("--json", action="store_true", help="with show: the finding and its history as JSON")

    accept = commands.add_parser(
        "accept", help="accept a finding's risk until a date (it leaves the open counts, stays listed)",
        description="Record that the council accepts a finding's risk: who, why and until when. It leaves the "
                    "RAG counts and the shared open counts and is listed in the board's accepted-risk register; "
                    "the first run after the date re-opens it.")
    accept.add_argument("id", help="the finding's id (or its first 6+ characters)")
    accept.add_argument("--reason", required=True, help="why, in words the board can follow")
    accept.add_argument("--until", required=True, metavar="YYYY-MM-DD", help="when to look at it again")
    accept.add_argument("--by", metavar="NAME", help="who decided (default: this user)")
    false_positive = commands.add_parser(
        "false-positive", help="record that a finding is not really there",
        description="Record that a finding is a false positive: who and why (optionally until a date to check "
                    "again). It leaves the open counts and stays listed.")
    false_positive.add_argument("id", help="the finding's id (or its first 6+ characters)")
    false_positive.add_argument("--reason", required=True, help="how it was shown not to be there")
    false_positive.add_argument("--until", metavar="YYYY-MM-DD", help="when to check again (default: never)")
    false_positive.add_argument("--by", metavar="NAME", help="who decided (default: this user)")
    alerts = commands.add_parser(
        "alerts", help="e-mail the security team what happened to findings (new critical, became KEV, ...)",
        description="Queue and send one e-mail to reports.alerts.to per event not yet told: a new critical "
                    "finding, a finding that became actively exploited (CISA KEV), a severity that rose, a KEV "
                    "due date that passed, an accepted risk that lapsed. A message the server refuses stays in "
                    "the mail queue for the next attempt; none is sent twice. The daemon does this after every "
                    "scan and feeds update and on schedule.alerts.")
    alerts.add_argument("--dry-run", action="store_true", help="print what would be sent; send and mark nothing")
    alerts.add_argument("--json", action="store_true", help="the alerts as JSON")
    reopen = commands.add_parser("reopen", help="undo an acceptance or a false positive",
                                 description="Open a finding again that was accepted or called a false positive.")
    reopen.add_argument("id", help="the finding's id (or its first 6+ characters)")
    reopen.add_argument("--by", metavar="NAME", help="who decided (default: this user)")
    return parser


# Each command's module, loaded only when that command runs: together they import the scanner,
# the store, STIX, Flask and the config schema, about a second that `--help` and `--version`
# (and every other command) need not pay for what they do not use.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("commands_estate", "cmd_init"), "check-config": ("commands_estate", "cmd_check_config"),
    "scan": ("commands_estate", "cmd_scan"), "worker": ("commands_estate", "cmd_worker"),
    "findings": ("commands_findings", "cmd_findings"), "accept": ("commands_findings", "cmd_accept"),
    "false-positive": ("commands_findings", "cmd_false_positive"), "reopen": ("commands_findings", "cmd_reopen"),
    "alerts": ("commands_findings", "cmd_alerts"),
    "share": ("commands_sharing", "cmd_share"), "pull": ("commands_sharing", "cmd_pull"),
    "report": ("commands_reports", "cmd_report"), "feeds": ("commands_feeds", "cmd_feeds"),
    "run": ("commands_daemon", "cmd_run"), "jobs": ("commands_daemon", "cmd_jobs"), "hub": ("commands_hub", "cmd_hub"),
}


def command(name: str) -> Callable[[argparse.Namespace], int]:
    module, function = COMMANDS[name]
    found: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(f"warpagent.cli.{module}"), function)
    return found


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("warpagent: %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # urllib3 says "Retrying ..." at warning level for every retry; warpagent itself says, once,
    # what could not be fetched and what was kept. Shown with -vv.
    logging.getLogger("urllib3").setLevel(logging.DEBUG if verbosity >= 2 else logging.ERROR)


# What warpagent writes holds user names, addresses and weaknesses: the store, reports, the
# outbox, the mail queue, the hub's database. Owner only, whatever umask the caller had.
PRIVATE_UMASK = 0o077


def _not_utf8(argv: Sequence[str]) -> str | None:
    """The first argument that is not UTF-8 text (Python keeps such bytes as lone surrogates)."""
    for number, arg in enumerate(argv):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raw = arg.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
            before = argv[number - 1] if number else ""
            which = f"the value of {before}" if before.startswith("-") else f"argument {number + 1}"
            return f"warpagent: {which} ('{raw[:60]}') is not UTF-8 text; type it again in UTF-8"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)
    arguments = list(sys.argv[1:] if argv is None else argv)
    problem = _not_utf8(arguments)
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    parser = _parser()
    args = parser.parse_args(arguments)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE  # a bare 'warpagent' in a cron job did nothing: say so in the exit code too
    _setup_logging(args.verbose)
    try:
        return command(args.command)(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    except (ScopeError, DecisionError) as exc:
        print(f"warpagent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (CollectError, StoreError) as exc:
        print(f"warpagent: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except WarpagentError as exc:
        print(f"warpagent: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except (Interrupted, KeyboardInterrupt):
        print("warpagent: interrupted", file=sys.stderr)
        return EXIT_INCOMPLETE
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        log.debug("internal error", exc_info=True)
        print(f"warpagent: internal error ({exc.__class__.__name__}: {exc}); rerun with -vv for details "
              "and report it", file=sys.stderr)
        return EXIT_INCOMPLETE
