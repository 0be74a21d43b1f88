"""`invoke pipeline.run`: the CI/CD flow a team runs on GitHub Actions, run locally.

`STAGES` is the whole flow, in order: read it as the table of contents. Each stage
returns a `StageResult`; a failed stage stops the run, and the stages after it are
reported as skipped, so a scan failure deploys nothing and a smoke failure opens no pull
request. Every run writes `.lab/runs/<id>/` (report.json, junit.xml, report.html).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from lab import diagnostics, proc, report, steps
from lab.cli import Context
from lab.commits import resolve_commit
from lab.context import PipelineOptions, Run, Stage
from lab.errors import LabError
from lab.report import CheckResult, StageResult, Status
from lab.stages.approve import approve_stage
from lab.stages.build import build_stage
from lab.stages.deploy import deploy_stage
from lab.stages.promote import promote_stage
from lab.stages.quality import quality_stage
from lab.stages.scan import scan_stage
from lab.stages.smoke import smoke_stage
from lab.ui import UI, Row

REPO_ROOT = Path(__file__).resolve().parent.parent


STAGES: tuple[Stage, ...] = (
    ("quality", quality_stage),  # vet, tests, linters, audits: per service, in parallel
    ("build", build_stage),  # images tagged <sha> and <branch>, pushed to the lab registry
    ("scan", scan_stage),  # Trivy: a fixable HIGH/CRITICAL vulnerability stops the run
    ("deploy-dev", deploy_stage),  # A/B tag bump in the GitOps repo; Argo CD syncs demo-dev
    ("smoke", smoke_stage),  # the smoke Job in demo-dev: no promotion when it fails
    ("promote", promote_stage),  # branch promote-<sha> and a pull request on Gitea
)
STAGE_NAMES = tuple(name for name, _ in STAGES)


APPROVE: tuple[Stage, ...] = (
    ("approve", approve_stage),  # merge the promote-<sha> pull request; Argo CD syncs demo-prod
    ("smoke-prod", partial(smoke_stage, environment="prod")),  # the smoke Job in demo-prod
)


def approve(ctx: Context, sha: str) -> report.RunReport:
    """The manual gate: merge the promotion pull request, let prod sync, smoke-test prod."""
    config = ctx.config
    commit = resolve_commit(PipelineOptions(sha=sha, allow_dirty=True))
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{commit.sha[:7]}-approve"
    run = Run(ctx, PipelineOptions(sha=sha), commit, run_id, config.state_path / "runs" / run_id)

    with run_lock(config.state_path):
        started = time.time()
        try:
            execute(run, APPROVE)
        finally:
            result = finish(run, started)
    if result.status is Status.FAILED:
        failed = next(s for s in result.stages if s.status is Status.FAILED)
        raise LabError(
            f"approve failed at {failed.name}: {failed.summary}",
            hint=f"report: {run.directory / 'report.html'}" + _diagnostics_of(failed),
        )
    return result


# -- running ------------------------------------------------------------------------------


# Stages whose failure is about the cluster: a diagnostics bundle is collected for them.
DIAGNOSED = frozenset({"deploy-dev", "smoke", "promote", "approve", "smoke-prod"})


def execute(run: Run, stages: Sequence[Stage], *, start: str | None = None) -> list[StageResult]:
    """Run `stages` in order from `start`; stop at the first failure (the gate). A
    failed or crashed stage is a FAILED result with its evidence; those after it are
    SKIPPED; UNVERIFIED stops the run only when it is strict."""
    names = [name for name, _ in stages]  # `start` was checked with the flags
    chosen = stages[names.index(start) if start else 0 :]
    name_of = {f"Stage {name}": name for name, _ in chosen}

    def gate(outcome: steps.Outcome) -> bool:
        return outcome.status in (Status.PASSED, Status.SKIPPED) or (
            outcome.status is Status.UNVERIFIED and not run.strict
        )

    def record(outcome: steps.Outcome) -> None:
        run.results.append(stage_result(name_of[outcome.title], outcome, run.ctx.ui))

    steps.run(
        [
            steps.Step(f"Stage {name}", body, diagnose=name in DIAGNOSED, name=name)
            for name, body in chosen
        ],
        run,
        run.ctx.ui,
        gate=gate,
        diagnose=lambda error: diagnostics.collect(run.ctx.config, error),
        on_outcome=record,
    )
    return run.results


def stage_result(name: str, outcome: steps.Outcome, ui: UI) -> StageResult:
    """The report's view of a stage's outcome."""
    if outcome.result is not None:
        result = outcome.result
    elif outcome.crash is not None:
        # A Kubernetes ApiException, a docker APIError, a requests timeout: the stage
        # failed, and the report (json, junit, html) must say so, with the evidence.
        result = crashed_stage(name, outcome.crash, outcome.seconds)
        ui.warn(f"stage {name} crashed: {result.summary}")
    elif outcome.error is not None:
        error = outcome.error
        result = StageResult(
            name,
            Status.FAILED,
            time.time() - outcome.seconds,
            outcome.seconds,
            error.message,
            (
                CheckResult(
                    name, Status.FAILED, detail=error.message, output=error.output_tail or ""
                ),
            ),
            {"hint": error.hint or "", "command": error.command or ""},
        )
        if error.command or error.output_tail:  # the evidence, once; the hint comes last
            ui.info(error.render().split("\n  hint:")[0])
    else:
        result = StageResult(name, outcome.status, time.time(), 0.0, outcome.note)
    if outcome.diagnostics is not None:
        result.data["diagnostics"] = str(outcome.diagnostics)
        ui.info(f"  diagnostics: {outcome.diagnostics}")
    return result


def crashed_stage(name: str, error: BaseException, duration: float) -> StageResult:
    """A stage that raised something other than a LabError, as a FAILED result (pure)."""
    kind = type(error).__name__
    body = getattr(error, "body", None)  # kubernetes ApiException keeps the server's answer
    reason = str(getattr(error, "reason", "") or error).strip().splitlines()
    summary = f"{kind}: {reason[0] if reason else 'no message'}"[:300]
    output = "\n".join(part for part in (str(error), str(body or "")) if part)[-4000:]
    return StageResult(
        name,
        Status.FAILED,
        time.time(),
        duration,
        summary,
        (CheckResult(name, Status.FAILED, duration, summary, output),),
        {"hint": "a bug in lab or in an API it calls; the report keeps the evidence"},
    )


def stopping_stage(result: report.RunReport) -> StageResult:
    """The stage that stopped the run: the first FAILED one, else the first UNVERIFIED
    (pure). A lenient run goes on past UNVERIFIED stages, so the first of those is not
    necessarily where it stopped."""
    for wanted in (Status.FAILED, Status.UNVERIFIED):
        for stage in result.stages:
            if stage.status is wanted:
                return stage
    raise ValueError("the run did not stop")


def pipeline_run(
    ctx: Context, options: PipelineOptions, stages: Sequence[Stage] = STAGES
) -> report.RunReport:
    """The whole run: lock, resolve the commit, run the stages, write the report."""
    with run_lock(ctx.config.state_path):
        commit = resolve_commit(options)
        names = [name for name, _ in stages]
        reads_tree = [
            n for n in TREE_STAGES if n in names[names.index(options.start or names[0]) :]
        ]
        if reads_tree and commit.sha != head_commit():
            raise LabError(
                f"--sha {options.sha} is not HEAD, and {', '.join(reads_tree)} would read the "
                "working tree, not that commit",
                hint=f"check out {options.sha} first (`git switch --detach {options.sha}`), or "
                "start after them (`--from scan`) if its images are already built",
            )
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{commit.sha[:7]}"
        run = Run(ctx, options, commit, run_id, ctx.config.state_path / "runs" / run_id)
        ctx.ui.info(
            f"Pipeline run {run_id} for {commit.sha[:12]} on {commit.branch}"
            + (" (dirty tree)" if commit.dirty else "")
        )
        started = time.time()
        try:
            execute(run, stages, start=options.start)
        finally:
            result = finish(run, started)
    if result.status is Status.FAILED or (result.status is Status.UNVERIFIED and run.strict):
        failed = stopping_stage(result)
        first = f"{failed.data['hint']}; then " if failed.data.get("hint") else "fix it, then "
        raise LabError(
            f"pipeline {result.status.value} at stage {failed.name}: {failed.summary}",
            hint=f"{first}resume with `invoke pipeline.run --from {failed.name}` "
            f"(report: {run.directory / 'report.html'})" + _diagnostics_of(failed),
        )
    return result


def _diagnostics_of(stage: StageResult) -> str:
    found = stage.data.get("diagnostics")
    return f"\n  diagnostics: {found}" if found else ""


def finish(run: Run, started: float) -> report.RunReport:
    result = report.RunReport(
        run.run_id,
        run.commit.sha,
        run.commit.branch,
        run.commit.dirty,
        started,
        tuple(run.results),
        strict=run.strict,
    )
    paths = report.write(result, run.directory)
    rows = report.summary_rows(result.stages)
    run.ctx.ui.table(
        f"pipeline {run.run_id}: {result.status.value}",
        ("stage", "result", "time", "summary"),
        [Row(row, steps.STYLE[Status(row[1])]) for row in rows],
    )
    run.ctx.ui.info(f"report: {paths['html']}  (junit: {paths['junit']})")
    return result


# Stages that read the checkout's files (tests, Dockerfile contexts), not a commit's.
TREE_STAGES = ("quality", "build")


def head_commit(repo: Path = REPO_ROOT) -> str:
    return proc.run(("git", "rev-parse", "HEAD"), timeout=30, cwd=repo).stdout.strip()


@contextmanager
def run_lock(state_dir: Path) -> Iterator[None]:
    """Refuse a second concurrent run; the OS releases the lock if we die."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "pipeline.lock"
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise LabError(
                f"another pipeline run is in progress ({holder})",
                hint="wait for it to finish, or stop it with Ctrl-C; runs cannot overlap",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {datetime.now(UTC):%H:%M:%S} UTC")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- the cluster side ---------------------------------------------------------------------
