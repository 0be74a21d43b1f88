"""Argo CD: the pinned install manifest, applied server-side; its UI; the Applications."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml

from lab.changes import Changes
from lab.config import Config
from lab.errors import LabError
from lab.wait import Observation

if TYPE_CHECKING:
    from lab.k8s import Cluster

NAMESPACE = "argocd"
WORKLOADS = (
    ("Deployment", "argocd-server"),
    ("Deployment", "argocd-repo-server"),
    ("Deployment", "argocd-redis"),
    ("StatefulSet", "argocd-application-controller"),
)


def install_url(config: Config) -> str:
    return (
        "https://raw.githubusercontent.com/argoproj/argo-cd/"
        f"{config.argocd_version}/manifests/install.yaml"
    )


def install_manifest(config: Config, cache_dir: Path) -> str:
    """The pinned install.yaml, downloaded once into the lab's cache."""
    path = _manifest_path(config, cache_dir)
    cached = _cached(path)
    return cached if cached is not None else _download(install_url(config), path)


def fetch_install_manifest(config: Config, cache_dir: Path, changes: Changes) -> str | None:
    """`install_manifest` through `changes`: None from a plan that would download it."""
    path = _manifest_path(config, cache_dir)
    cached = _cached(path)
    if cached is not None:
        return cached
    url = install_url(config)
    return changes.make(f"download {url} into {path}", lambda: _download(url, path), planned=None)


def _manifest_path(config: Config, cache_dir: Path) -> Path:
    return cache_dir / f"argocd-{config.argocd_version}-install.yaml"


def _cached(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8") if path.is_file() else None
    except OSError as error:
        raise LabError(f"cannot read {path}: {error.strerror}", hint=f"remove {path}") from error


def _download(url: str, path: Path) -> str:
    try:
        response = httpx.get(url, timeout=60, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as error:
        raise LabError(
            f"cannot download the Argo CD manifest from {url}",
            hint="check the internet connection (proxy?); the file is cached after one success",
            output_tail=str(error),
        ) from error
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(response.text, encoding="utf-8")
    return response.text


def install_objects(manifest: str) -> list[dict[str, Any]]:
    """The manifest's objects, namespaced into `argocd` where the manifest leaves it open.

    Dex is left out: it serves single sign-on, which the lab does not use, and without it
    there is one image less to fetch and one server less holding cluster credentials.
    """
    objects = []
    for doc in yaml.safe_load_all(manifest):
        if not isinstance(doc, dict) or not doc.get("kind"):
            continue
        if _is_dex(doc):
            continue
        if doc["kind"] not in _CLUSTER_SCOPED:
            doc.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
        objects.append(doc)
    return objects


def _is_dex(doc: dict[str, Any]) -> bool:
    metadata = doc.get("metadata") or {}
    labels = metadata.get("labels") or {}
    return bool(
        str(metadata.get("name", "")).startswith("argocd-dex-server")
        or labels.get("app.kubernetes.io/name") == "argocd-dex-server"
    )


def with_lab_settings(objects: list[dict[str, Any]], config: Config) -> list[dict[str, Any]]:
    """The install's objects with lab's additions, one object per name (pure).

    Lab's `data` is merged *into* the install's own ConfigMaps (argocd-cmd-params-cm
    arrives empty): applying the install's empty copy after lab's under the same field
    manager would make server-side apply remove `server.insecure` again, and the UI and
    Gitea's webhook would then meet a self-signed HTTPS redirect.
    """
    extras = {(o["kind"], o["metadata"]["name"]): o for o in lab_objects(config)}
    merged = []
    for obj in objects:
        key = (obj["kind"], obj["metadata"]["name"])
        extra = extras.pop(key, None)
        if extra is not None and obj["kind"] == "ConfigMap":
            obj = {**obj, "data": {**(obj.get("data") or {}), **(extra.get("data") or {})}}
        elif extra is not None:
            obj = extra
        merged.append(obj)
    return [*extras.values(), *merged]


_CLUSTER_SCOPED = frozenset(
    {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Namespace"}
)


def lab_objects(config: Config) -> list[dict[str, Any]]:
    """What lab adds to the stock install: the namespace, local HTTP, a NodePort for the UI."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "argocd-cmd-params-cm",
                "namespace": NAMESPACE,
                "labels": {
                    "app.kubernetes.io/name": "argocd-cmd-params-cm",
                    "app.kubernetes.io/part-of": "argocd",
                },
            },
            # TLS would need a certificate the browser trusts; the UI is on 127.0.0.1 only.
            "data": {"server.insecure": "true"},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "argocd-server-nodeport", "namespace": NAMESPACE},
            "spec": {
                "type": "NodePort",
                "selector": {"app.kubernetes.io/name": "argocd-server"},
                "ports": [
                    {
                        "name": "http",
                        "port": 80,
                        "targetPort": 8080,
                        "nodePort": config.argocd_node_port,
                    }
                ],
            },
        },
    ]


def repository_secret(config: Config, username: str, password: str) -> dict[str, Any]:
    """Argo CD's declarative repository for the lab's GitOps repository."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "lab-gitops-repo",
            "namespace": NAMESPACE,
            "labels": {"argocd.argoproj.io/secret-type": "repository"},
        },
        "type": "Opaque",
        "stringData": {
            "type": "git",
            "url": config.gitops_repo_url,
            "username": username,
            "password": password,
        },
    }


def project_and_applications(config: Config, gitops_dir: Path) -> list[dict[str, Any]]:
    """gitops/argocd/*.yaml with every repoURL set to the lab's git server."""
    directory = gitops_dir / "argocd"
    files = sorted(p for p in directory.glob("*.yaml") if p.name != "kustomization.yaml")
    if not files:
        raise LabError(f"no Argo CD objects in {directory}", hint="restore gitops/argocd/")
    objects: list[dict[str, Any]] = []
    for path in files:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") in ("AppProject", "Application"):
                _set_repo_url(doc, config.gitops_repo_url)
                objects.append(doc)
    # Projects first: an Application applied before its AppProject exists is reported
    # InvalidSpecError by Argo CD until the next reconcile.
    return sorted(objects, key=lambda doc: doc["kind"] != "AppProject")


def _set_repo_url(doc: dict[str, Any], url: str) -> None:
    spec = doc.get("spec", {})
    if doc["kind"] == "AppProject":
        spec["sourceRepos"] = [url]
    elif "source" in spec:
        spec["source"]["repoURL"] = url


def refresh_annotation() -> dict[str, Any]:
    """The patch that asks Argo CD to refresh an Application now instead of polling."""
    return {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}}


def decode_secret_value(secret: dict[str, Any], key: str) -> str:
    data = secret.get("data") or {}
    if key not in data:
        raise LabError(f"secret has no key {key}")
    return base64.b64decode(data[key]).decode()


def application_status(app: dict[str, Any]) -> tuple[str, str, str]:
    """(sync status, health, revision) of an Application."""
    status = app.get("status") or {}
    sync = status.get("sync") or {}
    health = status.get("health") or {}
    return (
        str(sync.get("status", "Unknown")),
        str(health.get("status", "Unknown")),
        str(sync.get("revision", ""))[:12],
    )


APPLICATION = ("argoproj.io/v1alpha1", "Application")


def refresh(cluster: Cluster, app: str) -> None:
    """Ask Argo CD to look at `app`'s repository now, not at its next poll (~3 min)."""
    cluster.resource(*APPLICATION).patch(
        name=app,
        namespace=NAMESPACE,
        body=refresh_annotation(),
        content_type="application/merge-patch+json",
    )


def synced_revision(app: dict[str, Any]) -> str:
    """The full revision Argo CD last synced `app` to ("" before the first sync)."""
    return str(((app.get("status") or {}).get("sync") or {}).get("revision", ""))


def unsyncable(name: str, app: dict[str, Any], revision: str) -> Observation | None:
    """What a wait for `revision` sees when Argo CD gave up on that sync (failed, with
    the server's words); None while it may still get there."""
    failure = sync_failure(app, revision)
    if failure:
        return Observation(False, f"Argo CD could not sync {name}: {failure}", failed=True)
    return None


def sync_failure(app: dict[str, Any], revision: str) -> str | None:
    """Why syncing `app` to `revision` failed for good, or None.

    For good: Argo CD's retries are spent (the operation Failed), or the API server
    refused an object as invalid. Argo CD retries that too, each retry waiting again
    for every other resource to be healthy, but no retry can make an invalid object
    valid. The API server's words are in the operation's message and in each resource
    that failed to apply; both are kept.
    """
    operation = (app.get("status") or {}).get("operationState") or {}
    result = operation.get("syncResult") or {}
    if operation.get("phase") not in ("Failed", "Error") and not _refused_as_invalid(operation):
        return None
    tried = str(
        result.get("revision")
        or (operation.get("operation") or {}).get("sync", {}).get("revision", "")
    )
    if tried and tried != revision:
        return None  # an older attempt; ours has not finished yet
    reasons = [str(operation.get("message", "")).strip()]
    for resource in result.get("resources") or []:
        if resource.get("status") == "SyncFailed" and resource.get("message"):
            line = f"{resource.get('kind')}/{resource.get('name')}: {resource['message']}"
            if line not in reasons[0]:
                reasons.append(line)
    return "; ".join(r for r in reasons if r) or f"sync {operation.get('phase')}"


def _refused_as_invalid(operation: dict[str, Any]) -> bool:
    """Whether the API server answered "<Kind> "<name>" is invalid" (HTTP 422) for an
    object of this operation: a validation error, the same at every retry."""
    texts = [str(operation.get("message", ""))] + [
        str(r.get("message", ""))
        for r in (operation.get("syncResult") or {}).get("resources") or []
        if r.get("status") == "SyncFailed"
    ]
    return any(re.search(r'"[^"]+" is invalid: ', text) for text in texts)


def operation_of(app: dict[str, Any]) -> tuple[str, str, str]:
    """(phase, revision, message) of the Application's current or last sync operation."""
    operation = (app.get("status") or {}).get("operationState") or {}
    result = operation.get("syncResult") or {}
    revision = str(
        result.get("revision")
        or ((operation.get("operation") or {}).get("sync") or {}).get("revision", "")
    )
    return str(operation.get("phase", "")), revision, str(operation.get("message", ""))


def applied(app: dict[str, Any], revision: str) -> bool:
    """Whether Argo CD has applied every resource of `revision` (its sync operation may
    still run: Argo CD waits for the resources to be healthy before it ends)."""
    phase, tried, _ = operation_of(app)
    operation = (app.get("status") or {}).get("operationState") or {}
    resources = (operation.get("syncResult") or {}).get("resources") or []
    return (
        phase in ("Running", "Succeeded")
        and tried == revision
        and bool(resources)
        and all(r.get("status") == "Synced" for r in resources)
    )


def out_of_sync(app: dict[str, Any]) -> list[str]:
    """The resources Argo CD compares as different from git (kind/name)."""
    return [
        f"{r.get('kind')}/{r.get('name')}"
        for r in (app.get("status") or {}).get("resources") or []
        if r.get("status") == "OutOfSync"
    ]


def terminate_operation_body() -> dict[str, Any]:
    """The merge patch that asks Argo CD's controller to stop the running sync, as
    `argocd app terminate-op` does."""
    return {"status": {"operationState": {"phase": "Terminating"}}}
