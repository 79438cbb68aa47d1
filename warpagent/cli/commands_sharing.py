"""Sharing with WARP peers by hand: build (and see) the anonymised bundle, push it, pull theirs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from warpagent import clock, config
from warpagent.cli.common import EXIT_INCOMPLETE, EXIT_OK, no_store, write_out
from warpagent.errors import ConfigError
from warpagent.sharing import usecases
from warpagent.sharing.usecases import SharingOutcome


def _print_outcome(outcome: SharingOutcome, as_json: bool) -> int:
    print(json.dumps(outcome.as_json(), indent=2) if as_json else "\n".join(outcome.lines()))
    for error in outcome.errors:
        print(f"warpagent: {error}", file=sys.stderr)
    return EXIT_OK if outcome.ok else EXIT_INCOMPLETE


def cmd_share(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    if not args.dry_run and not settings.sharing.peers:
        raise ConfigError([f"{settings.source}: At 'sharing.peers': no peers configured; add one, or run "
                           "'warpagent share --dry-run --out FILE' to see the bundle"])
    if not settings.store.exists():
        return no_store(settings)
    now = clock.now()
    built = usecases.build(settings, now.date())
    sealed_out = str(Path(args.out).with_suffix(".versions.json")) if args.out and args.out != "-" else ""
    if args.out:
        write_out(args.out, built.text)
    if sealed_out and built.sealed is not None:
        write_out(sealed_out, built.sealed_text)
    if args.dry_run:
        if not args.out:
            sys.stdout.write(built.text)
        sealed = (f"; versions bundle for the hub's sealed collection: {len(built.sealed['objects'])} objects"
                  + (f" in {sealed_out}" if sealed_out else "")) if built.sealed is not None else ""
        print(f"warpagent: dry run: bundle of {len(built.bundle['objects'])} objects built and validated; "
              f"{usecases.held_back(built)}{sealed}; nothing queued or sent", file=sys.stderr)
        return EXIT_OK
    return _print_outcome(usecases.send(settings, built, now), args.json)


def cmd_pull(args: argparse.Namespace) -> int:
    settings = config.load(args.config)
    if not settings.sharing.peers:
        raise ConfigError([f"{settings.source}: At 'sharing.peers': no peers configured; add one to pull from"])
    return _print_outcome(usecases.pull(settings), args.json)
