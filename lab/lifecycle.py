"""Bringing the lab up (`lab.down` is in `lab.teardown`).

`UP` is the whole bring-up, in order: read it as the table of contents. Every step
converges — it inspects, acts on the difference, and verifies — so re-running `lab.up`
after a failure or Ctrl-C resumes, and re-running it on an up lab changes nothing.
"""

from __future__ import annotations

import time

from lab import diagnostics, proc, teardown
from lab.cli import Context
from lab.context import Lab, Step, UpOptions
from lab.errors import LabError
from lab.state import State
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
    if lab.state.get("registry") != registry or lab.state.get("context") != lab.context:
        lab.state["registry"] = registry
        lab.state["context"] = lab.context
        lab.state.save()


UP: tuple[Step, ...] = (
    ("Checking this machine", preflight),  # lab.doctor's blocking checks
    ("Starting the local registry", ensure_registry),  # registry:3 on 127.0.0.1:5001
    ("Creating the kind cluster", ensure_cluster),  # pinned node image, port mappings
    ("Wiring the registry into the cluster", wire_registry),  # kind network, certs.d, ConfigMap
    ("Installing Istio", ensure_istio),  # istioctl install with our IstioOperator
    ("Installing Argo CD", ensure_argocd),  # pinned manifest, server-side apply
    ("Running the Git server", ensure_gitea),  # Gitea in the cluster, admin from a Secret
    ("Seeding the GitOps repository", seed_gitops),  # gitops/ pushed, webhook, repo Secret
    ("Creating the app secrets", ensure_app_secrets),  # JWT secret, admin password: never in git
    ("Building the app images", ensure_images),  # current tree as :main, pushed to the registry
    ("Creating the Argo CD applications", ensure_applications),  # AppProject, dev and prod
    ("Waiting for the applications to sync", wait_for_sync),  # Synced and Healthy
    ("Showing where everything is", show_urls),  # URLs; credentials only via lab.creds
)


def up(ctx: Context, options: UpOptions) -> None:
    proc.set_dry_run(options.dry_run)
    lab = Lab(ctx, options, State.load(ctx.config.state_path))
    if not options.dry_run:
        remember_choices(lab)
    if options.dry_run:
        ctx.ui.info("Dry run: nothing is changed. The plan:")
    try:
        run_steps(lab, UP)
    finally:
        if lab.byo and "byo" in lab.state:  # lab.down removes what appeared until now
            lab.state["byo"] = {**lab.state["byo"], "last_up": teardown.now()}
            lab.state.save()
    if options.dry_run:
        for action in proc.planned_commands():
            ctx.ui.info(f"  would: {action}")


def run_steps(lab: Lab, steps: tuple[Step, ...]) -> None:
    """Each step: a start line, then ✓ or ✗ with its duration and what it did."""
    ui = lab.ctx.ui
    for title, run in steps:
        ui.step_started(title)
        started = time.monotonic()
        try:
            note = run(lab)
        except LabError as error:
            ui.step_finished(title, time.monotonic() - started, ok=False)
            error.add_context(title.lower())
            if not proc.dry_run_enabled() and title != "Checking this machine":
                bundle = diagnostics.collect(lab.config, error, context=lab.context)
                error.hint = f"{error.hint or 'see the bundle'}\n  diagnostics: {bundle}"
            raise
        except BaseException:
            ui.step_finished(title, time.monotonic() - started, ok=False)
            raise
        ui.step_finished(title, time.monotonic() - started, ok=True, note=note)
