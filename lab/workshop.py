"""Workshop mode's tasks: checkpoints to come back to (`lab.checkpoint.*`), and the
offline bundle (`lab.bundle.*`).

`RESTORE` is the whole of `lab.checkpoint.restore`: move main's content back, then wait
until Argo CD has both environments Synced and Healthy at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab import (
    __version__,
    argocd,
    bundle,
    bundle_loader,
    bundle_maker,
    checkpoints,
    gitserver,
    k8s,
    steps,
)
from lab.checkpoints import Checkpoint, Restored
from lab.cli import Context
from lab.errors import LabError
from lab.state import State
from lab.steps import Step
from lab.ui import Row


@dataclass
class Restoring:
    ctx: Context
    name: str
    restored: Restored | None = None


def move_main_back(job: Restoring) -> str:
    state = State.load(job.ctx.config.state_path)
    with gitserver.connect(job.ctx.config, state) as (_, remote):
        job.restored = checkpoints.restore(remote, job.name)
    point, revision = job.restored.checkpoint, job.restored.revision[:12]
    if not job.restored.changed:
        return f"main already holds {point.name} (at {revision})"
    return f"main at {revision}: the content of {point.name}, saved {point.created}"


def wait_for_environments(job: Restoring) -> str:
    assert job.restored is not None  # the step before sets it, or this one is skipped
    state = State.load(job.ctx.config.state_path)
    cluster = k8s.connect(str(state.context or job.ctx.config.kube_context))
    seen = checkpoints.wait_healthy(
        cluster,
        job.restored.revision,
        timeout=job.ctx.config.sync_timeout,
        report=job.ctx.ui.progress,
    )
    return "; ".join(seen)


RESTORE: tuple[Step[Restoring], ...] = (
    Step("Restoring the GitOps repository's main", move_main_back),  # a new commit, no force
    Step("Waiting for demo-dev and demo-prod", wait_for_environments),  # Synced and Healthy
)


def restore(ctx: Context, name: str) -> None:
    job = Restoring(ctx, checkpoints.validate_name(name))
    steps.raise_first_failure(steps.run(RESTORE, job, ctx.ui))
    assert job.restored is not None
    point = job.restored.checkpoint
    ctx.ui.info(
        f"Back at checkpoint {point.name}: dev runs {point.describe('dev')}, "
        f"prod runs {point.describe('prod')}."
    )


def save(ctx: Context, name: str) -> Checkpoint:
    name = checkpoints.validate_name(name)
    state = State.load(ctx.config.state_path)
    with gitserver.connect(ctx.config, state) as (_, remote):
        point, replaced = checkpoints.save(remote, name)
    ctx.ui.info(
        f"Saved checkpoint {name} at {point.revision[:12]}"
        + (" (it replaces the earlier one of that name)" if replaced else "")
        + f": dev runs {point.describe('dev')}, prod runs {point.describe('prod')}. "
        f"`invoke lab.checkpoint.restore {name}` comes back to it."
    )
    return point


def list_all(ctx: Context) -> None:
    state = State.load(ctx.config.state_path)
    with gitserver.connect(ctx.config, state) as (_, remote):
        points = checkpoints.list_checkpoints(remote)
    rows = [
        Row((p.name, p.created or "?", p.revision[:12], p.describe("dev"), p.describe("prod")))
        for p in points
    ]
    ctx.ui.table("checkpoints", ("name", "saved (UTC)", "main at", "dev", "prod"), rows)
    if not points:
        ctx.ui.info("No checkpoint yet: `invoke lab.checkpoint.save NAME` saves one.")


# -- bundles ------------------------------------------------------------------------------


def bundle_create(ctx: Context, *, output: str | None, from_docker: bool) -> None:
    config = ctx.config
    target = Path(output or f"lab-bundle-{__version__}.tar").resolve()
    if not target.parent.is_dir():
        raise LabError(f"{target.parent} is not a directory", hint="pass --output PATH/FILE.tar")
    install = argocd.install_manifest(config, config.state_path / "cache")
    made: list[bundle.Manifest] = []

    def write(_: None) -> str:
        made.append(
            bundle_maker.create(
                config,
                target,
                from_docker=from_docker,
                install_manifest=install,
                progress=lambda what, done, total: ctx.ui.progress(
                    f"{what} ({done}/{total} images)"
                ),
            )
        )
        return bundle.summary_lines(made[0])[0]

    step = steps.Step(f"Writing the bundle {target}", write, diagnose=False)
    steps.raise_first_failure(steps.run((step,), None, ctx.ui), context=False)
    manifest = made[0]
    for note in manifest.notes:
        ctx.ui.warn(note)
    ctx.ui.info(
        f"Give {target.name} ({bundle.describe_size(target.stat().st_size)}) to each "
        f"participant: `invoke lab.bundle.load {target.name}`, then `invoke lab.up --offline`."
    )


def bundle_load(ctx: Context, *, path: str) -> None:
    source = Path(path).expanduser().resolve()
    done: list[bundle_loader.Loaded] = []

    def load(_: None) -> str:
        with ctx.ui.transfer("verifying") as progress:
            done.append(bundle_loader.load(ctx.config, source, progress=progress))
        return f"{len(done[0].loaded)} loaded, {len(done[0].present)} already here"

    step = steps.Step(f"Loading the bundle {source.name}", load, diagnose=False)
    steps.raise_first_failure(steps.run((step,), None, ctx.ui), context=False)
    loaded = done[0]
    for note in loaded.manifest.notes:
        ctx.ui.warn(note)
    ctx.ui.info("Everything `lab.up --offline` needs is here: `invoke lab.up --offline`.")
