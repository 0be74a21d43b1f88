"""The one user-facing error family.

Every failure a user can act on is a `LabError` carrying a hint that says what to do.
`tasks.py` renders it once, at the top, and picks the exit code.
"""

from __future__ import annotations

from collections.abc import Sequence

STDERR_TAIL_LINES = 20


class LabError(Exception):
    """A failure the user can fix; `hint` says how."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        command: str | None = None,
        output_tail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.command = command
        self.output_tail = output_tail
        self.context: list[str] = []

    def add_context(self, what: str) -> LabError:
        """Record which step was running; added once per boundary, outermost last."""
        self.context.append(what)
        return self

    def render(self) -> str:
        """The paragraph shown to the user: problem, where, command, output, fix."""
        lines = []
        where = " while ".join(reversed(self.context))
        lines.append(f"error: {self.message}" + (f" (while {where})" if where else ""))
        if self.command:
            lines.append(f"  command: {self.command}")
        if self.output_tail:
            lines.append("  output (last lines):")
            lines.extend(f"    {line}" for line in self.output_tail.splitlines())
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.message


class ConfigError(LabError):
    """The configuration (invoke.yaml, environment variables) is invalid."""


class NotMadeYet(LabError):
    """What a plan reads of something it would make (a cluster not created yet)."""


class ToolNotFound(LabError):
    """An external executable is missing."""


class CommandError(LabError):
    """A command exited non-zero."""

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str],
        returncode: int,
        hint: str | None = None,
        command: str | None = None,
        output_tail: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint, command=command, output_tail=output_tail)
        self.argv = tuple(argv)
        self.returncode = returncode


class CommandTimeout(CommandError):
    """A command ran past its deadline and was killed."""


class WaitTimeout(LabError):
    """A wait ran past its deadline; `last_observation` says what was last seen."""

    def __init__(self, message: str, *, last_observation: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint, output_tail=last_observation)
        self.last_observation = last_observation


def tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    """The last `lines` non-empty lines of `text`."""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])
