"""FIRST EPSS scores: the daily gzipped CSV, whose first line is '#model_version:...,score_date:...'."""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from pathlib import Path

from feeds.model import EpssScore, FeedError

_CVE = re.compile(r"^CVE-\d{4}-\d{4,19}$")


def load(path: Path) -> tuple[str, list[EpssScore]]:
    """(score_date, scores); a plain (not gzipped) CSV is accepted too."""
    try:
        raw = path.read_bytes()
        text = gzip.decompress(raw).decode("utf-8") if raw[:2] == b"\x1f\x8b" else raw.decode("utf-8")
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise FeedError(f"{path}: not a readable EPSS file ({exc}); the download may be truncated") from None
    lines = text.splitlines()
    score_date = ""
    if lines and lines[0].startswith("#"):
        meta = dict(part.split(":", 1) for part in lines[0][1:].split(",") if ":" in part)
        score_date = meta.get("score_date", "")
        lines = lines[1:]
    reader = csv.reader(io.StringIO("\n".join(lines)))
    header = next(reader, None)
    if header is None or [h.strip() for h in header[:3]] != ["cve", "epss", "percentile"]:
        raise FeedError(f"{path}: not an EPSS file (expected the header 'cve,epss,percentile')")
    scores = []
    for number, row in enumerate(reader, start=3):
        try:
            cve, score, percentile = row[0], float(row[1]), float(row[2])
        except (IndexError, ValueError):
            raise FeedError(f"{path}: line {number}: expected 'CVE-id,score,percentile', got {row!r}; "
                            "the file looks damaged") from None
        if not _CVE.match(cve) or not (0.0 <= score <= 1.0 and 0.0 <= percentile <= 1.0):
            raise FeedError(f"{path}: line {number}: {row!r} is not a CVE id with scores between 0 and 1")
        scores.append(EpssScore(cve=cve, score=score, percentile=percentile))
    if not scores:
        raise FeedError(f"{path}: holds no scores")
    return score_date, scores
