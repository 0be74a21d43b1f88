"""build: the images of the commit, tagged <sha> and <branch>, pushed to the registry."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from lab import distribution, engine, images, tags
from lab.context import Run
from lab.report import CheckResult, StageResult, Status
from lab.stages.common import registry


def build_stage(run: Run) -> StageResult:
    started = time.time()
    plans = images.plan_builds(
        sha=run.commit.sha,
        tag=run.commit.image_tag,
        base_images=run.ctx.config.base_images,
        branch=run.commit.branch + ("-dirty" if run.commit.dirty else ""),
        version=run.commit.version,
        created=datetime.now(UTC) if run.commit.dirty else run.commit.time,
        environment="dev",
        registry=registry(run.ctx),
    )
    client = engine.client()
    built = images.build_images(
        client,
        plans,
        on_log=_build_logger(run),
        offline=run.options.offline,
        cache_repository=run.ctx.config.build_cache_repository,
    )
    run.digests = distribution.push_images(client, built)
    run.images = {image.service: image.tags[0] for image in built}
    checks = tuple(
        CheckResult(
            image.service,
            Status.PASSED,
            image.seconds,
            "cached"
            if image.fully_cached
            else f"{image.steps - image.cached_steps} step(s) rebuilt",
        )
        for image in built
    )
    return StageResult(
        "build",
        Status.PASSED,
        started,
        time.time() - started,
        f"{len(built)} images pushed as :{_short(run.commit.image_tag)}",
        checks,
        {"images": run.images},
    )


def _short(tag: str) -> str:
    """`<sha12>…` for a commit's tag; a dirty build's keeps its suffix."""
    commit, dirty, tree = tag.partition(tags.DIRTY)
    return f"{commit[:12]}…{dirty}{tree}"


def _build_logger(run: Run) -> images.LogListener:
    def log(service: str, line: str) -> None:
        run.ctx.ui.output(f"[{service}] {line}")

    return log
