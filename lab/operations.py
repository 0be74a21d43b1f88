"""The operations behind the tasks, each taking a `cli.Context`."""

from __future__ import annotations

from lab import config as config_module
from lab import doctor as doctor_module
from lab.cli import Context, TaskExit
from lab.errors import LabError
from lab.ui import Row

_STYLE = {
    doctor_module.Status.OK: "ok",
    doctor_module.Status.WARN: "warn",
    doctor_module.Status.FAIL: "fail",
    doctor_module.Status.SKIP: "skip",
}


def doctor(ctx: Context) -> None:
    checks = doctor_module.run_checks(ctx.config)
    rows = [Row((check.name, check.detail, check.hint), _STYLE[check.status]) for check in checks]
    ctx.ui.table("lab doctor", ("check", "result", "what to do"), rows)
    blocking = doctor_module.blocking_failures(checks)
    if blocking:
        names = ", ".join(check.name for check in blocking)
        ctx.ui.error(f"error: {len(blocking)} blocking problem(s): {names}")
        raise TaskExit(1)
    ctx.ui.info("This machine can run the lab.")


def show_config(ctx: Context) -> None:
    rows = [Row((key, value)) for key, value in config_module.describe(ctx.config)]
    ctx.ui.table(
        "lab settings (override in invoke.yaml under lab:, or LAB_<KEY>)", ("key", "value"), rows
    )


__all__ = ["LabError", "doctor", "show_config"]
