"""quality: vet, tests, linters and audits per service, and the GitOps repository's lint,
in parallel."""

from __future__ import annotations

from lab import (
    quality,
)
from lab.context import Run
from lab.report import StageResult


def quality_stage(run: Run) -> StageResult:
    return quality.run_quality(
        run.ctx.ui,
        run.ctx.config,
        runner=run.options.runner,
        strict=run.strict,
        offline=run.options.offline,
        gitops_dir=quality.PROJECT_ROOT / "gitops",
    )
