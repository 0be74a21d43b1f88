"""deploy-dev: the A/B tag bump in the GitOps repository; Argo CD applies it to demo-dev."""

from __future__ import annotations

import time

from lab import (
    gitops,
)
from lab.context import Run
from lab.report import StageResult, Status
from lab.stages.common import git_server, wait_synced


def deploy_stage(run: Run) -> StageResult:
    started = time.time()
    config = run.ctx.config
    with git_server(run.ctx) as (_, remote):
        deployment = gitops.deploy(remote, "dev", run.commit.image_tag)
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
