"""Argo CD from its pinned install manifest, with lab's settings."""

from __future__ import annotations

from functools import partial
from typing import Any

from lab import argocd, k8s, wait
from lab.context import Lab


def ensure_argocd(lab: Lab) -> str:
    config = lab.config
    # The pinned manifest, downloaded once into the cache (a plan that would download it
    # lists the download and the waits, not each object).
    manifest = argocd.fetch_install_manifest(config, config.state_path / "cache", lab.changes)
    objects: list[dict[str, Any]] = [] if manifest is None else argocd.install_objects(manifest)
    crds, rest = k8s.split_crds(objects)
    apply = lab.cluster().apply
    for crd in crds:  # CRDs first, and established, before anything that uses them
        apply(crd)
    for crd in crds:
        name = crd["metadata"]["name"]
        lab.wait_for(
            f"CRD {name} to be established",
            partial(_crd_observation, lab, name),
            config.install_timeout,
        )
    for obj in k8s.apply_order(argocd.with_lab_settings(rest, config)):
        apply(obj)
    for kind, name in argocd.WORKLOADS:
        lab.wait_for(
            f"Argo CD {name}",
            partial(_workload_observation, lab, kind, argocd.NAMESPACE, name),
            config.install_timeout,
        )
    secret = lab.changes.read(
        lambda: lab.cluster().get("v1", "Secret", "argocd-initial-admin-secret", argocd.NAMESPACE),
        absent=None,
    )
    if secret is not None:
        lab.state.argocd_admin_password = argocd.decode_secret_value(secret, "password")
        lab.save()
    return lab.changes.note(f"Argo CD {config.argocd_version}")


def _crd_observation(lab: Lab, name: str) -> wait.Observation:
    crd = lab.cluster().get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
    return k8s.crd_established(crd) if crd else wait.Observation(False, f"{name} not found")


def _workload_observation(lab: Lab, kind: str, namespace: str, name: str) -> wait.Observation:
    obj = lab.cluster().get("apps/v1", kind, name, namespace)
    if obj is None:
        return wait.Observation(False, f"{kind} {namespace}/{name} does not exist yet")
    return k8s.rollout_status(obj) if kind == "Deployment" else k8s.statefulset_status(obj)
