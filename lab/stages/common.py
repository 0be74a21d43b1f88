"""What several stages share: the lab's Git server and registry, the cluster, and
waiting for Argo CD."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from lab import (
    argocd,
    gitserver,
    k8s,
    wait,
)
from lab.cli import Context
from lab.context import Run
from lab.state import State


def git_server(
    ctx: Context,
) -> AbstractContextManager[tuple[gitserver.GitServer, gitserver.Remote]]:
    """The lab's Gitea and GitOps remote, on the cluster `lab.up` used (for a `with`)."""
    return gitserver.connect(ctx.config, State.load(ctx.config.state_path))


def registry(ctx: Context) -> str:
    """Where images go: the lab's registry, or the one `lab.up --registry` named."""
    return State.load(ctx.config.state_path).registry or ctx.config.registry_host


def cluster_of(ctx: Context) -> Any:

    return k8s.connect(State.load(ctx.config.state_path).context or ctx.config.kube_context)


def wait_synced(run: Run, app: str, revision: str) -> str:
    """Wait until Argo CD has applied `revision` to `app` (Synced at it).

    Whether the new pods become Ready is the smoke stage's question (it waits for every
    rollout first), so a change that breaks a readiness probe fails smoke, not deploy.
    A sync Argo CD gave up on (its retries spent: say a manifest the API server
    rejects) fails here at once, with the server's words.
    """
    cluster = cluster_of(run.ctx)
    resource = cluster.resource(*argocd.APPLICATION)
    argocd.refresh(cluster, app)

    stopped: list[str] = []

    def look() -> wait.Observation:
        obj = cluster.get(*argocd.APPLICATION, app, argocd.NAMESPACE)
        if obj is None:
            return wait.Observation(False, f"application {app} not found")
        if stuck := argocd.unsyncable(app, obj, revision):
            return stuck
        sync, health, current = argocd.application_status(obj)
        full = argocd.synced_revision(obj)
        if full == revision and sync == "Synced":
            return wait.Observation(True, f"{app}: {sync}, {health} at {current}")
        if argocd.applied(obj, revision):  # pods not Ready yet: the smoke stage's question
            return wait.Observation(True, f"{app}: applied at {current}, {health}")
        phase, tried, message = argocd.operation_of(obj)
        if phase == "Running" and tried and tried != revision and tried not in stopped:
            # A sync of an earlier revision still waits for pods that never got Ready;
            # Argo CD starts no other sync until it ends.
            resource.patch(
                name=app,
                namespace=argocd.NAMESPACE,
                body=argocd.terminate_operation_body(),
                content_type="application/merge-patch+json",
            )
            stopped.append(tried)
            run.ctx.ui.info(f"  stopped Argo CD's sync of the earlier revision {tried[:12]}")
        differs = argocd.out_of_sync(obj)
        return wait.Observation(
            False,
            f"{app}: {sync}, {health} at {current or '?'} (want {revision[:12]})"
            + (f"; operation {phase}: {message[:160]}" if phase else "")
            + (f"; out of sync: {', '.join(differs[:5])}" if differs else ""),
        )

    return wait.until(
        f"Argo CD to sync {app} to {revision[:12]}",
        look,
        timeout=run.ctx.config.sync_timeout,
        report=run.ctx.ui.progress,
    ).seen
