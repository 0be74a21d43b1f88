"""promote: branch promote-<sha> and a pull request on Gitea; no token leaves lab."""

from __future__ import annotations

import time

from lab import (
    distribution,
    gitops,
    images,
)
from lab.context import Run
from lab.report import StageResult, Status
from lab.stages.common import git_server, registry


def promote_stage(run: Run) -> StageResult:
    started = time.time()
    config = run.ctx.config
    if run.commit.dirty:
        return StageResult(
            "promote",
            Status.SKIPPED,
            started,
            0.0,
            f"dev runs a build of a dirty tree (:{run.commit.image_tag}), which is never "
            "promoted: commit the changes and run the pipeline again",
        )
    scan_result = run.result("scan")
    smoke_result = run.result("smoke")
    summary = gitops.PromotionSummary(
        scan=scan_result.summary if scan_result else "not run in this run",
        smoke=smoke_result.summary if smoke_result else "not run in this run",
    )
    with git_server(run.ctx) as (server, remote):
        promotion = gitops.promote(
            remote,
            server,
            config.gitops_org,
            config.gitops_repo,
            run.commit.sha,
            summary=summary,
            # for the images dev no longer runs this commit with (or runs by tag)
            digests=distribution.registry_digests(
                registry(run.ctx), images.SERVICES, run.commit.sha
            ),
        )
    pr = promotion.pull_request
    if pr is None:
        return StageResult(
            "promote",
            Status.PASSED,
            started,
            time.time() - started,
            "prod already runs this commit",
        )
    url = f"http://{config.bind_address}:{config.gitea_http_port}/{config.gitops_org}/{config.gitops_repo}/pulls/{pr.number}"
    verb = "opened" if promotion.created else "already open"
    return StageResult(
        "promote",
        Status.PASSED,
        started,
        time.time() - started,
        f"pull request #{pr.number} {verb}: {url}"
        + (
            f" (closed the superseded {', '.join(f'#{n}' for n in promotion.superseded)})"
            if promotion.superseded
            else ""
        ),
        data={"pull_request": pr.number, "url": url, "superseded": list(promotion.superseded)},
    )
