"""The one step runner. `lab.up`, `lab.down`, `lab.tools`, `pipeline.run` and
`pipeline.approve` differ only in their steps and their gate.

Each step prints one start line and one ✓/✗/!/- line with its duration and a note,
through `ui`. A step's action returns a note, or a `StageResult` (whose status is the
step's). A `LabError` is the step failing, with its message, hint and evidence; any other
exception is the step crashing (kept, so the caller can re-raise it: a bug shows as
one). When a step that asks for it fails, a diagnostics bundle is collected. After a
step the gate says whether to go on; the remaining steps are then marked skipped.
Ctrl-C marks the running step failed and propagates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from lab.errors import LabError
from lab.report import StageResult, Status
from lab.report import worst as worst  # the one fold, re-exported beside STYLE
from lab.ui import UI

T = TypeVar("T")

# The mark of each status, everywhere: steps, quality checks, tables, reports.
STYLE = {
    Status.PASSED: "ok",
    Status.FAILED: "fail",
    Status.UNVERIFIED: "warn",
    Status.SKIPPED: "skip",
}


@dataclass(frozen=True)
class Step(Generic[T]):
    """One step: its title (what the user reads), what it does, and whether a failure
    deserves a diagnostics bundle (not for the machine checks, say)."""

    title: str
    action: Callable[[T], str | StageResult]
    diagnose: bool = True
    name: str = ""  # what reports and "not run: <name> failed" call it (default: title)

    @property
    def label(self) -> str:
        return self.name or self.title


@dataclass
class Outcome:
    """What became of one step."""

    title: str
    status: Status
    seconds: float = 0.0
    note: str = ""
    result: StageResult | None = None  # what a stage returned
    error: LabError | None = None  # why it failed
    crash: Exception | None = None  # what it raised that was not a LabError
    diagnostics: Path | None = field(default=None)

    @property
    def failed(self) -> bool:
        return self.status is Status.FAILED


Gate = Callable[[Outcome], bool]


def only_passed(outcome: Outcome) -> bool:
    """The gate of the bring-up and the teardown: go on while every step passes."""
    return outcome.status is Status.PASSED


def run(
    steps: Sequence[Step[T]],
    target: T,
    ui: UI,
    *,
    gate: Gate = only_passed,
    diagnose: Callable[[LabError], Path] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Run `steps` on `target` in order until the gate says stop; every step's outcome.

    `on_outcome` sees each outcome as soon as it is known (before the ✓/✗ line), so a
    later step can read what an earlier one found.
    """
    outcomes: list[Outcome] = []
    stopped: str | None = None
    for step in steps:
        if stopped:
            skipped = Outcome(step.title, Status.SKIPPED, note=f"not run: {stopped}")
            if on_outcome is not None:
                on_outcome(skipped)
            outcomes.append(skipped)
            continue
        ui.step_started(step.title)
        began = time.monotonic()
        try:
            value = step.action(target)
        except LabError as error:
            outcome = Outcome(step.title, Status.FAILED, note=error.message, error=error)
        except Exception as error:  # a bug, or an API answer we did not expect
            outcome = Outcome(step.title, Status.FAILED, note=_first_line(error), crash=error)
        except BaseException:  # Ctrl-C: the step did not finish
            ui.step_finished(step.title, time.monotonic() - began, style="fail")
            raise
        else:
            if isinstance(value, StageResult):
                outcome = Outcome(step.title, value.status, note=value.summary, result=value)
            else:
                outcome = Outcome(step.title, Status.PASSED, note=value)
        outcome.seconds = time.monotonic() - began
        wanted = step.diagnose or outcome.crash is not None  # a crash always deserves one
        if outcome.failed and wanted and diagnose is not None:
            outcome.diagnostics = diagnose(outcome.error or LabError(outcome.note))
        if on_outcome is not None:
            on_outcome(outcome)
        go_on = gate(outcome)
        style = STYLE[outcome.status] if go_on or outcome.failed else "fail"
        ui.step_finished(step.title, outcome.seconds, style=style, note=outcome.note)
        outcomes.append(outcome)
        if not go_on:
            stopped = f"{step.label} {outcome.status.value}"
    return outcomes


def raise_first_failure(outcomes: Sequence[Outcome], *, context: bool = True) -> None:
    """For the bring-up and the teardown: the first failure as the task's error (a crash
    is re-raised as it was, so it shows as the bug it is)."""
    for outcome in outcomes:
        if not outcome.failed:
            continue
        if outcome.crash is not None:
            raise outcome.crash
        error = outcome.error or LabError(outcome.note)
        if context:
            error.add_context(outcome.title.lower())
        if outcome.diagnostics is not None:
            error.hint = f"{error.hint or 'see the bundle'}\n  diagnostics: {outcome.diagnostics}"
        raise error


def _first_line(error: BaseException) -> str:
    lines = str(getattr(error, "reason", "") or error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else 'no message'}"[:300]
