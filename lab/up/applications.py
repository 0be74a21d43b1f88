"""Argo CD's AppProject and the dev and prod Applications."""

from __future__ import annotations

from lab import (
    argocd,
    proc,
)
from lab.context import Lab, plan_apply
from lab.up import GITOPS_DIR


def ensure_applications(lab: Lab) -> str:
    objects = argocd.project_and_applications(lab.config, GITOPS_DIR)
    apply = lab.cluster().apply if not proc.dry_run_enabled() else plan_apply
    for obj in objects:
        apply(obj)
    return ", ".join(o["metadata"]["name"] for o in objects)
