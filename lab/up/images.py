"""The app images of the current tree, as :main, in the registry."""

from __future__ import annotations

from datetime import UTC, datetime

from lab import commits, distribution, engine, images
from lab.context import Lab, PipelineOptions

SEED_TAG = "main"  # the tag gitops/ deploys before the first pipeline run


def ensure_images(lab: Lab) -> str:
    """Build and push the current tree as `:main` unless the registry already has it.

    gitops/ seeds every environment with the `main` tag, so the lab is populated from
    the first sync; `pipeline.run` then deploys commit tags.
    """
    config = lab.config
    registry = lab.options.registry or config.registry_host
    missing = [s for s in images.SERVICES if not _registry_has(lab, s, SEED_TAG)]
    if not missing:
        return f"{len(images.SERVICES)} images already in {registry}"
    return lab.changes.make(
        f"build and push {', '.join(missing)} as {registry}/lab/<service>:{SEED_TAG}",
        lambda: _build_and_push(lab, registry, missing),
        planned="planned",
    )


def _build_and_push(lab: Lab, registry: str, missing: list[str]) -> str:
    config = lab.config
    commit = commits.resolve_commit(PipelineOptions(allow_dirty=True))
    plans = images.plan_builds(
        sha=commit.sha,
        tag=commit.image_tag,
        base_images=config.base_images,
        branch=SEED_TAG,
        version=commit.version,
        created=datetime.now(UTC) if commit.dirty else commit.time,
        services=missing,
        registry=registry,
    )
    client = engine.client()
    built = images.build_images(
        client,
        plans,
        on_log=lambda service, line: lab.ctx.ui.output(f"[{service}] {line}"),
        offline=lab.options.offline,
        cache_repository=config.build_cache_repository,
    )
    distribution.push_images(client, built)
    return f"built and pushed {', '.join(missing)}"


def _registry_has(lab: Lab, service: str, tag: str) -> bool:
    if lab.byo and lab.options.registry is None:
        return False
    host = lab.options.registry or f"{lab.config.bind_address}:{lab.config.registry_port}"
    return distribution.registry_has(host, f"{images.REPOSITORY_PREFIX}/{service}", tag)
