"""deploy-dev: the A/B bump in the GitOps repository, pinned by digest; Argo CD syncs demo-dev."""

from __future__ import annotations

import time

from lab import (
    distribution,
    gitops,
    images,
)
from lab.context import Run
from lab.report import StageResult, Status
from lab.stages.common import git_server, registry, wait_synced


def deploy_stage(run: Run) -> StageResult:
    started = time.time()
    config = run.ctx.config
    tag = run.commit.image_tag
    # What this run pushed, else (a run resumed at deploy) what the registry holds.
    missing = [service for service in images.SERVICES if service not in run.digests]
    digests = {**distribution.pushed_digests(registry(run.ctx), missing, tag), **run.digests}
    with git_server(run.ctx) as (_, remote):
        deployment = gitops.deploy(remote, "dev", tag, digests=digests)
    observed = wait_synced(run, "demo-dev", deployment.revision)
    changed = (
        ", ".join(f"{c.name} {c.old[:7]}→{c.new[:7]}" for c in deployment.changes)
        or "already deployed"
    )
    return StageResult(
        "deploy-dev",
        Status.PASSED,
        started,
        time.time() - started,
        f"{changed}; {observed}",
        data={"revision": deployment.revision, "repo": config.gitops_repo_url},
    )
