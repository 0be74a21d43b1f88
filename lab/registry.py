"""The local image registry: its container, and how the kind nodes pull through it.

The nodes' containerd reads a hosts.toml per registry (`node_hosts_files`): the lab
registry itself, and a mirror path in it for each upstream (`MIRRORED_REGISTRIES`).
Rendering is pure; the container goes through `lab.engine`, the node files through
`docker exec` on the nodes kind lists (`lab.cluster.node_names`).
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import yaml

from lab import engine, wait
from lab.changes import Changes
from lab.cluster import CERTS_DIR, KIND_NETWORK, node_names
from lab.config import Config
from lab.errors import LabError

REGISTRY_INTERNAL_PORT = 5000

# The registries the nodes' containerd pulls through the lab registry first, each under
# a path prefix of its own (<lab registry>/v2/<upstream>/...), falling back to the
# upstream when the lab registry lacks an image. Istio's hub is docker.io/istio; Argo
# CD's redis comes from public.ecr.aws. An image pushed to the lab registry under its
# mirror path (`mirror_reference`) is never downloaded again: that is how an offline
# bundle, and our CI's images built from source, reach the cluster.
MIRRORED_REGISTRIES: dict[str, str] = {
    "docker.io": "https://registry-1.docker.io",
    "quay.io": "https://quay.io",
    "ghcr.io": "https://ghcr.io",
    "registry.k8s.io": "https://registry.k8s.io",
    "docker.gitea.com": "https://docker.gitea.com",
    "public.ecr.aws": "https://public.ecr.aws",
}

# -- pure renderers -------------------------------------------------------------------


def registry_hosts_toml(config: Config) -> str:
    """containerd's hosts.toml sending `localhost:<port>` pulls to the registry container."""
    return f'[host."http://{config.registry_name}:{REGISTRY_INTERNAL_PORT}"]\n'


def mirror_hosts_toml(config: Config, upstream: str) -> str:
    """containerd's hosts.toml for `upstream`: the lab registry's prefix, then upstream.

    `override_path` makes containerd use the host's path as given, so pulls of
    `<upstream>/<repo>` ask the lab registry for `<upstream>/<repo>`.
    """
    server = MIRRORED_REGISTRIES[upstream]
    mirror = f"http://{config.registry_name}:{REGISTRY_INTERNAL_PORT}/v2/{upstream}"
    return (
        f'server = "{server}"\n\n'
        f'[host."{mirror}"]\n'
        '  capabilities = ["pull", "resolve"]\n'
        "  override_path = true\n"
    )


def node_hosts_files(config: Config) -> dict[str, str]:
    """Every hosts.toml the nodes need, by the registry host it configures."""
    files = {config.registry_host: registry_hosts_toml(config)}
    for upstream in MIRRORED_REGISTRIES:
        files[upstream] = mirror_hosts_toml(config, upstream)
    return files


def split_reference(reference: str) -> tuple[str, str]:
    """An image reference as (registry host, the rest), with Docker's defaults (pure).

    `redis:7` is docker.io/library/redis:7; `istio/pilot:1.30.0` is docker.io/istio/...;
    a first component with a dot or colon, or `localhost`, is a registry host.
    """
    first, _, rest = reference.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    if not rest:
        return "docker.io", f"library/{reference}"
    return "docker.io", reference


def mirror_reference(config: Config, reference: str) -> str:
    """Where an upstream image goes in the lab registry so the nodes pull it from there.

    `quay.io/argoproj/argocd:v3.6.1` → `localhost:5001/quay.io/argoproj/argocd:v3.6.1`.
    """
    host, rest = split_reference(reference)
    if host not in MIRRORED_REGISTRIES:
        raise LabError(
            f"image {reference} is from {host}, which the lab registry does not mirror",
            hint=f"mirrored registries: {', '.join(MIRRORED_REGISTRIES)}",
        )
    return f"{config.registry_host}/{host}/{rest}"


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


# -- the registry container ---------------------------------------------------------------


@dataclass(frozen=True)
class RegistryStatus:
    exists: bool
    running: bool
    on_kind_network: bool


NO_REGISTRY = RegistryStatus(False, False, False)


def registry_status(client: Any, config: Config) -> RegistryStatus:
    container = engine.find_container(client, config.registry_name)
    if container is None:
        return NO_REGISTRY
    networks = container.attrs.get("NetworkSettings", {}).get("Networks", {}) or {}
    return RegistryStatus(True, container.status == "running", KIND_NETWORK in networks)


def ensure_registry(config: Config, changes: Changes) -> str:
    """Run the registry container; returns what was done."""
    status = changes.read(lambda: registry_status(engine.client(), config), absent=NO_REGISTRY)
    if status.running:
        return "already running"
    return changes.make(
        f"docker run {config.registry_image} as {config.registry_name} "
        f"on {config.bind_address}:{config.registry_port}",
        lambda: _start_registry(engine.client(), config, status),
        planned="planned",
    )


def _start_registry(client: Any, config: Config, status: RegistryStatus) -> str:
    if status.exists:
        with engine.doing(f"start the registry container {config.registry_name}"):
            client.containers.get(config.registry_name).start()
        wait_until_serving(config)
        return "started"
    if not engine.has_image(client, config.registry_image):
        engine.pull(client, config.registry_image)  # the registry's own words if refused
    with engine.doing(
        f"start the registry container {config.registry_name}",
        hint=f"is port {config.registry_port} free? (`invoke lab.doctor`)",
    ):
        client.containers.run(
            config.registry_image,
            name=config.registry_name,
            detach=True,
            restart_policy={"Name": "always"},
            ports={f"{REGISTRY_INTERNAL_PORT}/tcp": (config.bind_address, config.registry_port)},
            volumes={f"{config.registry_name}-data": {"bind": "/var/lib/registry", "mode": "rw"}},
            labels={engine.LAB_LABEL: config.cluster_name},
        )
    wait_until_serving(config)
    return "created"


REGISTRY_START_TIMEOUT = 60.0


def wait_until_serving(config: Config, timeout: float = REGISTRY_START_TIMEOUT) -> None:
    """Return once the registry answers its API: a push right after `docker run` would
    otherwise meet a closed port ("Get http://localhost:5001/v2/: EOF")."""
    url = f"http://{config.bind_address}:{config.registry_port}/v2/"

    def look() -> wait.Observation:
        try:
            response = httpx.get(url, timeout=2)
        except httpx.HTTPError as error:
            return wait.Observation(False, f"{url}: {type(error).__name__}")
        return wait.Observation(
            response.status_code in (200, 401), f"{url}: HTTP {response.status_code}"
        )

    wait.until(
        f"the registry at {config.registry_host} to answer",
        look,
        timeout=timeout,
        interval=0.25,
        hint=f"see `docker logs {config.registry_name}`",
    )


def connect_registry(config: Config, changes: Changes) -> str:
    status = changes.read(lambda: registry_status(engine.client(), config), absent=NO_REGISTRY)
    if status.on_kind_network:
        return "already on the kind network"
    return changes.make(
        f"docker network connect {KIND_NETWORK} {config.registry_name}",
        lambda: _join_kind_network(engine.client(), config),
        planned="planned",
    )


def _join_kind_network(client: Any, config: Config) -> str:
    with engine.doing(f"connect {config.registry_name} to the {KIND_NETWORK} network"):
        client.networks.get(KIND_NETWORK).connect(config.registry_name)
    return "joined the kind network"


def wire_nodes(config: Config, changes: Changes, *, new_nodes: bool = False) -> str:
    """Write containerd's hosts.toml files on each node: the lab registry and its mirrors.

    Idempotent; containerd reads a new hosts.toml without a restart. A plan for a
    cluster not made yet writes them on each node it will have.
    """
    wanted = node_hosts_files(config)
    read = changes.read_new if new_nodes else changes.read  # a plan: not the old nodes
    stale = read(
        lambda: _stale_hosts_files(engine.client(), config, wanted),
        absent=[(f"each node of {config.cluster_name}", host) for host in wanted],
    )
    for name, host in stale:
        directory = f"{CERTS_DIR}/{host}"
        changes.make(
            f"write {directory}/hosts.toml on {name}",
            partial(_write_hosts_file, name, directory, wanted[host]),
            planned=None,
        )
    return changes.note(f"wrote {len(stale)} hosts.toml file(s)") if stale else "already configured"


def _stale_hosts_files(
    client: Any, config: Config, wanted: dict[str, str]
) -> list[tuple[str, str]]:
    """(node, registry host) of each hosts.toml that is missing or says otherwise."""
    nodes = node_names(config)
    if not nodes:
        raise LabError(f"kind lists no nodes for cluster {config.cluster_name}")
    stale = []
    for name in nodes:
        node = engine.find_container(client, name)
        if node is None:
            raise LabError(
                f"kind lists node {name!r} of cluster {config.cluster_name}, "
                "but Docker has no such container",
                hint="see `kind get nodes` and `docker ps`; `invoke lab.up --recreate` "
                "makes the cluster again",
            )
        for host, content in wanted.items():
            with engine.doing(f"read {host}'s hosts.toml on node {name}"):
                current = node.exec_run(["cat", f"{CERTS_DIR}/{host}/hosts.toml"])
            if current.exit_code != 0 or current.output.decode() != content:
                stale.append((name, host))
    return stale


def _write_hosts_file(node: str, directory: str, content: str) -> None:
    with engine.doing(f"write {directory}/hosts.toml on node {node}"):
        container = engine.client().containers.get(node)
        container.exec_run(["mkdir", "-p", directory])
        container.put_archive(directory, _tar_one("hosts.toml", content))


def _tar_one(name: str, content: str) -> bytes:
    data = content.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
