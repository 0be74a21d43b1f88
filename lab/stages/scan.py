"""scan: Trivy over the built images; a fixable HIGH/CRITICAL vulnerability stops the run."""

from __future__ import annotations

import time

from lab import (
    images,
    scan,
)
from lab.context import Run
from lab.report import StageResult, Status, worst
from lab.stages.common import registry


def scan_stage(run: Run) -> StageResult:
    started = time.time()
    references = list(run.images.values()) or [
        f"{images.image_repository(s, registry(run.ctx))}:{run.commit.image_tag}"
        for s in images.SERVICES
    ]
    results = scan.scan_images(run.ctx.config, references, offline=run.options.offline)
    checks = tuple(check for check, _ in results)
    findings = [vars(f) for _, found in results for f in found]
    status = worst(c.status for c in checks)
    counts = {s: sum(c.status is s for c in checks) for s in Status}
    summary = (
        f"{counts[Status.PASSED]} clean, {counts[Status.FAILED]} failed, "
        f"{counts[Status.UNVERIFIED]} unverified; {len(findings)} finding(s)"
    )
    return StageResult(
        "scan", status, started, time.time() - started, summary, checks, {"findings": findings}
    )
