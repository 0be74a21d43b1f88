"""Waiting until Argo CD has the applications Synced and Healthy."""

from __future__ import annotations

from functools import partial

from lab import (
    argocd,
    wait,
)
from lab.context import Lab
from lab.up import GITOPS_DIR


def wait_for_sync(lab: Lab) -> str:
    notes = []
    for app in _application_names(lab):
        seen = lab.wait_for(
            f"Argo CD application {app} to be Synced and Healthy",
            partial(_application_observation, lab, app),
            lab.config.sync_timeout,
        )
        notes.append(seen)
    return "; ".join(notes)


def _application_names(lab: Lab) -> list[str]:
    return [
        o["metadata"]["name"]
        for o in argocd.project_and_applications(lab.config, GITOPS_DIR)
        if o["kind"] == "Application"
    ]


def _application_observation(lab: Lab, name: str) -> wait.Observation:
    app = lab.cluster().get("argoproj.io/v1alpha1", "Application", name, argocd.NAMESPACE)
    if app is None:
        return wait.Observation(False, f"application {name} does not exist yet")
    sync, health, revision = argocd.application_status(app)
    return wait.Observation(
        sync == "Synced" and health == "Healthy", f"{name}: {sync}, {health} at {revision or '?'}"
    )
