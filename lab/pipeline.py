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
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from lab import (
    argocd,
    diagnostics,
    engine,
    gitops,
    gitserver,
    images,
    manifests,
    mesh,
    proc,
    quality,
    report,
    scan,
    wait,
)
from lab.cli import Context
from lab.errors import LabError
from lab.report import CheckResult, StageResult, Status
from lab.state import State

REPO_ROOT = Path(__file__).resolve().parent.parent
SMOKE_JOB = "smoke-test"


@dataclass(frozen=True)
class Options:
    sha: str | None = None  # default: HEAD
    start: str | None = None  # resume from this stage (`--from`)
    runner: str = "docker"  # quality checks: in toolchain containers, or "host"
    strict: bool | None = None  # UNVERIFIED fails (default: when CI=true)
    offline: bool = False  # scan with Trivy's cached database
    allow_dirty: bool = False


@dataclass(frozen=True)
class Commit:
    sha: str
    branch: str
    dirty: bool
    # The commit's time: images carry it as their creation time, so rebuilding an
    # unchanged tree hits the layer cache all the way and gives the same image.
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def version(self) -> str:
        return f"{self.sha[:12]}-dirty" if self.dirty else self.sha[:12]


@dataclass
class Run:
    """One pipeline run: what it builds, and what the stages found so far."""

    ctx: Context
    options: Options
    commit: Commit
    run_id: str
    directory: Path
    results: list[StageResult] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)  # service → reference by sha

    @property
    def strict(self) -> bool:
        if self.options.strict is not None:
            return self.options.strict
        return os.environ.get("CI", "").lower() in ("1", "true", "yes")

    def result(self, name: str) -> StageResult | None:
        return next((r for r in self.results if r.name == name), None)


Stage = tuple[str, Callable[[Run], StageResult]]


# -- the stages ---------------------------------------------------------------------------


def quality_stage(run: Run) -> StageResult:
    return quality.run_quality(
        run.ctx.ui, run.ctx.config, runner=run.options.runner, strict=run.strict
    )


def build_stage(run: Run) -> StageResult:
    started = time.time()
    plans = images.plan_builds(
        sha=run.commit.sha,
        branch=run.commit.branch + ("-dirty" if run.commit.dirty else ""),
        version=run.commit.version,
        created=datetime.now(UTC) if run.commit.dirty else run.commit.time,
        environment="dev",
        registry=registry(run.ctx),
    )
    client = engine.client()
    built = images.build_images(client, plans, on_log=_build_logger(run))
    images.push_images(client, built)
    run.images = {image.service: image.tags[0] for image in built}
    checks = tuple(
        CheckResult(
            image.service,
            Status.PASSED,
            image.seconds,
            "cached"
            if image.fully_cached
            else f"{image.steps - image.cached_steps} step(s) rebuilt",
        )
        for image in built
    )
    return StageResult(
        "build",
        Status.PASSED,
        started,
        time.time() - started,
        f"{len(built)} images pushed as :{run.commit.sha[:12]}…",
        checks,
        {"images": run.images},
    )


def scan_stage(run: Run) -> StageResult:
    started = time.time()
    references = list(run.images.values()) or [
        f"{images.image_repository(s, registry(run.ctx))}:{run.commit.sha}" for s in images.SERVICES
    ]
    results = scan.scan_images(run.ctx.config, references, offline=run.options.offline)
    checks = tuple(check for check, _ in results)
    findings = [vars(f) for _, found in results for f in found]
    status = _aggregate(checks, strict=run.strict)
    counts = {s: sum(c.status is s for c in checks) for s in Status}
    summary = (
        f"{counts[Status.PASSED]} clean, {counts[Status.FAILED]} failed, "
        f"{counts[Status.UNVERIFIED]} unverified; {len(findings)} finding(s)"
    )
    return StageResult(
        "scan", status, started, time.time() - started, summary, checks, {"findings": findings}
    )


def deploy_stage(run: Run) -> StageResult:
    started = time.time()
    config = run.ctx.config
    with git_server(run.ctx) as (_, remote):
        deployment = gitops.deploy(remote, "dev", run.commit.sha)
    observed = _wait_synced(run, "demo-dev", deployment.revision)
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


def smoke_stage(run: Run, environment: str = "dev") -> StageResult:
    started = time.time()
    checks, passed, logs = run_smoke(run.ctx, environment, run.commit.sha)
    return StageResult(
        "smoke" if environment == "dev" else f"smoke-{environment}",
        Status.PASSED if passed else Status.FAILED,
        started,
        time.time() - started,
        f"{sum(c.status is Status.PASSED for c in checks)}/{len(checks)} checks passed",
        tuple(checks),
        {"log": logs[-4000:]},
    )


def promote_stage(run: Run) -> StageResult:
    started = time.time()
    config = run.ctx.config
    scan_result = run.result("scan")
    smoke_result = run.result("smoke")
    summary = gitops.PromotionSummary(
        scan=scan_result.summary if scan_result else "not run in this run",
        smoke=smoke_result.summary if smoke_result else "not run in this run",
    )
    with git_server(run.ctx) as (server, remote):
        promotion = gitops.promote(
            remote, server, config.gitops_org, config.gitops_repo, run.commit.sha, summary=summary
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
        f"pull request #{pr.number} {verb}: {url}",
        data={"pull_request": pr.number, "url": url},
    )


STAGES: tuple[Stage, ...] = (
    ("quality", quality_stage),  # vet, tests, linters, audits: per service, in parallel
    ("build", build_stage),  # images tagged <sha> and <branch>, pushed to the lab registry
    ("scan", scan_stage),  # Trivy: a fixable HIGH/CRITICAL vulnerability stops the run
    ("deploy-dev", deploy_stage),  # A/B tag bump in the GitOps repo; Argo CD syncs demo-dev
    ("smoke", smoke_stage),  # the smoke Job in demo-dev: no promotion when it fails
    ("promote", promote_stage),  # branch promote-<sha> and a pull request on Gitea
)
STAGE_NAMES = tuple(name for name, _ in STAGES)


def approve(ctx: Context, sha: str) -> report.RunReport:
    """The manual gate: merge the promotion pull request, let prod sync, smoke-test prod."""
    config = ctx.config
    commit = resolve_commit(Options(sha=sha, allow_dirty=True))
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{commit.sha[:7]}-approve"
    run = Run(ctx, Options(sha=sha), commit, run_id, config.state_path / "runs" / run_id)

    def merge(run: Run) -> StageResult:
        started = time.time()
        branch = f"promote-{run.commit.sha}"
        with git_server(run.ctx) as (server, _):
            pr = server.find_open_pull_request(
                config.gitops_org, config.gitops_repo, branch, "main"
            )
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
        observed = _wait_synced(run, "demo-prod", revision)
        return StageResult(
            "approve", Status.PASSED, started, time.time() - started, f"{note}; {observed}"
        )

    stages: tuple[Stage, ...] = (
        ("approve", merge),  # merge the promote-<sha> pull request; Argo CD syncs demo-prod
        ("smoke-prod", partial(smoke_stage, environment="prod")),  # the smoke Job in demo-prod
    )
    with run_lock(config.state_path):
        started = time.time()
        try:
            execute(run, stages)
        finally:
            result = finish(run, started)
    if result.status is Status.FAILED:
        failed = next(s for s in result.stages if s.status is Status.FAILED)
        raise LabError(
            f"approve failed at {failed.name}: {failed.summary}",
            hint=f"report: {run.directory / 'report.html'}",
        )
    return result


# -- running ------------------------------------------------------------------------------


def execute(run: Run, stages: Sequence[Stage], *, start: str | None = None) -> list[StageResult]:
    """Run `stages` in order from `start`; stop at the first failure (the gate)."""
    names = [name for name, _ in stages]
    if start is not None and start not in names:
        raise LabError(f"unknown stage {start!r}", hint=f"stages: {', '.join(names)}")
    index = names.index(start) if start else 0
    ui = run.ctx.ui
    stopped: str | None = None
    for name, body in stages[index:]:
        if stopped:
            run.results.append(
                StageResult(name, Status.SKIPPED, time.time(), 0.0, f"not run: {stopped}")
            )
            continue
        ui.step_started(f"Stage {name}")
        began = time.monotonic()
        try:
            result = body(run)
        except LabError as error:
            result = StageResult(
                name,
                Status.FAILED,
                time.time(),
                time.monotonic() - began,
                error.message,
                (
                    CheckResult(
                        name, Status.FAILED, detail=error.message, output=error.output_tail or ""
                    ),
                ),
                {"hint": error.hint or "", "command": error.command or ""},
            )
            if error.command or error.output_tail:  # the evidence, once; the hint comes last
                run.ctx.ui.info(error.render().split("\n  hint:")[0])
        except Exception as error:
            # A Kubernetes ApiException, a docker APIError, a requests timeout: the stage
            # failed, and the report (json, junit, html) must say so, with the evidence.
            result = crashed_stage(name, error, time.monotonic() - began)
            bundle = diagnostics.collect(run.ctx.config, LabError(result.summary))
            result.data["diagnostics"] = str(bundle)
            run.ctx.ui.warn(f"stage {name} crashed: {result.summary}; diagnostics: {bundle}")
        run.results.append(result)
        ok = result.status in (Status.PASSED, Status.SKIPPED) or (
            result.status is Status.UNVERIFIED and not run.strict
        )
        ui.step_finished(f"Stage {name}", time.monotonic() - began, ok=ok, note=result.summary)
        if not ok:
            stopped = f"{name} {result.status.value}"
    return run.results


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
    ctx: Context, options: Options, stages: Sequence[Stage] = STAGES
) -> report.RunReport:
    """The whole run: lock, resolve the commit, run the stages, write the report."""
    with run_lock(ctx.config.state_path):
        commit = resolve_commit(options)
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
            f"(report: {run.directory / 'report.html'})",
        )
    return result


def finish(run: Run, started: float) -> report.RunReport:
    result = report.RunReport(
        run.run_id, run.commit.sha, run.commit.branch, run.commit.dirty, started, tuple(run.results)
    )
    paths = report.write(result, run.directory)
    rows = report.summary_rows(result.stages)
    from lab.ui import Row

    style = {"passed": "ok", "failed": "fail", "unverified": "warn", "skipped": "skip"}
    run.ctx.ui.table(
        f"pipeline {run.run_id}: {result.status.value}",
        ("stage", "result", "time", "summary"),
        [Row(row, style[row[1]]) for row in rows],
    )
    run.ctx.ui.info(f"report: {paths['html']}  (junit: {paths['junit']})")
    return result


def resolve_commit(options: Options, repo: Path = REPO_ROOT) -> Commit:
    git = partial(proc.run, timeout=30, cwd=repo)
    head = git(("git", "rev-parse", "HEAD")).stdout.strip()
    sha = options.sha or head
    if options.sha:
        sha = git(
            ("git", "rev-parse", "--verify", f"{options.sha}^{{commit}}"),
            hint="pass a commit of this repository",
        ).stdout.strip()
    branch = git(("git", "rev-parse", "--abbrev-ref", "HEAD")).stdout.strip()
    dirty = (
        bool(git(("git", "status", "--porcelain", "--untracked-files=no")).stdout.strip())
        and sha == head
    )
    if dirty and not options.allow_dirty:
        raise LabError(
            "the working tree has uncommitted changes, so the images would not match any commit",
            hint="commit or stash them, or pass --allow-dirty (the images are then marked -dirty)",
        )
    stamp = git(("git", "show", "-s", "--format=%cI", sha)).stdout.strip()
    return Commit(
        sha, "detached" if branch == "HEAD" else branch, dirty, datetime.fromisoformat(stamp)
    )


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


def git_server(
    ctx: Context,
) -> AbstractContextManager[tuple[gitserver.GitServer, gitserver.Remote]]:
    """The lab's Gitea and GitOps remote, on the cluster `lab.up` used (for a `with`)."""
    return gitserver.connect(ctx.config, State.load(ctx.config.state_path))


def registry(ctx: Context) -> str:
    """Where images go: the lab's registry, or the one `lab.up --registry` named."""
    return str(State.load(ctx.config.state_path).get("registry") or ctx.config.registry_host)


def _cluster(ctx: Context) -> Any:
    from lab import k8s

    context = State.load(ctx.config.state_path).get("context") or ctx.config.kube_context
    return k8s.connect(str(context))


def _wait_synced(run: Run, app: str, revision: str) -> str:
    """Wait until Argo CD has applied `revision` to `app` (Synced at it).

    Whether the new pods become Ready is the smoke stage's question (it waits for every
    rollout first), so a change that breaks a readiness probe fails smoke, not deploy.
    A sync Argo CD gave up on (its retries spent: say a manifest the API server
    rejects) fails here at once, with the server's words.
    """
    cluster = _cluster(run.ctx)
    resource = cluster.resource("argoproj.io/v1alpha1", "Application")
    # Ask for a refresh now rather than waiting for Argo CD's polling interval.
    resource.patch(
        name=app,
        namespace=argocd.NAMESPACE,
        body=argocd.refresh_annotation(),
        content_type="application/merge-patch+json",
    )

    def look() -> wait.Observation:
        obj = cluster.get("argoproj.io/v1alpha1", "Application", app, argocd.NAMESPACE)
        if obj is None:
            return wait.Observation(False, f"application {app} not found")
        sync, health, current = argocd.application_status(obj)
        full = str(((obj.get("status") or {}).get("sync") or {}).get("revision", ""))
        failure = argocd.sync_failure(obj, revision)
        if failure:
            return wait.Observation(False, f"Argo CD could not sync {app}: {failure}", failed=True)
        return wait.Observation(
            full == revision and sync == "Synced",
            f"{app}: {sync}, {health} at {current or '?'} (want {revision[:12]})",
        )

    return wait.until(
        f"Argo CD to sync {app} to {revision[:12]}",
        look,
        timeout=run.ctx.config.sync_timeout,
        report=run.ctx.ui.progress,
    ).seen


def run_smoke(ctx: Context, environment: str, sha: str) -> tuple[list[CheckResult], bool, str]:
    """Run the environment's smoke Job and return its checks, verdict and log.

    Argo CD skips the Job (`argocd.argoproj.io/hook: Skip`, see gitops/README.md): once
    every Deployment is rolled out, lab renders the environment from the GitOps
    repository, replaces the previous Job with this one and waits for its verdict.
    """
    namespace = f"demo-{environment}"
    cluster = _cluster(ctx)
    for deployment in cluster.list_objects("apps/v1", "Deployment", namespace):
        name = deployment["metadata"]["name"]
        wait.until(
            f"deployment {namespace}/{name} to roll out",
            partial(cluster.deployment_observation, namespace, name),
            timeout=ctx.config.smoke_timeout,
            report=ctx.ui.progress,
        )
    with git_server(ctx) as (_, remote), gitops.repository_tree(remote) as tree:
        job = manifests.smoke_job(manifests.render(tree / "environments" / environment))
    job.setdefault("metadata", {})["namespace"] = namespace
    job["metadata"].setdefault("labels", {})["lab.dev/commit"] = sha[:63]
    if not mesh.has_data_plane(ctx.config):
        direct_routes(job)
    if cluster.delete("batch/v1", "Job", SMOKE_JOB, namespace):
        wait.until(
            f"the previous smoke Job in {namespace} to be deleted",
            lambda: wait.Observation(
                cluster.get("batch/v1", "Job", SMOKE_JOB, namespace) is None, "still there"
            ),
            timeout=60,
        )
    cluster.apply(job)

    def look() -> wait.Observation:
        found = cluster.get("batch/v1", "Job", SMOKE_JOB, namespace)
        if found is None:
            return wait.Observation(False, "smoke Job not created yet")
        verdict = job_verdict(found)
        return wait.Observation(verdict is not None, verdict or "running")

    verdict = wait.until(
        f"the smoke test in {namespace}",
        look,
        timeout=ctx.config.smoke_timeout,
        report=ctx.ui.progress,
    ).seen
    finished = cluster.get("batch/v1", "Job", SMOKE_JOB, namespace) or {}
    pod = cluster.job_pod(namespace, finished)
    logs = cluster.pod_log(namespace, pod, container=SMOKE_JOB) if pod else ""
    for line in logs.splitlines():
        ctx.ui.output(line)
    passed = verdict == "complete"
    if not passed:
        bundle = diagnostics.collect(ctx.config, LabError(f"smoke test in {namespace}: {verdict}"))
        ctx.ui.warn(f"smoke test failed: {verdict}; diagnostics: {bundle}")
    return parse_smoke_log(logs), passed, logs


# Without Istio's data plane nothing routes by path or x-version: the smoke program
# calls each Service directly (apps/smoke/README.md, "Without a gateway").
SERVICE_ROUTES = (
    "/api/=http://backend{-version}:3000,"
    "/status=http://monitor{-version}:8000,"
    "/app=http://frontend:8080"
)


def direct_routes(job: dict[str, Any]) -> None:
    """Point the smoke Job at the Services instead of the gateway (in place)."""
    for container in job["spec"]["template"]["spec"]["containers"]:
        if container.get("name") == SMOKE_JOB:
            env = [e for e in container.get("env", []) if e.get("name") != "SERVICE_ROUTES"]
            container["env"] = [*env, {"name": "SERVICE_ROUTES", "value": SERVICE_ROUTES}]


def job_verdict(job: dict[str, Any]) -> str | None:
    """'complete', 'failed: <reason>', or None while the Job runs (from its conditions)."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return "complete"
        if condition.get("type") == "Failed":
            return f"failed: {condition.get('reason')}: {condition.get('message', '')}".strip()
    return None


def parse_smoke_log(text: str) -> list[CheckResult]:
    """The smoke program prints `ok   <check> (<ms>ms)` or `FAIL <check>: <reason>`."""
    checks = []
    for line in text.splitlines():
        if line.startswith("ok "):
            name = line[3:].strip()
            millis = 0.0
            if name.endswith("ms)") and "(" in name:
                name, _, timing = name.rpartition("(")
                millis = float(timing.rstrip("ms)") or 0) / 1000
            checks.append(CheckResult(name.strip(), Status.PASSED, millis))
        elif line.startswith("FAIL "):
            name, _, reason = line[5:].partition(":")
            checks.append(CheckResult(name.strip(), Status.FAILED, detail=reason.strip()))
    return checks


def _aggregate(checks: Sequence[CheckResult], *, strict: bool) -> Status:
    statuses = {c.status for c in checks}
    if Status.FAILED in statuses:
        return Status.FAILED
    if Status.UNVERIFIED in statuses:
        return Status.UNVERIFIED
    return Status.PASSED


def _build_logger(run: Run) -> images.LogListener:
    def log(service: str, line: str) -> None:
        run.ctx.ui.output(f"[{service}] {line}")

    return log
