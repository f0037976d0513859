"""Progress on the terminal for the long commands: stage, count, rows and time left.

On a terminal (stderr is a TTY) a live `rich` bar; otherwise (CI, logs, pipes) plain lines, at
most one every ``min_interval`` seconds plus the first and the last, so a log stays readable.
Progress goes to stderr: stdout keeps the command's results. Nothing a stage is named after is
data (names of steps, tables, months), never a value from a row.

    with Progress("run", total=25, unit="steps") as p:
        p.advance(stage="staged_ecds", rows=79_814)

`current()` is the progress of the command running in this process, for code that reports
from inside a Dagster run (`defs.orchestrate`'s step hook) without being handed it.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any

_CURRENT: Progress | None = None


def current() -> Progress | None:
    return _CURRENT


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"


class Progress:
    """A counted stage of work (``total`` None: count without an end)."""

    def __init__(
        self,
        title: str,
        total: int | None = None,
        unit: str = "",
        stream: IO[str] | None = None,
        live: bool | None = None,
        min_interval: float = 5.0,
    ) -> None:
        self.title, self.total, self.unit = title, total, unit
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.min_interval = min_interval
        self.done = 0
        self.rows = 0
        self.stage = ""
        self.started = time.perf_counter()
        self._last_line = float("-inf")
        self._bar: Any = None
        self._task: Any = None
        # advanced from the command's thread and from a forked worker's relay (`defs.forked`)
        self._lock = threading.Lock()

    # -- context --------------------------------------------------------------------------
    def __enter__(self) -> Progress:
        global _CURRENT
        self._previous, _CURRENT = _CURRENT, self
        if self.live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import (
                Progress as RichProgress,
            )

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stage]}"),
                TextColumn("{task.fields[rows]}"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.title, total=self.total, stage="", rows="")
        return self

    def __exit__(self, *exc: object) -> None:
        global _CURRENT
        _CURRENT = self._previous
        if self._bar is not None:
            self._bar.stop()
        else:
            self._line(final=True)

    # -- reporting ------------------------------------------------------------------------
    def advance(self, n: int = 1, stage: str | None = None, rows: int | None = None) -> None:
        """``n`` more done; ``stage``: what just finished (or is running); ``rows``: handled."""
        with self._lock:
            self._advance(n, stage, rows)

    def _advance(self, n: int, stage: str | None, rows: int | None) -> None:
        self.done += n
        if stage is not None:
            self.stage = stage
        if rows:
            self.rows += rows
        if self._bar is not None:
            self._bar.update(
                self._task,
                advance=n,
                stage=self.stage,
                rows=f"{self.rows:,} rows" if self.rows else "",
            )
        elif time.perf_counter() - self._last_line >= self.min_interval or self.done == 1:
            self._line()

    def left(self) -> float | None:
        """Seconds left at the pace so far (None without a total or before the first)."""
        if not self.total or not self.done:
            return None
        elapsed = time.perf_counter() - self.started
        return max(0.0, elapsed / self.done * (self.total - self.done))

    def _line(self, final: bool = False) -> None:
        elapsed = time.perf_counter() - self.started
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        parts = [f"[{self.title}] {count} {self.unit}".rstrip()]
        if self.stage:
            parts.append(self.stage)
        if self.rows:
            parts.append(f"{self.rows:,} rows")
        parts.append(f"{_seconds(elapsed)} elapsed")
        left = None if final else self.left()
        if left is not None:
            parts.append(f"about {_seconds(left)} left")
        if final:
            parts.append("done")
        print(", ".join(parts), file=self.stream, flush=True)
        self._last_line = time.perf_counter()
