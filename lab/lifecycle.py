"""Bringing the lab up (`lab.down` is in `lab.teardown`).

`UP` is the whole bring-up, in order: read it as the table of contents. Every step
converges — it inspects, acts on the difference, and verifies — so re-running `lab.up`
after a failure or Ctrl-C resumes, and re-running it on an up lab changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from lab import diagnostics, steps, your_cluster
from lab.cli import Context
from lab.context import Lab, UpOptions
from lab.errors import LabError
from lab.state import State
from lab.steps import Step
from lab.up.applications import ensure_applications
from lab.up.argocd import ensure_argocd
from lab.up.cluster import ensure_cluster
from lab.up.gitea import ensure_gitea
from lab.up.images import ensure_images
from lab.up.istio import ensure_istio
from lab.up.preflight import preflight
from lab.up.registry import ensure_registry, wire_registry
from lab.up.secrets import ensure_app_secrets
from lab.up.seed import seed_gitops
from lab.up.sync import wait_for_sync
from lab.up.urls import show_urls

# -- the steps ----------------------------------------------------------------------------


def remember_choices(lab: Lab) -> None:
    """What later tasks (the pipeline) must know about how this lab was brought up."""
    registry = lab.options.registry or lab.config.registry_host
    if lab.state.registry != registry or lab.state.context != lab.context:
        lab.state.registry = registry
        lab.state.context = lab.context
        lab.save()


UP: tuple[Step[Lab], ...] = (
    Step("Checking this machine", preflight, diagnose=False),  # lab.doctor's blocking checks
    Step("Starting the local registry", ensure_registry),  # registry:3 on 127.0.0.1:5001
    Step("Creating the kind cluster", ensure_cluster),  # pinned node image, port mappings
    Step("Wiring the registry into the cluster", wire_registry),  # kind network, certs.d
    Step("Installing Istio", ensure_istio),  # istioctl install with our IstioOperator
    Step("Installing Argo CD", ensure_argocd),  # pinned manifest, server-side apply
    Step("Running the Git server", ensure_gitea),  # Gitea in the cluster, admin from a Secret
    Step("Seeding the GitOps repository", seed_gitops),  # gitops/ pushed, webhook, repo Secret
    Step("Creating the app secrets", ensure_app_secrets),  # JWT secret, admin password: not git
    Step("Building the app images", ensure_images),  # current tree as :main, in the registry
    Step("Creating the Argo CD applications", ensure_applications),  # AppProject, dev, prod
    Step("Waiting for the applications to sync", wait_for_sync),  # Synced and Healthy
    Step("Showing where everything is", show_urls),  # URLs; credentials only via lab.creds
)


def up(ctx: Context, options: UpOptions) -> None:
    lab = Lab(ctx, options, State.load(ctx.config.state_path))
    remember_choices(lab)
    lab.changes.start(ctx.ui)

    def diagnose(error: LabError) -> Path:
        return diagnostics.collect(lab.config, error, context=lab.context)

    try:
        outcomes = steps.run(UP, lab, ctx.ui, diagnose=lab.changes.diagnostics(diagnose))
    finally:
        if lab.byo and lab.state.byo is not None:  # lab.down removes what appeared until now
            lab.state.byo = {**lab.state.byo, "last_up": your_cluster.now()}
            lab.save()
    steps.raise_first_failure(outcomes)
    lab.changes.finish(ctx.ui)
