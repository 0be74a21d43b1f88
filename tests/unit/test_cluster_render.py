"""Pure renderers and decisions of the bring-up: kind config, IstioOperator, k8s rules."""

from __future__ import annotations

import yaml

from lab import argocd, cluster, config, k8s, mesh, registry
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
    assert registry.registry_hosts_toml(c) == '[host."http://lab-registry:5000"]\n'
    cm = registry.registry_hosting_configmap(c)
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
    assert k8s.rollout_status(stuck).failed  # as kubectl rollout status, waiting cannot help
    assert not k8s.rollout_status(ROLLING).failed


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


def test_extra_kind_patches_are_appended_for_machines_that_need_them() -> None:
    c = config.load(
        {
            "kind_containerd_patch": '[plugins."io.containerd.grpc.v1.cri"]\n  restrict_oom_score_adj = true\n',
            "kind_kubeadm_patch": "kind: KubeletConfiguration\nfailCgroupV1: false\n---\nkind: ClusterConfiguration\n",
        },
        {},
    )
    rendered = cluster.kind_config(c)
    assert len(rendered["containerdConfigPatches"]) == 2
    assert "restrict_oom_score_adj = true" in rendered["containerdConfigPatches"][1]
    assert [yaml.safe_load(p)["kind"] for p in rendered["kubeadmConfigPatches"]] == [
        "KubeletConfiguration",
        "ClusterConfiguration",
    ]
    assert cluster.settings_hash(c) != cluster.settings_hash(config.load({}, {}))


def test_a_laptop_gets_no_extra_patches() -> None:
    rendered = cluster.kind_config(config.load({}, {}))
    assert len(rendered["containerdConfigPatches"]) == 1
    assert "kubeadmConfigPatches" not in rendered


def test_a_kubeadm_patch_without_a_kind_is_refused() -> None:
    import pytest

    from lab.errors import LabError

    with pytest.raises(LabError, match="without a `kind`"):
        cluster.kubeadm_patches("failCgroupV1: false\n")
    with pytest.raises(LabError, match="not valid YAML"):
        cluster.kubeadm_patches("kind: [unclosed\n")


def test_every_mirrored_upstream_gets_a_prefixed_host_with_the_upstream_as_fallback() -> None:
    c = config.load({}, {})
    files = registry.node_hosts_files(c)
    assert set(files) == {"localhost:5001", *registry.MIRRORED_REGISTRIES}
    quay = files["quay.io"]
    assert quay.startswith('server = "https://quay.io"\n')
    assert '[host."http://lab-registry:5000/v2/quay.io"]' in quay
    assert 'capabilities = ["pull", "resolve"]' in quay and "override_path = true" in quay


def test_mirror_references_follow_docker_defaults() -> None:
    c = config.load({}, {})
    assert (
        registry.mirror_reference(c, "registry:3") == "localhost:5001/docker.io/library/registry:3"
    )
    assert (
        registry.mirror_reference(c, "istio/pilot:1.30.0")
        == "localhost:5001/docker.io/istio/pilot:1.30.0"
    )
    assert (
        registry.mirror_reference(c, "quay.io/argoproj/argocd:v3.6.1")
        == "localhost:5001/quay.io/argoproj/argocd:v3.6.1"
    )
    assert (
        registry.mirror_reference(c, "docker.gitea.com/gitea:1.26.0-rootless")
        == "localhost:5001/docker.gitea.com/gitea:1.26.0-rootless"
    )


def test_an_image_from_an_unmirrored_registry_is_refused() -> None:
    import pytest

    from lab.errors import LabError

    with pytest.raises(LabError, match="does not mirror"):
        registry.mirror_reference(config.load({}, {}), "example.com/team/app:1")


def _stock_install() -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "argocd-cmd-params-cm", "namespace": "argocd"}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "argocd-server", "namespace": "argocd"}},
    ]  # fmt: skip


def test_lab_settings_are_merged_into_the_installs_own_configmap() -> None:
    merged = argocd.with_lab_settings(_stock_install(), config.load({}, {}))
    params = [o for o in merged if o["metadata"]["name"] == "argocd-cmd-params-cm"]
    # One object, carrying server.insecure: nothing applied later can take it away.
    assert len(params) == 1 and params[0]["data"] == {"server.insecure": "true"}
    names = [o["metadata"]["name"] for o in merged]
    assert names.count("argocd-server") == 1 and "argocd-server-nodeport" in names


def test_dex_is_left_out_of_the_install() -> None:
    manifest = yaml.safe_dump_all(
        [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "argocd-dex-server"},
            },
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "argocd-dex-server"}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "argocd-server"}},
        ]
    )
    assert [o["metadata"]["name"] for o in argocd.install_objects(manifest)] == ["argocd-server"]


def test_the_app_project_is_applied_before_the_applications() -> None:
    objects = argocd.project_and_applications(config.load({}, {}), REPO / "gitops")
    kinds = [o["kind"] for o in objects]
    assert kinds[0] == "AppProject" and set(kinds[1:]) == {"Application"}


def test_istio_images_are_pinned_whatever_istioctl_was_built_as() -> None:
    spec = mesh.istio_operator(config.load({}, {}))["spec"]
    assert (spec["hub"], spec["tag"]) == ("docker.io/istio", "1.30.0")


def test_without_a_data_plane_there_is_no_gateway_and_no_injection() -> None:
    c = config.load({"istio_data_plane": "none"}, {})
    spec = mesh.istio_operator(c)["spec"]
    assert spec["components"]["ingressGateways"][0]["enabled"] is False
    assert spec["values"]["global"]["proxy"]["autoInject"] == "disabled"
    assert mesh.control_plane(c) == ("istiod",)
    full = config.load({}, {})
    assert mesh.control_plane(full) == ("istiod", "istio-ingressgateway")
    assert "global" not in mesh.istio_operator(full)["spec"]["values"]


def test_an_unknown_data_plane_mode_is_refused() -> None:
    import pytest

    from lab.errors import ConfigError

    with pytest.raises(ConfigError, match="istio_data_plane"):
        config.load({"istio_data_plane": "ambient"}, {})


def test_the_newest_pod_is_picked_by_creation_time_not_by_name() -> None:
    pods = [
        {"metadata": {"name": "smoke-test-zzzzz", "creationTimestamp": "2026-12-01T10:00:00Z"}},
        {"metadata": {"name": "smoke-test-aaaaa", "creationTimestamp": "2026-12-01T10:05:00Z"}},
    ]
    assert k8s.newest_pod(pods) == "smoke-test-aaaaa"
    assert k8s.newest_pod([]) is None
