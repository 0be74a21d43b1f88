"""Checking this machine: lab.doctor's blocking checks."""

from __future__ import annotations

from lab import (
    doctor,
    proc,
)
from lab.context import Lab
from lab.errors import LabError


def preflight(lab: Lab) -> str:
    checks = doctor.run_checks(lab.config)
    if lab.byo:  # kind, the registry and the host ports are not ours to check
        checks = [c for c in checks if c.name != "kind" and not c.name.startswith("port ")]
    blocking = doctor.blocking_failures(checks)
    if blocking and proc.dry_run_enabled():
        return f"would stop here: {', '.join(c.name for c in blocking)} (see `invoke lab.doctor`)"
    if blocking:
        first = blocking[0]
        raise LabError(
            f"this machine cannot run the lab yet: {', '.join(c.name for c in blocking)}",
            hint=f"{first.name}: {first.hint} (run `invoke lab.doctor` for the whole table)",
        )
    warnings = [c.name for c in checks if c.status is doctor.Status.WARN]
    return f"warnings: {', '.join(warnings)}" if warnings else "all checks passed"
