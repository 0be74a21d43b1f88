"""The pipeline's promote stage and its gate, against the real Gitea and the real gitops/."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from lab import cli, config, context, gitops, pipeline
from lab.report import StageResult, Status
from lab.stages import promote
from lab.state import State
from lab.ui import UI
from tests.conftest import REPO
from tests.integration.gitserver.support import ADMIN, ORG

pytestmark = pytest.mark.integration

SHA = "0123456789abcdef0123456789abcdef01234567"


def _run(tmp_path: Path, gitea, repo) -> context.Run:
    port = urlsplit(gitea.url).port
    cfg = config.load(
        {
            "state_dir": str(tmp_path / "state"),
            "gitea_http_port": port,
            "gitops_org": ORG,
            "gitops_repo": repo.name,
        },
        {},
    )
    state = State.load(cfg.state_path)
    state.gitea_admin = ADMIN
    state.gitea_token = gitea.token
    state.save()
    ctx = cli.Context(config=cfg, ui=UI())
    return context.Run(
        ctx, context.PipelineOptions(), context.Commit(SHA, "main", False), "r", tmp_path / "run"
    )


def _passed(name: str, summary: str):
    def body(run: context.Run) -> StageResult:
        return StageResult(name, Status.PASSED, time.time(), 0.1, summary)

    return (name, body)


def test_promote_opens_one_pull_request_with_the_summaries(tmp_path: Path, gitea, repo) -> None:
    gitops.seed(repo.remote, REPO / "gitops")
    run = _run(tmp_path, gitea, repo)
    stages = (
        _passed("scan", "4 clean, 0 failed, 0 unverified; 0 finding(s)"),
        _passed("smoke", "17/17 checks passed"),
        ("promote", promote.promote_stage),
    )
    results = pipeline.execute(run, stages)
    assert [r.status for r in results] == [Status.PASSED] * 3
    assert "pull request #" in results[-1].summary and "opened" in results[-1].summary
    with gitea.client() as server:
        [pr] = server.list_pull_requests(ORG, repo.name)
        assert pr.head == f"promote-{SHA}" and pr.base == "main"
    again = promote.promote_stage(_run(tmp_path, gitea, repo))
    assert "already open" in again.summary
    with gitea.client() as server:
        assert len(server.list_pull_requests(ORG, repo.name)) == 1


def test_a_failed_smoke_stage_opens_no_pull_request(tmp_path: Path, gitea, repo) -> None:
    seeded = gitops.seed(repo.remote, REPO / "gitops")
    with gitea.client() as server:  # Gitea indexes a first push asynchronously
        server.wait_for_branch(ORG, repo.name, "main", seeded.revision)

    def smoke_fails(run: context.Run) -> StageResult:
        return StageResult("smoke", Status.FAILED, time.time(), 0.1, "x-version v2: wrong commit")

    results = pipeline.execute(
        _run(tmp_path, gitea, repo), (("smoke", smoke_fails), ("promote", promote.promote_stage))
    )
    assert results[-1].status is Status.SKIPPED
    with gitea.client() as server:
        assert server.list_pull_requests(ORG, repo.name) == []
        assert server.list_pull_requests(ORG, repo.name, state="closed") == []
