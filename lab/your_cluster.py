"""Removing the lab from a cluster the user brought (`lab.up --context`), leaving that
cluster as lab found it.

A cluster the user brought is theirs: lab removes only what it added. Before installing
anything, `lab.up` records what the cluster already has (`baseline`); `lab.down` then
removes (`uninstall`)

- the lab's namespaces (Istio's, Argo CD's, Gitea's and the two demo environments)
  that were not there before, with everything in them;
- the cluster-scoped objects Istio's and Argo CD's installs made: those of the kinds
  below that are not in the baseline and were created while a `lab.up` ran;
- the ConfigMaps istiod writes into every namespace (`istio-ca-root-cert`, `istio-ca-crl`);
- the volumes of the lab's claims (local-path deletes them; lab waits).

The user's own objects are never candidates: a namespace must be one of the lab's, and
a cluster-scoped object must be younger than the baseline and no younger than the last
`lab.up` (plus a minute, for what controllers create as they start).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from lab import argocd, k8s, mesh, wait
from lab.config import Config
from lab.errors import LabError

# Cluster-scoped kinds an install may add: (apiVersion, kind), in deletion order
# (webhooks first, so nothing is admitted against a service that is going away).
CLUSTER_KINDS = (
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
)
# What istiod writes into every namespace: its root certificate and its revocation list.
CA_CONFIGMAPS = ("istio-ca-root-cert", "istio-ca-crl")
SETTLE = timedelta(minutes=1)


def lab_namespaces(config: Config) -> tuple[str, ...]:
    return (mesh.ISTIO_NAMESPACE, argocd.NAMESPACE, config.gitea_namespace, "demo-dev", "demo-prod")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def baseline(target: k8s.Cluster) -> dict[str, Any]:
    """What the cluster has before the lab: namespaces, cluster-scoped objects, and the
    namespaces that already hold istiod's ConfigMap (another Istio may be there)."""
    namespaces = [_name(ns) for ns in target.list_objects("v1", "Namespace")]
    return {
        "taken": now(),
        "namespaces": namespaces,
        "objects": {
            kind: [_name(obj) for obj in target.list_objects(api, kind)]
            for api, kind in CLUSTER_KINDS
        },
        "ca_configmaps": [
            f"{ns}/{name}"
            for ns in namespaces
            for name in CA_CONFIGMAPS
            if target.get("v1", "ConfigMap", name, ns)
        ],
    }


def uninstall(
    target: k8s.Cluster,
    config: Config,
    found: dict[str, Any],
    last_up: str,
    progress: Callable[[str], None],
) -> list[str]:
    """Remove what the lab added since `found` (see the module docstring); what went."""
    removed: list[str] = []

    def added(obj: dict[str, Any], known: list[str]) -> bool:
        return added_by_lab(obj, known, found["taken"], last_up)

    # Argo CD's finalizers would wait for a controller that is about to go: drop them.
    if argocd.NAMESPACE not in found["namespaces"]:
        for api, kind in (
            ("argoproj.io/v1alpha1", "Application"),
            ("argoproj.io/v1alpha1", "AppProject"),
        ):
            with contextlib.suppress(LabError):
                for obj in target.list_objects(api, kind, argocd.NAMESPACE):
                    target.resource(api, kind).patch(
                        name=_name(obj),
                        namespace=argocd.NAMESPACE,
                        body={"metadata": {"finalizers": None}},
                        content_type="application/merge-patch+json",
                    )
                    target.delete(api, kind, _name(obj), argocd.NAMESPACE)
                    removed.append(f"{kind}/{_name(obj)}")
    for api, kind in CLUSTER_KINDS[:2]:
        removed += _delete_added(target, api, kind, found, added)
    mine = [ns for ns in lab_namespaces(config) if ns not in found["namespaces"]]
    for ns in mine:
        if target.delete("v1", "Namespace", ns):
            removed.append(f"namespace {ns}")
    wait.until(
        f"the lab's namespaces to go ({', '.join(mine)})",
        lambda: _gone(target, "v1", "Namespace", mine),
        timeout=config.install_timeout,
        report=progress,
    )
    for api, kind in CLUSTER_KINDS[2:]:
        removed += _delete_added(target, api, kind, found, added)
    for ns in [_name(n) for n in target.list_objects("v1", "Namespace")]:
        for name in CA_CONFIGMAPS:
            if f"{ns}/{name}" in found["ca_configmaps"]:
                continue
            if target.delete("v1", "ConfigMap", name, ns):
                removed.append(f"ConfigMap {ns}/{name}")
    wait.until(
        "the lab's volumes to be deleted",
        lambda: _no_volumes_of(target, mine),
        timeout=config.install_timeout,
        report=progress,
    )
    return removed


def added_by_lab(obj: dict[str, Any], known: list[str], taken: str, last_up: str) -> bool:
    """Whether a cluster-scoped object is the lab's: not in the baseline, and created
    between the baseline and the last `lab.up` (plus `SETTLE`)."""
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    if _name(obj) in known or created is None:
        return False
    return _time(taken) <= _time(created) <= _time(last_up) + SETTLE


def _delete_added(
    target: k8s.Cluster,
    api: str,
    kind: str,
    found: dict[str, Any],
    added: Callable[[dict[str, Any], list[str]], bool],
) -> list[str]:
    known = found["objects"].get(kind, [])
    gone = []
    for obj in target.list_objects(api, kind):
        if added(obj, known) and target.delete(api, kind, _name(obj)):
            gone.append(f"{kind}/{_name(obj)}")
    return gone


def _gone(target: k8s.Cluster, api: str, kind: str, names: list[str]) -> wait.Observation:
    left = [name for name in names if target.get(api, kind, name) is not None]
    return wait.Observation(not left, f"still there: {', '.join(left)}" if left else "gone")


def _no_volumes_of(target: k8s.Cluster, namespaces: list[str]) -> wait.Observation:
    left = [
        _name(pv)
        for pv in target.list_objects("v1", "PersistentVolume")
        if ((pv.get("spec") or {}).get("claimRef") or {}).get("namespace") in namespaces
    ]
    return wait.Observation(not left, f"volumes left: {', '.join(left)}" if left else "none left")


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _time(stamp: Any) -> datetime:
    """A Kubernetes timestamp (a string, or a datetime from the client) in UTC."""
    if isinstance(stamp, datetime):
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
