"""The operations behind the tasks, each taking a `cli.Context`."""

from __future__ import annotations

from typing import Any

from lab import config as config_module
from lab import doctor as doctor_module
from lab import lifecycle, teardown
from lab import pipeline as pipeline_module
from lab import status as status_module
from lab.cli import Context, TaskExit
from lab.context import PipelineOptions, UpOptions
from lab.errors import LabError
from lab.ui import Row


def doctor(ctx: Context) -> None:
    checks = doctor_module.run_checks(ctx.config)
    rows = [Row((check.name, check.detail, check.hint), check.status.value) for check in checks]
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


def up(
    ctx: Context,
    *,
    context: str | None,
    registry: str | None,
    recreate: bool,
    dry_run: bool,
    offline: bool = False,
) -> None:
    if registry and not context:
        raise LabError("--registry only goes with --context", hint="pass both, or neither")
    if offline and context:
        raise LabError(
            "--offline goes with the lab's own kind cluster, not --context",
            hint="your cluster pulls from your registry: leave out --offline",
        )
    lifecycle.up(
        ctx,
        UpOptions(context, registry, recreate, dry_run, offline),
    )


def down(ctx: Context, *, keep_registry: bool, keep_images: bool, dry_run: bool) -> None:
    teardown.down(ctx, keep_registry=keep_registry, keep_images=keep_images, dry_run=dry_run)


def status(ctx: Context) -> None:
    rows = [Row((name, detail), style) for name, style, detail in status_module.status_rows(ctx)]
    ctx.ui.table("lab status", ("component", "state"), rows)


def creds(ctx: Context) -> None:
    rows = [Row((what, user, password)) for what, user, password in status_module.credentials(ctx)]
    ctx.ui.table("lab credentials (keep them to yourself)", ("for", "user", "password"), rows)


def pipeline(ctx: Context, **flags: Any) -> None:
    """`pipeline.run` (from `start`), or one stage (`start` = `stop`)."""
    options = PipelineOptions.from_flags(pipeline_module.STAGE_NAMES, **flags)
    stages = pipeline_module.STAGES
    if options.stop is not None:
        stages = stages[: pipeline_module.STAGE_NAMES.index(options.stop) + 1]
    pipeline_module.pipeline_run(ctx, options, stages)


def approve(ctx: Context, *, sha: str | None) -> None:
    pipeline_module.approve(ctx, sha or "HEAD")
