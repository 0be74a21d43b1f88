"""docs/workshop.md cannot drift from the tasks: each of its commands parses as the real
`invoke` parses it. The kind tier runs its bundle, bring-up and checkpoint commands for
real (tests/kind/test_lab.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lab import proc
from tests import workshop_guide
from tests.conftest import REPO

INVOKE = str(Path(sys.executable).parent / "invoke")
EXERCISES = [title for title in workshop_guide.sections() if title[:1].isdigit()]


def test_the_guide_has_six_to_eight_exercises_each_with_a_way_back() -> None:
    assert 6 <= len(EXERCISES) <= 8, EXERCISES
    for title in EXERCISES:
        text = workshop_guide.sections()[title]
        assert "```sh" in text, f"exercise {title!r} has no command"
        assert "If it goes wrong" in text, f"exercise {title!r} says nothing on recovery"


@pytest.mark.parametrize(
    "command", workshop_guide.commands(), ids=lambda command: " ".join(command)
)
def test_every_command_of_the_guide_is_a_real_task_with_real_flags(command: list[str]) -> None:
    # `--help` after the task and its arguments: invoke parses them all (an unknown task
    # or flag exits 1: "No idea what ... is!"), then prints the task's help instead.
    result = proc.run(
        [INVOKE, "--search-root", str(REPO), *command, "--help"],
        timeout=60,
        check=False,
        env={"PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"inv[oke] [--core-opts] {command[0]} " in result.stdout, result.stdout
