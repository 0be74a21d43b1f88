"""What the user sees: one start line and one ✓/✗/! line per step, tables, the log file.

Rich output on a terminal, plain text otherwise; `NO_COLOR` is honoured. `-v` shows the
commands run, `-vv` their raw output. Everything, whatever the verbosity, also goes to a
log file under `.lab/logs/`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from lab import engine, proc

log = logging.getLogger("lab")


@dataclass(frozen=True)
class Row:
    """One row of a status table; `style` is ok, warn, fail or skip."""

    cells: tuple[str, ...]
    style: str = "ok"


_MARKS = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "red"), "skip": ("-", "dim")}


class UI:
    """The terminal and the log file of one task run."""

    def __init__(
        self,
        *,
        verbosity: int = 0,
        log_dir: Path | None = None,
        task: str = "lab",
        stream: IO[str] | None = None,
    ) -> None:
        self.verbosity = verbosity
        stream = stream or sys.stderr
        color = stream.isatty() and "NO_COLOR" not in os.environ
        self.console = Console(
            file=stream,
            force_terminal=color,
            no_color=not color,
            highlight=False,
            soft_wrap=True,
        )
        self.log_path = _open_log(log_dir, task) if log_dir else None
        # A live status line only where a person watches: a colour terminal.
        self.live = color
        self._status: tuple[Progress, TaskID] | None = None  # the live status line
        self._status_title = ""
        if verbosity >= 1:
            _show_through(self)

    def step_started(self, title: str) -> None:
        """The start line; on a terminal, also a live status line (spinner, what we
        wait for) until the step finishes. Elsewhere (CI, a pipe, NO_COLOR) plain lines."""
        self.console.print(f"[bold]•[/bold] {title} …")
        log.info("step: %s", title)
        if self.live:
            self._stop_status()
            line = Progress(
                SpinnerColumn("dots"),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),  # how long this step has run, ticking
                console=self.console,
                transient=True,  # the ✓/✗ line takes its place
            )
            task = line.add_task(f"{escape(title)} …", total=None)
            line.start()
            self._status, self._status_title = (line, task), title

    def step_finished(self, title: str, seconds: float, *, style: str, note: str = "") -> None:
        """The ✓ (ok), ! (warn), ✗ (fail) or - (skip) line, with the duration and a note."""
        self._stop_status()
        mark, color = _MARKS[style]
        extra = f" — {note}" if note else ""
        self.console.print(f"[{color}]{mark}[/{color}] {title} ({_duration(seconds)}){extra}")
        log.info("step %s: %s (%.2fs)%s", style, title, seconds, extra)

    def _stop_status(self) -> None:
        status, self._status = self._status, None  # read once: threads report too
        if status is not None:
            status[0].stop()

    def info(self, message: str) -> None:
        self.console.print(message)
        log.info("%s", message)

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/yellow] {message}")
        log.warning("%s", message)

    def command(self, pasteable: str) -> None:
        """Shown at -v: the command about to run."""
        if self.verbosity >= 1:
            self.console.print(f"  [dim]$ {pasteable}[/dim]", markup=True)

    def call(self, line: str) -> None:
        """Shown at -v: a Docker API call lab made, and its answer."""
        if self.verbosity >= 1:
            self.console.print(f"  [dim]{escape(line)}[/dim]", markup=True, highlight=False)

    def output(self, text: str) -> None:
        """Shown at -vv: a tool's raw output."""
        if self.verbosity >= 2 and text.strip():
            self.console.print(text.rstrip(), markup=False)

    def progress(self, message: str) -> None:
        """About a long wait: what we wait for and how long so far. On a terminal it
        replaces the live status line's text; elsewhere it is a new dim line."""
        log.info("progress: %s", message)
        status = self._status  # read once: another thread may end the step meanwhile
        if status is not None:
            line, task = status
            text = f"{escape(self._status_title)} … [dim]{_escape(message)}[/dim]"
            line.update(task, description=text)
            return
        self.console.print(f"  [dim]… {_escape(message)}[/dim]")

    @contextmanager
    def transfer(self, title: str) -> Iterator[Callable[[str, int, int], None]]:
        """A byte counter for a long copy: `(what, bytes done, bytes in all)`. On a
        terminal a bar with bytes, speed and time left; elsewhere a line every tenth."""
        if self.live:
            self._stop_status()
            bar = Progress(
                TextColumn("  {task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            task = bar.add_task(title, total=None)
            with bar:
                yield lambda what, done, total: bar.update(
                    task, description=f"{title}: {what}", completed=done, total=total
                )
            return
        started, shown = time.monotonic(), [-1]

        def line(what: str, done: int, total: int) -> None:
            tenth = done * 10 // total if total else 0
            if tenth == shown[0]:
                return
            shown[0] = tenth
            elapsed = time.monotonic() - started
            left = elapsed * (total - done) / done if done else 0.0
            self.progress(
                f"{title}: {done / 1024**2:,.0f} of {total / 1024**2:,.0f} MiB "
                f"({tenth * 10} %), about {_duration(left)} left — {what}"
            )

        yield line

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        table = Table(title=title, title_justify="left", show_lines=False)
        table.add_column("")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            mark, color = _MARKS[row.style]
            table.add_row(f"[{color}]{mark}[/{color}]", *row.cells)
        self.console.print(table)
        for row in rows:
            log.info("%s: %s %s", title, row.style, " | ".join(row.cells))

    def error(self, rendered: str) -> None:
        self._stop_status()
        self.console.print(f"[red]{_escape(rendered)}[/red]")
        if self.log_path:
            self.console.print(f"[dim]full log: {self.log_path}[/dim]")


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def _open_log(log_dir: Path, task: str) -> Path:
    """Send every `lab` log record, at debug level, to a new file for this run."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = log_dir / f"{stamp}-{task.replace('.', '-')}.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("lab")
    root.setLevel(logging.DEBUG)
    for old in [h for h in root.handlers if isinstance(h, logging.FileHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    return path


# The UI that shows each command and Docker call at -v: the newest one, so the tasks of
# one `invoke -v a b` (a UI each) show each line once, not once per UI made.
_shown_by: list[UI] = []


def _show_through(ui: UI) -> None:
    if not _shown_by:
        proc.on_command(lambda line: _shown_by[-1].command(line))
        engine.on_call(lambda line: _shown_by[-1].call(line))
    _shown_by[:] = [ui]
