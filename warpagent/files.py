"""Writing a file whole or not at all, the one way every stage does it."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, content: str | bytes) -> Path:
    """Write `content` beside `path` and rename it into place: a crash or a full disk leaves the
    old file (or none), never half of the new one. Synced before the rename, so a power cut
    after it keeps the whole file."""
    partial = path.with_name(f".{path.name}.partial")
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        with partial.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path
