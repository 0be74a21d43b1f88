"""Gitea in the cluster: the manifests that run it and the Secret it reads its admin from.

The files under lab/resources/gitea/ hold the default values (readable and appliable as
they are, see its README.md); `gitea_manifests` sets the values a user may override.
Talking to the running server is `lab.gitserver`'s.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from lab.config import Config

# Where the manifests that run Gitea in the cluster live (see its README.md).
MANIFESTS_DIR = Path(__file__).parent / "resources" / "gitea"

# The Secret that lab code creates in the Gitea namespace; the manifests refer to it by
# name and never hold a value. Keys: the admin's name and password, and Gitea's own
# SECRET_KEY and INTERNAL_TOKEN (generated once per lab, kept in .lab/state.json).
ADMIN_SECRET_NAME = "gitea-admin"
ADMIN_SECRET_KEYS = ("username", "password", "secret-key", "internal-token")

# Gitea's webhook allow-list: ArgoCD's Service is a ClusterIP in a private range; the
# host name pattern documents the intent (Gitea matches host names and resolved IPs).
WEBHOOK_ALLOWED_HOSTS = "private,loopback,*.svc.cluster.local"


def gitea_manifests(config: Config, directory: Path = MANIFESTS_DIR) -> list[dict[str, Any]]:
    """The Kubernetes objects that run Gitea, with `config`'s image, ports and URLs.

    The files under lab/resources/gitea/ hold the default values (readable and
    appliable as they are); this sets the values a user may override.
    """
    documents: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document:
                documents.append(copy.deepcopy(document))
    internal = urlsplit(config.gitea_internal_url)
    for document in documents:
        metadata = document.setdefault("metadata", {})
        if document["kind"] == "Namespace":
            metadata["name"] = config.gitea_namespace
            continue
        metadata["namespace"] = config.gitea_namespace
        if document["kind"] == "Service" and document["spec"].get("type") == "NodePort":
            for port in document["spec"]["ports"]:
                port["nodePort"] = config.gitea_node_port
        if document["kind"] == "ConfigMap" and "GITEA__server__ROOT_URL" in document["data"]:
            document["data"]["GITEA__server__ROOT_URL"] = f"{config.gitea_internal_url}/"
            document["data"]["GITEA__server__DOMAIN"] = str(internal.hostname)
        if document["kind"] == "Deployment":
            pod = document["spec"]["template"]["spec"]
            for container in (*pod.get("initContainers", ()), *pod["containers"]):
                container["image"] = config.gitea_image
    return documents


SECRET_CHECKSUM_ANNOTATION = "lab.dev/gitea-admin-secret-sha256"


def roll_on_secret_change(
    manifests: list[dict[str, Any]], secret: dict[str, Any]
) -> list[dict[str, Any]]:
    """Gitea's Deployment with a checksum of the admin Secret on its pod template (pure).

    Gitea reads the admin password once, in its init container. When `.lab/state.json`
    is lost while the cluster lives, lab writes new credentials into the Secret; the
    changed checksum rolls the pod, so the init container sets the new password and
    lab's token request is not refused with 401. Only a hash is written, never a value.
    """
    digest = hashlib.sha256(
        json.dumps(secret.get("stringData") or {}, sort_keys=True).encode()
    ).hexdigest()
    rolled = []
    for document in manifests:
        if document.get("kind") == "Deployment":
            document = copy.deepcopy(document)
            template = document["spec"]["template"].setdefault("metadata", {})
            template.setdefault("annotations", {})[SECRET_CHECKSUM_ANNOTATION] = digest
        rolled.append(document)
    return rolled


def admin_secret(
    config: Config, *, username: str, password: str, secret_key: str, internal_token: str
) -> dict[str, Any]:
    """The Secret the Gitea manifests read the admin and Gitea's own secrets from."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": ADMIN_SECRET_NAME, "namespace": config.gitea_namespace},
        "type": "Opaque",
        "stringData": dict(
            zip(ADMIN_SECRET_KEYS, (username, password, secret_key, internal_token), strict=True)
        ),
    }
