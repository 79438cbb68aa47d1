"""What every command shares: exit codes, writing output, and the one-line answer for a missing store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from warpagent.errors import WarpagentError
from warpagent.files import write_atomically

if TYPE_CHECKING:  # the config (and its schema) loads only with a command that reads it: start-up stays light
    from warpagent import config

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


def no_store(settings: config.Settings) -> int:
    print(f"warpagent: {settings.store}: no findings store yet; run 'warpagent scan' first", file=sys.stderr)
    return EXIT_USAGE


def write_out(target: str, text: str) -> None:
    """To stdout for "-", else whole or not at all to the file, saying so on stderr: every
    command that writes a file says "wrote FILE" the same way, and stdout stays the data's."""
    if target == "-":
        sys.stdout.write(text)
        return
    try:
        write_atomically(Path(target), text)
    except OSError as exc:
        raise WarpagentError(f"{target}: cannot write ({exc.strerror}); choose another path") from None
    print(f"wrote {target}", file=sys.stderr)
