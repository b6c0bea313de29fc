"""Progress of long commands (rebuild, simulator, bench), drawn by ``rich.progress``.

On a terminal the bar is redrawn in place; on anything else (a log file, a pipe) rich draws
nothing live, so :class:`CommandProgress` writes a plain status line when asked to
(:meth:`CommandProgress.log_line`) and rich prints the final state once when it stops.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)


class CommandProgress:
    """One task's progress on ``out``: ``total`` steps (None: open-ended), a ``status`` text
    (free-form, e.g. counters) after the bar. Invariant: ``completed`` never exceeds ``total``."""

    def __init__(self, out: TextIO, description: str, total: float | None) -> None:
        self.console = Console(file=out, highlight=False, soft_wrap=True, log_path=False)
        columns: list[ProgressColumn] = [TextColumn("{task.description}")]
        if total is not None:
            columns += [BarColumn(), MofNCompleteColumn(), TaskProgressColumn()]
        columns += [TextColumn("{task.fields[status]}"), TimeElapsedColumn()]
        self._progress = Progress(*columns, console=self.console, redirect_stderr=False)
        self._task: TaskID = self._progress.add_task(description, total=total, status="")
        self.total = total

    @property
    def live(self) -> bool:
        """True on a terminal: the bar is redrawn in place."""
        return self.console.is_terminal

    def update(self, completed: float, status: str = "") -> None:
        if self.total is not None:
            completed = min(completed, self.total)
        self._progress.update(self._task, completed=completed, status=status)

    def log_line(self, text: str) -> None:
        """A plain line (timestamped by rich) above the bar, or in the log when not live."""
        self.console.log(text)

    def start(self) -> None:
        self._progress.start()

    def stop(self) -> None:
        self._progress.stop()

    @contextmanager
    def logging_above(self) -> Iterator[None]:
        """While it runs, log records of the root logger's stream handlers are printed above
        the bar (instead of tearing it)."""
        moved: list[tuple[logging.StreamHandler[TextIO], TextIO]] = []
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and self.live:
                old = handler.setStream(_ConsoleWriter(self.console))
                if old is not None:
                    moved.append((handler, old))
        try:
            yield
        finally:
            for handler, stream in moved:
                handler.setStream(stream)


class _ConsoleWriter:
    """A text stream that prints through a rich console (so a live bar stays intact)."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def write(self, text: str) -> int:
        self._console.print(text.rstrip("\n"), markup=False, highlight=False)
        return len(text)

    def flush(self) -> None:
        self._console.file.flush()
