"""quality: vet, tests, linters and audits per service, in parallel."""

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
    )
