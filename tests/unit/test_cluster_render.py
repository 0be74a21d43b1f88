"""Pure renderers and decisions of the bring-up: kind config, IstioOperator, k8s rules."""

from __future__ import annotations

import yaml

from lab import argocd, cluster, config, k8s, mesh
from tests.conftest import REPO


def test_kind_config_pins_the_node_image_and_maps_ports_to_loopback() -> None:
    c = config.load({}, {})
    rendered = cluster.kind_config(c)
    [node] = rendered["nodes"]
    assert node["image"] == c.kind_node_image
    mappings = {(m["containerPort"], m["hostPort"]) for m in node["extraPortMappings"]}
    assert mappings == {(30080, 8080), (30300, 3000), (30090, 8090)}
    assert {m["listenAddress"] for m in node["extraPortMappings"]} == {"127.0.0.1"}
    assert 'config_path = "/etc/containerd/certs.d"' in rendered["containerdConfigPatches"][0]
    assert rendered["name"] == "lab"


def test_settings_hash_changes_with_pinned_settings_only() -> None:
    base = config.load({}, {})
    assert cluster.settings_hash(base) == cluster.settings_hash(
        config.load({"sync_timeout": 9}, {})
    )
    assert cluster.settings_hash(base) != cluster.settings_hash(
        config.load({"ingress_http_port": 8081}, {})
    )


def test_registry_wiring_points_containerd_at_the_registry_container() -> None:
    c = config.load({}, {})
    assert cluster.registry_hosts_toml(c) == '[host."http://lab-registry:5000"]\n'
    cm = cluster.registry_hosting_configmap(c)
    assert cm["metadata"] == {"name": "local-registry-hosting", "namespace": "kube-public"}
    assert yaml.safe_load(cm["data"]["localRegistryHosting.v1"])["host"] == "localhost:5001"


def test_kind_get_clusters_output_is_parsed() -> None:
    assert cluster.parse_clusters("lab\nother\n") == ["lab", "other"]
    assert cluster.parse_clusters("No kind clusters found.\n") == []


def test_istio_operator_lists_every_gateway_port_with_the_http_node_port() -> None:
    op = mesh.istio_operator(config.load({"ingress_node_port": 30555}, {}))
    spec = op["spec"]
    assert spec["profile"] == "demo"
    assert spec["values"]["pilot"]["env"]["ENABLE_NATIVE_SIDECARS"] == "true"
    assert spec["components"]["egressGateways"][0]["enabled"] is False
    [gateway] = spec["components"]["ingressGateways"]
    service = gateway["k8s"]["service"]
    assert service["type"] == "NodePort"
    ports = {p["name"]: p for p in service["ports"]}
    assert set(ports) == {"status-port", "http2", "https", "tcp", "tls"}
    assert ports["http2"]["nodePort"] == 30555


def test_apply_order_puts_namespaces_crds_and_rbac_before_workloads() -> None:
    objects = list(
        yaml.safe_load_all((REPO / "tests/data/argocd-install-excerpt.yaml").read_text())
    )
    ordered = [o["kind"] for o in k8s.apply_order([{"kind": "Namespace"}, *objects])]
    assert ordered == [
        "Namespace",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "Service",
        "Deployment",
    ]


def test_argocd_objects_are_namespaced_except_cluster_scoped_ones() -> None:
    manifest = (REPO / "tests/data/argocd-install-excerpt.yaml").read_text()
    objects = argocd.install_objects(manifest)
    namespaces = {o["kind"]: o["metadata"].get("namespace") for o in objects}
    assert namespaces["Deployment"] == "argocd"
    assert namespaces["CustomResourceDefinition"] is None
    assert namespaces["ClusterRole"] is None


# A Deployment as the API server returns it mid-rollout and after it (trimmed).
ROLLING = {
    "metadata": {"name": "backend-v2", "generation": 3},
    "spec": {"replicas": 2},
    "status": {
        "observedGeneration": 3,
        "replicas": 3,
        "updatedReplicas": 2,
        "availableReplicas": 2,
    },
}


def test_rollout_status_follows_kubectl_rules() -> None:
    assert not k8s.rollout_status(ROLLING).done
    assert "old replicas pending termination" in k8s.rollout_status(ROLLING).seen
    stale = {**ROLLING, "status": {**ROLLING["status"], "observedGeneration": 2}}
    assert "observe" in k8s.rollout_status(stale).seen
    done = {
        **ROLLING,
        "status": {
            "observedGeneration": 3,
            "replicas": 2,
            "updatedReplicas": 2,
            "availableReplicas": 2,
        },
    }
    assert k8s.rollout_status(done).done
    stuck = {
        **ROLLING,
        "status": {
            **ROLLING["status"],
            "conditions": [
                {"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "too slow"}
            ],
        },
    }
    assert "deadline exceeded" in k8s.rollout_status(stuck).seen


def test_crd_established_reads_the_condition() -> None:
    crd = {
        "metadata": {"name": "applications.argoproj.io"},
        "status": {
            "conditions": [
                {"type": "NamesAccepted", "status": "True"},
                {"type": "Established", "status": "True"},
            ]
        },
    }
    assert k8s.crd_established(crd).done
    assert not k8s.crd_established({"metadata": {"name": "x"}, "status": {}}).done


def test_application_status_reads_sync_health_and_revision() -> None:
    app = {
        "status": {
            "sync": {"status": "Synced", "revision": "0123456789abcdef"},
            "health": {"status": "Healthy"},
        }
    }
    assert argocd.application_status(app) == ("Synced", "Healthy", "0123456789ab")
    assert argocd.application_status({}) == ("Unknown", "Unknown", "")
