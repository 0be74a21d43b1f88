"""Argo CD's AppProject and the dev and prod Applications."""

from __future__ import annotations

from lab import argocd
from lab.context import Lab
from lab.up import GITOPS_DIR


def ensure_applications(lab: Lab) -> str:
    objects = argocd.project_and_applications(lab.config, GITOPS_DIR)
    for obj in objects:
        lab.cluster().apply(obj)
    return ", ".join(o["metadata"]["name"] for o in objects)
