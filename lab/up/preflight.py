"""Checking this machine: lab.doctor's blocking checks."""

from __future__ import annotations

from lab import bundle_loader, doctor
from lab.context import Lab
from lab.errors import LabError


def preflight(lab: Lab) -> str:
    checks = doctor.run_checks(lab.config)
    if lab.byo:  # kind, the registry and the host ports are not ours to check
        checks = [c for c in checks if c.name != "kind" and not c.name.startswith("port ")]
    blocking = doctor.blocking_failures(checks)
    if blocking:
        first = blocking[0]
        return lab.changes.refuse(
            LabError(
                f"this machine cannot run the lab yet: {', '.join(c.name for c in blocking)}",
                hint=f"{first.name}: {first.hint} (run `invoke lab.doctor` for the whole table)",
            )
        )
    if lab.options.offline:
        missing = bundle_loader.missing_offline(lab.config)
        if missing:
            raise LabError(
                f"--offline, but {len(missing)} thing(s) the lab needs are not here: "
                + "; ".join(missing),
                hint="load a bundle first: `invoke lab.bundle.load FILE` (a trainer makes "
                "one with `invoke lab.bundle.create`); or run without --offline",
            )
    warnings = [c.name for c in checks if c.status is doctor.Status.WARN]
    offline = "; offline: the loaded bundle covers everything" if lab.options.offline else ""
    if warnings:
        return f"warnings: {', '.join(warnings)}{offline}"
    return f"all checks passed{offline}"
