"""Scan progress on the terminal (stderr): hosts done of total, elapsed time."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


class TerminalProgress:
    def __init__(self) -> None:
        self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TextColumn("hosts"), TimeElapsedColumn(),
                                  console=Console(stderr=True), transient=False)
        self._task: TaskID | None = None

    def estate_started(self, estate: str, total: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task(f"scanning {estate}", total=total)

    def hosts_done(self, count: int) -> None:
        if self._task is not None and count:
            self._progress.advance(self._task, count)

    def estate_finished(self) -> None:
        if self._task is not None:
            total = self._progress.tasks[-1].total or 0
            self._progress.update(self._task, completed=total)
        self._progress.stop()
        self._task = None
