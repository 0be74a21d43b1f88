"""approve: merge the promotion pull request (the manual gate); Argo CD syncs demo-prod."""

from __future__ import annotations

import time

from lab.context import Run
from lab.errors import LabError
from lab.report import StageResult, Status
from lab.stages.common import git_server, wait_synced


def approve_stage(run: Run) -> StageResult:
    """Merge the promote-<sha> pull request (or find it merged); Argo CD syncs demo-prod."""
    config = run.ctx.config
    started = time.time()
    branch = f"promote-{run.commit.sha}"
    with git_server(run.ctx) as (server, _):
        pr = server.find_open_pull_request(config.gitops_org, config.gitops_repo, branch, "main")
        if pr is None:
            merged = [
                p
                for p in server.list_pull_requests(
                    config.gitops_org, config.gitops_repo, state="closed"
                )
                if p.head == branch and p.merged
            ]
            if not merged:
                raise LabError(
                    f"no pull request promotes {run.commit.sha[:12]}",
                    hint="run `invoke pipeline.run` (or `pipeline.promote`) first",
                )
            pr = merged[-1]
            note = f"pull request #{pr.number} was already merged"
        else:
            pr = server.merge_pull_request(
                config.gitops_org, config.gitops_repo, pr.number, expected_head=pr.head_sha
            )
            note = f"merged pull request #{pr.number}"
        revision = server.branch_sha(config.gitops_org, config.gitops_repo, "main") or ""
    observed = wait_synced(run, "demo-prod", revision)
    return StageResult(
        "approve", Status.PASSED, started, time.time() - started, f"{note}; {observed}"
    )
