"""A real kind cluster from the node image we build, with the lab registry as the mirror
of every upstream registry: the foundation the lab runs on in this tier.

The cluster is made with lab's own code (`lab.cluster`: the kind config, the registry
container, the nodes' hosts.toml files) and lab's mirror seam (`distribution.mirror_images`),
with the tier's settings only. Its names and ports are its own, so it never meets the
lab that tests/kind/test_lab.py brings up.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import yaml

from lab import cluster, distribution, engine, proc, registry
from lab.changes import MAKE
from lab.config import Config
from tests.kind import tier

pytestmark = pytest.mark.kind

NAME = "lab-tier1"


def pinned_images(config: Config) -> list[str]:
    """One image of each upstream the lab runs, by the name its manifests use."""
    return [
        config.gitea_image,  # docker.gitea.com
        f"quay.io/argoproj/argocd:{config.argocd_version}",  # quay.io
        f"docker.io/istio/pilot:{config.istio_version}",  # the Istio hub
        "public.ecr.aws/docker/library/redis:8.10.1-alpine",  # Argo CD's redis
        "redis:7.4-bookworm",  # the demo's redis (docker.io/library)
        config.registry_image,  # docker.io/library/registry
    ]


class Tier1:
    def __init__(self, art: tier.Artifacts, config: Config, kubeconfig: Path) -> None:
        self.art, self.config, self.kubeconfig = art, config, kubeconfig

    @property
    def context(self) -> str:
        return self.config.kube_context

    def kubectl(self, *args: str, timeout: float = 120) -> str:
        return tier.kubectl(self.art, self.kubeconfig, self.context, *args, timeout=timeout)

    def apply(self, manifest: str) -> None:
        subprocess.run(
            [str(self.art.kubectl), "--kubeconfig", str(self.kubeconfig), "--context",
             self.context, "apply", "-f", "-"],
            input=manifest, text=True, check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    def wait(self, what: str, *args: str, timeout: str = "180s") -> None:
        try:
            self.kubectl("wait", *args, f"--timeout={timeout}", timeout=300)
        except AssertionError:
            print(self.kubectl("get", "pods", "-A", "-o", "wide"))
            print(self.kubectl("get", "events", "-A", "--sort-by=.lastTimestamp"))
            raise AssertionError(f"{what} did not happen within {timeout}") from None


@pytest.fixture(scope="module")
def tier1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tier1]:
    art = tier.artifacts()
    work = tmp_path_factory.mktemp("tier1")
    config = tier.config(
        art.node_image,
        cluster_name=NAME,
        registry_name=f"{NAME}-registry",
        registry_port=5011,
        ingress_http_port=18080,
        gitea_http_port=13000,
        argocd_http_port=18090,
        state_dir=str(work / ".lab"),
    )
    kubeconfig = work / "kubeconfig"
    saved = {key: os.environ.get(key) for key in ("PATH", "KUBECONFIG")}
    os.environ["PATH"] = art.path
    os.environ["KUBECONFIG"] = str(kubeconfig)
    client = engine.client()
    try:
        if cluster.cluster_exists(config):  # left by an interrupted run
            cluster.delete_cluster(config, MAKE)
        started = time.monotonic()
        registry.ensure_registry(config, MAKE)
        path = work / "kind.yaml"
        path.write_text(yaml.safe_dump(cluster.kind_config(config), sort_keys=False))
        cluster.create_cluster(config, str(path), MAKE)
        print(f"kind create cluster (our node image) took {time.monotonic() - started:.0f}s")
        registry.connect_registry(config, MAKE)
        registry.wire_nodes(config, MAKE)
        distribution.mirror_images(client, config, pinned_images(config))
        yield Tier1(art, config, kubeconfig)
    finally:
        try:
            if cluster.cluster_exists(config):
                cluster.delete_cluster(config, MAKE)
            _remove_registry(client, config)
            _remove_kind_network_if_unused(client)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _remove_kind_network_if_unused(client: docker.DockerClient) -> None:
    """kind made its network for this cluster; leave the machine as the tier found it."""
    for network in client.networks.list(names=[cluster.KIND_NETWORK]):
        network.reload()
        if network.name == cluster.KIND_NETWORK and not network.attrs.get("Containers"):
            network.remove()


def _remove_registry(client: docker.DockerClient, config: Config) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(config.registry_name).remove(force=True, v=True)
    for volume in client.volumes.list(filters={"name": f"{config.registry_name}-data"}):
        volume.remove(force=True)


def test_the_cluster_comes_up_from_our_node_image(tier1: Tier1) -> None:
    nodes = json.loads(tier1.kubectl("get", "nodes", "-o", "json"))["items"]
    [node] = nodes
    info = node["status"]["nodeInfo"]
    assert info["kubeletVersion"] == tier.VERSIONS["K8S_VERSION"]
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"
    container = docker.from_env().containers.get(f"{NAME}-control-plane")
    assert container.attrs["Config"]["Image"] == tier1.art.node_image
    # kube-system runs: CoreDNS, kube-proxy, the control plane, local-path storage.
    tier1.wait("kube-system ready", "-n", "kube-system", "--for=condition=Ready", "pods", "--all")
    tier1.wait(
        "local-path ready", "-n", "local-path-storage", "--for=condition=Ready", "pods", "--all"
    )


def test_each_pinned_upstream_image_is_pulled_through_the_lab_registry(tier1: Tier1) -> None:
    refs = pinned_images(tier1.config)
    pods = []
    for number, ref in enumerate(refs):
        pods.append(f"pull-{number}")
        tier1.apply(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": f"pull-{number}", "namespace": "default"},
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {"name": "c", "image": ref, "command": ["/bin/sh", "-c", "exit 0"]}
                        ],
                    },
                }
            )
        )
    for pod in pods:
        tier1.wait(f"{pod} completed", "--for=jsonpath={.status.phase}=Succeeded", f"pod/{pod}")
    # The registry served each one under its upstream's path prefix.
    log = docker.from_env().containers.get(tier1.config.registry_name).logs().decode()
    for ref in refs:
        host, rest = registry.split_reference(ref)
        repository = rest.rsplit(":", 1)[0]
        assert f"/v2/{host}/{repository}/manifests/" in log, (ref, log[-3000:])


def test_a_service_dns_and_a_volume_work(tier1: Tier1) -> None:
    redis = "redis:7.4-bookworm"
    tier1.apply(
        f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data, namespace: default}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 64Mi}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: redis, namespace: default}}
spec:
  selector: {{matchLabels: {{app: redis}}}}
  template:
    metadata: {{labels: {{app: redis}}}}
    spec:
      containers:
        - name: redis
          image: {redis}
          args: ["--dir", "/data", "--appendonly", "yes"]
          readinessProbe: {{exec: {{command: [redis-cli, ping]}}, periodSeconds: 2}}
          volumeMounts: [{{name: data, mountPath: /data}}]
      volumes: [{{name: data, persistentVolumeClaim: {{claimName: data}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: redis, namespace: default}}
spec:
  selector: {{app: redis}}
  ports: [{{port: 6379}}]
"""
    )
    tier1.wait("redis rollout", "--for=condition=Available", "deployment/redis")
    tier1.apply(
        f"""
apiVersion: batch/v1
kind: Job
metadata: {{name: client, namespace: default}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: client
          image: {redis}
          command: [sh, -ec]
          args:
            - |
              getent hosts redis.default.svc.cluster.local
              # kube-proxy programs a new Service's endpoints a moment after they are ready
              for _ in $(seq 30); do redis-cli -h redis.default.svc.cluster.local ping && break; sleep 1; done
              redis-cli -h redis.default.svc.cluster.local set greeting hello
              test "$(redis-cli -h redis get greeting)" = hello
"""
    )
    try:
        tier1.wait("the client job", "--for=condition=Complete", "job/client")
    finally:
        print(tier1.kubectl("logs", "job/client"))
    pvc = json.loads(tier1.kubectl("get", "pvc", "data", "-o", "json"))
    assert pvc["status"]["phase"] == "Bound"
    # The data is on the volume, which local-path provisioned on the node.
    written = tier1.kubectl("exec", "deploy/redis", "--", "ls", "/data")
    assert "appendonly" in written


def test_kind_delete_leaves_nothing(tier1: Tier1) -> None:
    client = docker.from_env()
    label = f"io.x-k8s.kind.cluster={NAME}"
    assert client.containers.list(all=True, filters={"label": label})
    cluster.delete_cluster(tier1.config, MAKE)

    assert not cluster.cluster_exists(tier1.config)
    assert client.containers.list(all=True, filters={"label": label}) == []
    assert [
        v.name for v in client.volumes.list() if NAME in v.name and "registry" not in v.name
    ] == []
    contexts = proc.run(
        (
            str(tier1.art.kubectl),
            "--kubeconfig",
            str(tier1.kubeconfig),
            "config",
            "get-contexts",
            "-o",
            "name",
        ),
        timeout=30,
    ).stdout.split()
    assert tier1.context not in contexts
