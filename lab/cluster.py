"""The kind cluster and the local image registry wired into it.

Rendering the kind config is pure; kind itself runs through `lab.proc`. The registry
the nodes pull from is `lab.registry`'s.
"""

from __future__ import annotations

import hashlib
from typing import Any

import yaml

from lab import proc
from lab.changes import Changes
from lab.config import Config
from lab.errors import LabError

KIND_NETWORK = "kind"
CERTS_DIR = "/etc/containerd/certs.d"
CONFIG_HASH_LABEL = "lab.dev/config-hash"

# -- pure renderers -----------------------------------------------------------------------


def kind_config(config: Config, node_image: str | None = None) -> dict[str, Any]:
    """The kind cluster definition: pinned node image, host ports, registry mirror dir.

    `node_image` stands in for the pinned reference when that is the same image under
    another name: its ID, after a bundle's `docker load` dropped the registry digest.
    """
    mappings = [
        (config.ingress_node_port, config.ingress_http_port),
        (config.gitea_node_port, config.gitea_http_port),
        (config.argocd_node_port, config.argocd_http_port),
    ]
    return {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": config.cluster_name,
        "nodes": [
            {
                "role": "control-plane",
                "image": node_image or config.kind_node_image,
                "labels": {CONFIG_HASH_LABEL: settings_hash(config)},
                "extraPortMappings": [
                    {
                        "containerPort": node_port,
                        "hostPort": host_port,
                        "listenAddress": config.bind_address,
                        "protocol": "TCP",
                    }
                    for node_port, host_port in mappings
                ],
            }
        ],
        # containerd reads per-registry hosts.toml files from this directory; we write
        # one for localhost:<registry_port> on each node (kind's local-registry recipe),
        # and one per mirrored upstream.
        "containerdConfigPatches": [
            f'[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "{CERTS_DIR}"\n',
            *([config.kind_containerd_patch] if config.kind_containerd_patch.strip() else []),
        ],
        **(
            {"kubeadmConfigPatches": kubeadm_patches(config.kind_kubeadm_patch)}
            if config.kind_kubeadm_patch.strip()
            else {}
        ),
    }


def kubeadm_patches(text: str) -> list[str]:
    """The `---`-separated YAML documents of a kubeadm patch setting, each checked (pure)."""
    patches = []
    for document in text.split("\n---"):
        document = document.strip().removeprefix("---").strip()
        if not document:
            continue
        try:
            parsed = yaml.safe_load(document)
        except yaml.YAMLError as error:
            raise LabError(
                "setting 'kind_kubeadm_patch' is not valid YAML",
                hint="give kubeadm configuration documents separated by '---'",
                output_tail=str(error),
            ) from error
        if not isinstance(parsed, dict) or "kind" not in parsed:
            raise LabError(
                "setting 'kind_kubeadm_patch' holds a document without a `kind`",
                hint="each document is a kubeadm or kubelet configuration, e.g. "
                "`kind: KubeletConfiguration`",
            )
        patches.append(document + "\n")
    return patches


def settings_hash(config: Config) -> str:
    """A short fingerprint of the settings a cluster cannot change after creation."""
    pinned = "|".join(
        str(value)
        for value in (
            config.kind_node_image,
            config.bind_address,
            config.ingress_node_port,
            config.ingress_http_port,
            config.gitea_node_port,
            config.gitea_http_port,
            config.argocd_node_port,
            config.argocd_http_port,
            config.kind_containerd_patch,
            config.kind_kubeadm_patch,
        )
    )
    return hashlib.sha256(pinned.encode()).hexdigest()[:16]


def parse_clusters(output: str) -> list[str]:
    """`kind get clusters` prints one name per line, or 'No kind clusters found.' on stderr."""
    return [line.strip() for line in output.splitlines() if line.strip() and " " not in line]


# -- kind ---------------------------------------------------------------------------------


def cluster_exists(config: Config) -> bool:
    result = proc.run(("kind", "get", "clusters"), timeout=30)
    return config.cluster_name in parse_clusters(result.stdout)


def create_cluster(config: Config, config_path: str, changes: Changes) -> None:
    changes.run(
        (
            "kind",
            "create",
            "cluster",
            "--name",
            config.cluster_name,
            "--config",
            config_path,
            "--wait",
            "120s",
        ),
        timeout=config.cluster_timeout,
        hint="see `kind export logs`; Docker needs ≥ 8 GiB memory (run `invoke lab.doctor`)",
    )


def delete_cluster(config: Config, changes: Changes) -> None:
    changes.run(
        ("kind", "delete", "cluster", "--name", config.cluster_name),
        timeout=config.cluster_timeout,
    )


def node_names(config: Config) -> list[str]:
    result = proc.run(("kind", "get", "nodes", "--name", config.cluster_name), timeout=30)
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def export_logs(config: Config, directory: str) -> None:
    proc.run(
        ("kind", "export", "logs", directory, "--name", config.cluster_name),
        timeout=180,
        check=False,
    )
