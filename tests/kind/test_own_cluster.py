"""Bring your own cluster: `lab.up --context kind-<name> --registry <host:port>` on a kind
cluster and a registry the user made, then `lab.down` leaves that cluster as it found it.

Runs after tests/kind/test_lab.py has taken its lab down (file order), so one cluster
runs at a time on our two cores. The user's homework (their registry, their cluster, the
nodes' containerd pointed at the registry and its mirrors) is done here with kind,
docker and lab's own helpers, as a user would with kind's local-registry recipe.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path

import docker
import pytest
import yaml

from lab import cluster, engine, registry
from lab.changes import MAKE
from tests.kind import tier
from tests.kind.conftest import Lab, prepare

pytestmark = pytest.mark.kind

NAME = "byo"  # the user's kind cluster: context kind-byo
REGISTRY = ("byo-registry", 5002)  # the user's registry: localhost:5002
CLUSTER_KINDS = (
    "namespaces",
    "customresourcedefinitions",
    "clusterroles",
    "clusterrolebindings",
    "validatingwebhookconfigurations",
    "mutatingwebhookconfigurations",
    "persistentvolumes",
    "storageclasses",
    "priorityclasses",
)
NAMESPACED_KINDS = (
    "configmaps",
    "secrets",
    "serviceaccounts",
    "roles",
    "rolebindings",
    "services",
    "deployments",
    "daemonsets",
)


def snapshot(lab: Lab, context: str) -> set[str]:
    """The names of everything the user could notice lab left behind."""

    def names(*args: str) -> set[str]:
        out = tier.kubectl(lab.art, lab.kubeconfig, context, "get", *args, "-o", "json")
        return {
            f"{item['kind']}/{item['metadata'].get('namespace', '')}/{item['metadata']['name']}"
            for item in json.loads(out)["items"]
        }

    found = names(",".join(CLUSTER_KINDS))
    return found | names(",".join(NAMESPACED_KINDS), "--all-namespaces")


@pytest.fixture(scope="module")
def own(tier_lab: Lab):
    """The user's registry and kind cluster, wired as kind's recipe says; lab's settings
    otherwise the tier's (its own cluster would be kind-lab: not this one)."""
    art = tier_lab.art
    work = tier_lab.work / "own"
    users = tier.config(
        art.node_image,
        istio_data_plane="none",
        state_dir=str(work / ".lab"),
        cluster_name=NAME,
        registry_name=REGISTRY[0],
        registry_port=REGISTRY[1],
    )
    env = {**tier_lab.env, "LAB_STATE_DIR": str(work / ".lab")}
    config = tier.config(art.node_image, istio_data_plane="none", state_dir=str(work / ".lab"))
    lab = Lab(art, config, env, work)
    client = engine.client()
    kind_config = work / "kind.yaml"
    work.mkdir(parents=True, exist_ok=True)
    rendered = cluster.kind_config(users)
    node = rendered["nodes"][0]
    node.pop("extraPortMappings")  # a user's cluster: no host ports for the lab
    node.pop("labels")
    kind_config.write_text(yaml.safe_dump(rendered))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", art.path)  # kind (through the tier's docker adapter)
        patch.setenv("KUBECONFIG", str(lab.kubeconfig))
        try:
            prepare(users, art)  # the user's registry, holding the upstream images' mirrors
            subprocess.run(
                [str(art.kind), "create", "cluster", "--name", NAME, "--config", str(kind_config),
                 "--kubeconfig", str(lab.kubeconfig), "--wait", "120s"],
                env=env, check=True, timeout=600,
            )  # fmt: skip
            registry.connect_registry(users, MAKE)
            registry.wire_nodes(users, MAKE)
            yield lab
        finally:
            subprocess.run(
                [str(art.kind), "delete", "cluster", "--name", NAME,
                 "--kubeconfig", str(lab.kubeconfig)],
                env=env, check=False, timeout=300,
            )  # fmt: skip
            with contextlib.suppress(docker.errors.NotFound):
                client.containers.get(REGISTRY[0]).remove(force=True, v=True)
            with contextlib.suppress(docker.errors.NotFound):
                client.volumes.get(f"{REGISTRY[0]}-data").remove(force=True)


def test_lab_up_installs_into_your_cluster_and_lab_down_leaves_it_as_found(own: Lab) -> None:
    context = f"kind-{NAME}"
    registry = f"localhost:{REGISTRY[1]}"
    # What the cluster holds once it has settled: kind says Ready before the controllers
    # have made, say, each namespace's default ServiceAccount.
    before, deadline = snapshot(own, context), time.monotonic() + 180
    while time.monotonic() < deadline:
        time.sleep(10)
        again = snapshot(own, context)
        if again == before:
            break
        before = again
    started = time.monotonic()
    own.invoke("lab.up", "--context", context, "--registry", registry, timeout=3600)
    print(f"lab.up into {context}: {time.monotonic() - started:.0f}s")
    status = own.invoke("lab.status")
    out = status.stdout + status.stderr
    assert out.count("Synced, Healthy") == 2, out
    assert f"context {context} (yours)" in out, out
    client = engine.client()
    # Nothing of kind or the registry was made: no kind-lab cluster, no lab registry.
    assert client.containers.list(all=True, filters={"label": "io.x-k8s.kind.cluster=lab"}) == []
    assert client.containers.list(all=True, filters={"name": own.config.registry_name}) == []
    during = snapshot(own, context)
    assert {"Namespace//argocd", "Namespace//demo-dev"} <= during - before

    down = own.invoke("lab.down")
    print((down.stdout + down.stderr)[-3000:])
    after = snapshot(own, context)
    assert after - before == set(), sorted(after - before)
    assert before - after == set(), sorted(before - after)
    # The user's cluster and registry are still there, running.
    nodes = client.containers.list(filters={"label": f"io.x-k8s.kind.cluster={NAME}"})
    assert [n.status for n in nodes] == ["running"]
    assert client.containers.get(REGISTRY[0]).status == "running"
    assert not (Path(own.env["LAB_STATE_DIR"]) / "state.json").exists()
    assert os.environ.get("LAB_STATE_DIR") != own.env["LAB_STATE_DIR"]
