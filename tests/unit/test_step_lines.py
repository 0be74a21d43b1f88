"""What a step looks like: one start line and one ✓/✗ line; on a terminal, a live
status line between them (spinner, what it waits for, the time so far)."""

from __future__ import annotations

import io
import re
import time

import pytest

from lab import steps
from lab.errors import LabError
from lab.report import Status
from lab.ui import UI

ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _wait(ui: UI) -> str:
    ui.progress("waiting for the demo pod: not ready")
    time.sleep(1.2)  # the live line redraws itself meanwhile
    return "ready"


def test_on_a_terminal_the_running_step_has_a_live_line_with_the_time_so_far(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    terminal = _Terminal()
    ui = UI(stream=terminal)
    [outcome] = steps.run([steps.Step("Waiting for a demo", lambda _: _wait(ui))], None, ui)
    assert outcome.status is Status.PASSED
    screen = ANSI.sub("", terminal.getvalue().replace("\r", "\n"))
    lines = [line.strip() for line in screen.splitlines() if line.strip()]
    assert lines[0] == "• Waiting for a demo …"
    assert any(
        re.search(r"Waiting for a demo … waiting for the demo pod.*0:00:0\d", line)
        for line in lines
    ), lines
    assert re.fullmatch(r"✓ Waiting for a demo \(1\.\ds\) — ready", lines[-1]), lines[-1]


def test_elsewhere_a_step_is_plain_lines_and_a_wait_a_dim_line_each_time() -> None:
    pipe = io.StringIO()
    ui = UI(stream=pipe)

    def fails(_: None) -> str:
        ui.progress("waiting for the demo pod: not ready")
        raise LabError("the demo pod never became ready", hint="see `kubectl describe`")

    outcomes = steps.run(
        [steps.Step("Waiting for a demo", fails), steps.Step("After", lambda _: "x")], None, ui
    )
    assert [o.status for o in outcomes] == [Status.FAILED, Status.SKIPPED]
    lines = pipe.getvalue().splitlines()
    assert "\x1b" not in pipe.getvalue()
    assert lines[:3] == [
        "• Waiting for a demo …",
        "  … waiting for the demo pod: not ready",
        lines[2],
    ] and lines[2].startswith("✗ Waiting for a demo (")
    assert sum(line.startswith("• ") for line in lines) == 1  # the skipped step never starts
