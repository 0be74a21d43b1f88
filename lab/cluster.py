"""The kind cluster and the local image registry wired into it.

Rendering the kind config is pure; the registry goes through the docker SDK; kind itself
runs through `lab.proc`.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import yaml

from lab import engine, proc
from lab.config import Config
from lab.errors import LabError

KIND_NETWORK = "kind"
REGISTRY_INTERNAL_PORT = 5000
CERTS_DIR = "/etc/containerd/certs.d"
CONFIG_HASH_LABEL = "lab.dev/config-hash"

# -- pure renderers -----------------------------------------------------------------------


def kind_config(config: Config) -> dict[str, Any]:
    """The kind cluster definition: pinned node image, host ports, registry mirror dir."""
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
                "image": config.kind_node_image,
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
        # one for localhost:<registry_port> on each node (kind's local-registry recipe).
        "containerdConfigPatches": [
            f'[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "{CERTS_DIR}"\n'
        ],
    }


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
        )
    )
    return hashlib.sha256(pinned.encode()).hexdigest()[:16]


def registry_hosts_toml(config: Config) -> str:
    """containerd's hosts.toml sending `localhost:<port>` pulls to the registry container."""
    return f'[host."http://{config.registry_name}:{REGISTRY_INTERNAL_PORT}"]\n'


def registry_hosting_configmap(config: Config) -> dict[str, Any]:
    """The KEP-1755 ConfigMap that tells tools where the cluster's local registry is."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "local-registry-hosting", "namespace": "kube-public"},
        "data": {
            "localRegistryHosting.v1": yaml.safe_dump(
                {
                    "host": config.registry_host,
                    "help": "https://kind.sigs.k8s.io/docs/user/local-registry/",
                }
            )
        },
    }


def parse_clusters(output: str) -> list[str]:
    """`kind get clusters` prints one name per line, or 'No kind clusters found.' on stderr."""
    return [line.strip() for line in output.splitlines() if line.strip() and " " not in line]


# -- kind ---------------------------------------------------------------------------------


def cluster_exists(config: Config) -> bool:
    result = proc.run(("kind", "get", "clusters"), timeout=30)
    return config.cluster_name in parse_clusters(result.stdout)


def create_cluster(config: Config, config_path: str) -> None:
    proc.run(
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
        mutates=True,
        hint="see `kind export logs`; Docker needs ≥ 8 GiB memory (run `invoke lab.doctor`)",
    )


def delete_cluster(config: Config) -> None:
    proc.run(
        ("kind", "delete", "cluster", "--name", config.cluster_name),
        timeout=config.cluster_timeout,
        mutates=True,
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


# -- the registry container ---------------------------------------------------------------


@dataclass(frozen=True)
class RegistryStatus:
    exists: bool
    running: bool
    on_kind_network: bool


def registry_status(client: docker.DockerClient, config: Config) -> RegistryStatus:
    try:
        container = client.containers.get(config.registry_name)
    except docker.errors.NotFound:
        return RegistryStatus(False, False, False)
    networks = container.attrs.get("NetworkSettings", {}).get("Networks", {}) or {}
    return RegistryStatus(True, container.status == "running", KIND_NETWORK in networks)


def ensure_registry(client: docker.DockerClient, config: Config) -> str:
    """Run the registry container; returns what was done."""
    status = registry_status(client, config)
    if status.running:
        return "already running"
    if proc.dry_run_enabled():
        proc.plan(
            f"docker run {config.registry_image} as {config.registry_name} "
            f"on {config.bind_address}:{config.registry_port}"
        )
        return "planned"
    if status.exists:
        client.containers.get(config.registry_name).start()
        return "started"
    try:
        client.containers.run(
            config.registry_image,
            name=config.registry_name,
            detach=True,
            restart_policy={"Name": "always"},
            ports={f"{REGISTRY_INTERNAL_PORT}/tcp": (config.bind_address, config.registry_port)},
            volumes={f"{config.registry_name}-data": {"bind": "/var/lib/registry", "mode": "rw"}},
            labels={engine.LAB_LABEL: config.cluster_name},
        )
    except docker.errors.ImageNotFound as error:
        raise LabError(
            f"cannot pull {config.registry_image}",
            hint="check the machine reaches the container registry (proxy? offline?)",
            output_tail=str(error),
        ) from error
    except docker.errors.APIError as error:
        raise LabError(
            f"cannot start the registry container {config.registry_name}",
            hint=f"is port {config.registry_port} free? (`invoke lab.doctor`)",
            output_tail=str(error),
        ) from error
    return "created"


def connect_registry(client: docker.DockerClient, config: Config) -> str:
    if registry_status(client, config).on_kind_network:
        return "already on the kind network"
    if proc.dry_run_enabled():
        proc.plan(f"docker network connect {KIND_NETWORK} {config.registry_name}")
        return "planned"
    client.networks.get(KIND_NETWORK).connect(config.registry_name)
    return "joined the kind network"


def wire_nodes(client: docker.DockerClient, config: Config) -> str:
    """Write containerd's hosts.toml for the registry on each node (idempotent)."""
    wanted = registry_hosts_toml(config)
    directory = f"{CERTS_DIR}/{config.registry_host}"
    changed = 0
    for name in node_names(config):
        node = client.containers.get(name)
        current = node.exec_run(["cat", f"{directory}/hosts.toml"])
        if current.exit_code == 0 and current.output.decode() == wanted:
            continue
        if proc.dry_run_enabled():
            proc.plan(f"write {directory}/hosts.toml on node {name}")
            changed += 1
            continue
        node.exec_run(["mkdir", "-p", directory])
        node.put_archive(directory, _tar_one("hosts.toml", wanted))
        changed += 1
    return f"configured {changed} node(s)" if changed else "already configured"


def _tar_one(name: str, content: str) -> bytes:
    data = content.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
