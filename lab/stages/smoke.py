"""smoke: the environment's smoke Job, once every rollout is done; its checks parsed."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from lab import (
    gitops,
    manifests,
    mesh,
    wait,
)
from lab.cli import Context
from lab.context import Run
from lab.report import CheckResult, StageResult, Status
from lab.stages.common import cluster_of, git_server

SMOKE_JOB = "smoke-test"


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


def run_smoke(ctx: Context, environment: str, sha: str) -> tuple[list[CheckResult], bool, str]:
    """Run the environment's smoke Job and return its checks, verdict and log.

    Argo CD skips the Job (`argocd.argoproj.io/hook: Skip`, see gitops/README.md): once
    every Deployment is rolled out, lab renders the environment from the GitOps
    repository, replaces the previous Job with this one and waits for its verdict.
    """
    namespace = f"demo-{environment}"
    cluster = cluster_of(ctx)
    for deployment in cluster.list_objects("apps/v1", "Deployment", namespace):
        name = deployment["metadata"]["name"]
        wait.until(
            f"deployment {namespace}/{name} to roll out",
            partial(cluster.deployment_observation, namespace, name),
            timeout=ctx.config.smoke_timeout,
            report=ctx.ui.progress,
        )
    with git_server(ctx) as (_, remote), gitops.repository_tree(remote) as tree:
        kustomize = manifests.kustomize_binary(version=ctx.config.kustomize_version)
        rendering = manifests.render(tree / "environments" / environment, kustomize=kustomize)
        job = manifests.smoke_job(rendering)
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
    if not passed:  # the step runner collects the diagnostics bundle of a failed stage
        ctx.ui.warn(f"smoke test in {namespace} failed: {verdict}")
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
