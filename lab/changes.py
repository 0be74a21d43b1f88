"""Who makes the changes: the one place that knows whether this is a dry run.

A task builds one runner and hands it to everything that changes something: `Changes`
makes each change, `Plan` writes down what it would make and makes none. Code that
changes the world says what the change is once, as the text of `make` or the argv of
`run`; a plan prints exactly those texts. Nothing else asks whether this is a dry run.

Reading is the same in both, with one difference: a plan runs on a machine where much
is not there yet (no cluster, no Docker), so `read` turns "cannot look" into what
"not there yet" means to the caller instead of an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lab import proc, wait
from lab.errors import LabError, NotMadeYet

if TYPE_CHECKING:
    from lab.ui import UI

log = logging.getLogger("lab.changes")

T = TypeVar("T")


class Changes:
    """Makes each change it is handed."""

    def start(self, ui: UI) -> None:
        """Before the first step: say what kind of run this is (a plan says so)."""

    def finish(self, ui: UI) -> None:
        """After the last step: a plan lists what it would change."""

    def diagnostics(self, collect: Callable[[LabError], Path]) -> Callable[[LabError], Path] | None:
        """How a failed step is diagnosed (a plan changed nothing a bundle could show)."""
        return collect

    def make(self, what: str, do: Callable[[], T], *, planned: T) -> T:
        """Change the world as `what` says, by `do()`; a plan returns `planned`."""
        log.info("%s", what)
        return do()

    def run(
        self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
        **options: Any,
    ) -> proc.Result:  # fmt: skip
        """A command that changes something (`proc.run` for the rest)."""
        return proc.run(argv, timeout=timeout, env=env, **options)

    def wait(
        self,
        what: str,
        look: Callable[[], wait.Observation],
        *,
        timeout: float,
        report: Callable[[str], None] | None = None,
    ) -> str:
        """Wait for `what` (a change to take effect); returns the last observation."""
        return wait.until(what, look, timeout=timeout, report=report).seen

    def read(self, look: Callable[[], T], *, absent: T) -> T:
        """What `look()` sees; its errors are the caller's."""
        return look()

    def read_new(self, look: Callable[[], T], *, absent: T) -> T:
        """What `look()` sees of something this run made anew (a plan made nothing, so
        what is there is the old one: `absent`)."""
        return look()

    def refuse(self, error: LabError) -> str:
        """Stop here for `error` (a plan notes it, goes on, and returns the note)."""
        raise error

    def note(self, made: str) -> str:
        """A step's note on what it made (a plan's says it only planned it)."""
        return made

    @property
    def planned(self) -> list[str]:
        """What a plan would change, in order, each once (none: changes are made)."""
        return []


class Plan(Changes):
    """Writes down each change instead of making it (`--dry-run`)."""

    def __init__(self) -> None:
        self._planned: list[str] = []
        self._unseen: list[str] = []  # what a read could not look at, each once

    def start(self, ui: UI) -> None:
        ui.info("Dry run: nothing is changed. The plan:")

    def finish(self, ui: UI) -> None:
        for what in self._planned:
            ui.info(f"  would: {what}")
        for why in self._unseen:  # the plan may do more than is needed: say where it guessed
            ui.info(f"  could not look, so planned as if not there: {why}")

    def diagnostics(self, collect: Callable[[LabError], Path]) -> Callable[[LabError], Path] | None:
        return None

    def _note(self, what: str) -> None:
        if what not in self._planned:
            self._planned.append(what)
            log.info("dry-run: would %s", what)

    def make(self, what: str, do: Callable[[], T], *, planned: T) -> T:
        self._note(what)
        return planned

    def run(
        self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
        **options: Any,
    ) -> proc.Result:  # fmt: skip
        argv = tuple(str(arg) for arg in argv)
        self._note(proc.pasteable(argv, env))
        return proc.Result(argv, 0, "", "", 0.0, skipped=True)

    def wait(
        self,
        what: str,
        look: Callable[[], wait.Observation],
        *,
        timeout: float,
        report: Callable[[str], None] | None = None,
    ) -> str:
        self._note(f"wait for {what}")
        return "planned"

    def read(self, look: Callable[[], T], *, absent: T) -> T:
        """What `look()` sees, or `absent` when there is nothing to look at yet."""
        try:
            return look()
        except NotMadeYet:
            return absent  # the plan would make it: nothing to see yet
        except LabError as error:
            log.info("dry-run: reading as absent (%s)", error.message)
            if error.message not in self._unseen:
                self._unseen.append(error.message)
            return absent

    def read_new(self, look: Callable[[], T], *, absent: T) -> T:
        return absent

    def refuse(self, error: LabError) -> str:
        self._note(f"stop here: {error.message}")
        return f"would stop here: {error.message}"

    def note(self, made: str) -> str:
        return f"planned: {made}"

    @property
    def planned(self) -> list[str]:
        return list(self._planned)


MAKE = Changes()  # the runner of every task without a dry run (it holds nothing)


def for_options(dry_run: bool) -> Changes:
    """The runner a task asked for."""
    return Plan() if dry_run else MAKE
