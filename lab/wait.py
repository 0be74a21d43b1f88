"""Waiting with a deadline, saying what we wait for, and leaving evidence on timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from lab.errors import LabError, WaitTimeout

T = TypeVar("T")


@dataclass(frozen=True)
class Observation:
    """One look at the thing we wait for: done yet, and what we saw (for progress and errors).

    `failed` says waiting longer cannot help (a sync that failed, a rollout past its
    progress deadline): `until` stops at once with what was seen.
    """

    done: bool
    seen: str
    failed: bool = False
    hint: str | None = None  # what to do, when failed says so


def refusal(error: LabError) -> Observation:
    """A look that got a LabError (unreachable, or refused): waiting cannot help."""
    return Observation(False, error.message, failed=True, hint=error.hint)


def until(
    what: str,
    look: Callable[[], Observation],
    *,
    timeout: float,
    interval: float = 2.0,
    report: Callable[[str], None] | None = None,
    report_every: float = 15.0,
    hint: str | None = None,
    backoff: float = 1.0,
    max_interval: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Observation:
    """Call `look` until it reports done or `timeout` seconds pass.

    A `LabError` raised by `look` counts as "not yet" (the thing may not exist yet); its
    message becomes the observation. Every `report_every` seconds, `report` receives a
    line saying what we wait for, for how long, and what we last saw. On timeout,
    `WaitTimeout` carries the last observation; a failed observation raises `LabError`
    at once. The pause starts at `interval` and grows by `backoff` up to `max_interval`.
    """
    started = time.monotonic()
    deadline = started + timeout
    last = Observation(False, "nothing observed yet")
    next_report = started + report_every
    while True:
        try:
            last = look()
        except LabError as error:
            last = Observation(False, error.message)
        if last.done:
            return last
        if last.failed:
            raise LabError(
                f"gave up waiting for {what}: {last.seen}",
                hint=last.hint or hint or "see the diagnostics bundle; fix the cause and re-run",
            )
        now = time.monotonic()
        if now >= deadline:
            raise WaitTimeout(
                f"timed out after {timeout:g}s waiting for {what}",
                last_observation=last.seen,
                hint=hint or "see the diagnostics bundle; re-run the same command to resume",
            )
        if report is not None and now >= next_report:
            report(f"waiting for {what} ({now - started:.0f}s of {timeout:g}s): {last.seen}")
            next_report = now + report_every
        sleep(min(interval, max(0.0, deadline - now)))
        interval = min(interval * backoff, max_interval or interval * backoff)
