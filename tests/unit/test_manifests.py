"""lab.manifests (error explanations, tool lookup) and the tests' manifest checks."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lab import gitops_lint, gitops_structure, manifests
from lab.config import Config
from lab.errors import LabError, ToolNotFound
from tests.support import manifest_checks

ROOT = Path(__file__).resolve().parents[2]

# What kustomize v5.8.1 printed for a strategic-merge patch whose target does not exist
# (captured from `kustomize build environments/prod` with a broken backend overlay).
KUSTOMIZE_NO_MATCH = (
    "Error: accumulating resources: accumulation err='accumulating resources from "
    "'../base': '{root}/environments/base' must resolve to a file': recursed accumulation "
    "of path '{root}/environments/base': accumulating resources: accumulation "
    "err='accumulating resources from '../../backend/overlays/v1': "
    "'{root}/backend/overlays/v1' must resolve to a file': recursed accumulation of path "
    "'{root}/backend/overlays/v1': no resource matches strategic merge patch "
    '"Deployment.v1.apps/backend-v3.[noNs]": no matches for Id '
    "Deployment.v1.apps/backend-v3.[noNs]; failed to find unique target for patch "
    "Deployment.v1.apps/backend-v3.[noNs]\n"
)

# Lines istioctl analyze prints (format of istio's diag.Message).
ANALYZE_OUTPUT = """\
Warning [IST0101] (Gateway demo-dev/gw) Referenced selector not found: "istio=gw"
Info [IST0102] (Namespace default) The namespace is not enabled for Istio injection.
Error: Analyzers found issues when analyzing all namespaces.
See https://istio.io/v1.30/docs/reference/config/analysis for more information.
"""


# --------------------------------------------------------------------------- helpers


def deployment(
    name: str, labels: dict[str, str], *, account: str = "svc", **container: Any
) -> dict[str, Any]:
    base_container: dict[str, Any] = {
        "name": name,
        "image": f"localhost:5001/lab/{name}:main",
        "ports": [{"name": "http", "containerPort": 3000}],
        "resources": {
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "limits": {"cpu": "100m", "memory": "64Mi"},
        },
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
        "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}},
        "securityContext": {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
        },
    }
    base_container.update(container)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"serviceAccountName": account, "containers": [base_container]},
            },
        },
    }


def obj(
    kind: str, name: str, spec: dict[str, Any] | None = None, api: str = "v1"
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": "ns"},
    }
    if spec is not None:
        out["spec"] = spec
    return out


def mesh() -> list[dict[str, Any]]:
    """A small, consistent A/B setup: two backend variants, routing, policy."""
    return [
        obj("ServiceAccount", "svc"),
        obj("ServiceAccount", "caller"),
        deployment("backend-v1", {"app": "backend", "version": "v1"}),
        deployment("backend-v2", {"app": "backend", "version": "v2"}),
        obj(
            "Service",
            "backend",
            {
                "selector": {"app": "backend"},
                "ports": [{"name": "http", "port": 3000, "targetPort": "http"}],
            },
        ),
        obj(
            "DestinationRule",
            "backend",
            {
                "host": "backend",
                "subsets": [
                    {"name": "v1", "labels": {"version": "v1"}},
                    {"name": "v2", "labels": {"version": "v2"}},
                ],
            },
            api="networking.istio.io/v1",
        ),
        obj(
            "VirtualService",
            "backend",
            {
                "hosts": ["backend"],
                "http": [
                    {
                        "name": "split",
                        "route": [
                            {"destination": {"host": "backend", "subset": "v1"}, "weight": 90},
                            {
                                "destination": {
                                    "host": "backend.ns.svc.cluster.local",
                                    "subset": "v2",
                                },
                                "weight": 10,
                            },
                        ],
                    }
                ],
            },
            api="networking.istio.io/v1",
        ),
        obj(
            "AuthorizationPolicy",
            "backend",
            {
                "selector": {"matchLabels": {"app": "backend"}},
                "rules": [
                    {
                        "from": [
                            {
                                "source": {
                                    "principals": [
                                        "cluster.local/ns/ns/sa/caller",
                                        gitops_structure.INGRESS_PRINCIPAL,
                                    ]
                                }
                            }
                        ]
                    }
                ],
            },
            api="security.istio.io/v1",
        ),
    ]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


# --------------------------------------------------------------------------- tools


def test_find_tool_prefers_the_environment_variable(tmp_path: Path) -> None:
    tool = tmp_path / "kustomize"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    found = manifests.find_tool(
        "kustomize", "LAB_KUSTOMIZE", tmp_path / "none", "x.sh", {"LAB_KUSTOMIZE": str(tool)}
    )
    assert found == str(tool)


def test_find_tool_uses_the_cached_build(tmp_path: Path) -> None:
    cached = tmp_path / "kustomize-v5" / "kustomize"
    cached.parent.mkdir()
    cached.write_text("#!/bin/sh\n")
    cached.chmod(0o755)
    assert manifests.find_tool("kustomize", "LAB_KUSTOMIZE", cached, "x.sh", {}) == str(cached)


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_kustomize_is_looked_up_in_the_variable_the_cache_lab_bin_then_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manifests, "CACHE_DIR", tmp_path / "cache")  # not the real ~/.cache
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    explicit = _executable(tmp_path / "explicit" / "kustomize")
    cached = _executable(tmp_path / "cache" / "kustomize-v5.8.1" / "kustomize")
    lab_bin = _executable(tmp_path / ".lab" / "bin" / "kustomize")  # proc's local_bin here
    on_path = _executable(tmp_path / "path" / "kustomize")

    found = manifests.kustomize_binary({"LAB_KUSTOMIZE": str(explicit)}, version="v5.8.1")
    assert found == str(explicit)
    assert manifests.kustomize_binary({}, version="v5.8.1") == str(cached)
    cached.unlink()
    assert manifests.kustomize_binary({}, version="v5.8.1") == str(lab_bin.resolve())
    lab_bin.unlink()
    assert manifests.kustomize_binary({}, version="v5.8.1") == str(on_path)
    on_path.unlink()
    with pytest.raises(ToolNotFound, match="kustomize is not installed"):
        manifests.kustomize_binary({}, version="v5.8.1")


def test_missing_tool_names_the_task_that_fetches_it_and_the_script_that_builds_it(
    tmp_path: Path,
) -> None:
    with pytest.raises(ToolNotFound) as caught:
        manifests.find_tool(
            "no-such-tool-xyz", "LAB_NO_SUCH", tmp_path / "t", ".ci/tools/istioctl.sh", {}
        )
    assert "invoke lab.tools --only no-such-tool-xyz" in (caught.value.hint or "")
    assert "bash .ci/tools/istioctl.sh" in (caught.value.hint or "")


def test_a_bad_tool_variable_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    with pytest.raises(ToolNotFound) as caught:
        manifests.find_tool(
            "kustomize",
            "LAB_KUSTOMIZE",
            tmp_path / "t",
            "k.sh",
            {"LAB_KUSTOMIZE": str(tmp_path / "gone")},
        )
    assert "LAB_KUSTOMIZE" in caught.value.message


def test_pinned_versions_match_the_ci_scripts() -> None:
    # istioctl.sh and the kind tier share one set of pins, in kind/versions.sh; Argo CD's
    # version there is read from lab/config.py, so we source the script and compare.
    istioctl_script = (ROOT / ".ci/tools/istioctl.sh").read_text()
    kustomize_script = (ROOT / ".ci/tools/kustomize.sh").read_text()
    assert 'source "$(dirname "${BASH_SOURCE[0]}")/kind/versions.sh"' in istioctl_script
    versions_script = (ROOT / ".ci/tools/kind/versions.sh").read_text()
    assert f'ISTIO_MODULE_VERSION="{manifest_checks.ISTIO_MODULE_VERSION}"' in versions_script
    sourced = subprocess.run(
        [
            "bash",
            "-c",
            'source "$0"; echo "$ARGOCD_VERSION $KUSTOMIZE_VERSION $GITEA_VERSION"',
            str(ROOT / ".ci/tools/kind/versions.sh"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    config = Config()
    assert sourced == [config.argocd_version, config.kustomize_version, config.gitea_version]
    assert f'KUSTOMIZE_VERSION="{Config().kustomize_version}"' in kustomize_script
    buildx_script = (ROOT / "scripts/buildx.sh").read_text()
    assert f'BUILDX_VERSION="{Config().buildx_version}"' in buildx_script


def test_kubernetes_version_comes_from_the_kind_node_image() -> None:
    assert re.fullmatch(r"1\.\d+", manifest_checks.kubernetes_version())


# --------------------------------------------------------------------------- kustomize errors


def test_unknown_patch_target_names_the_kustomization_and_the_target(tmp_path: Path) -> None:
    overlay = tmp_path / "backend" / "overlays" / "v1"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(
        "resources: [../../base]\npatches:\n  - path: replicas.yaml\n"
    )
    (overlay / "replicas.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: backend-v3\n"
    )
    error = manifests.explain_kustomize_failure(
        tmp_path / "environments" / "prod", KUSTOMIZE_NO_MATCH.format(root=tmp_path)
    )
    assert "backend/overlays/v1/kustomization.yaml" in error.message
    assert "Deployment 'backend-v3'" in error.message
    assert "file replicas.yaml" in error.message
    assert "backend/overlays/v1/kustomization.yaml" in (error.hint or "")


def test_other_kustomize_errors_name_the_innermost_kustomization(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    output = (
        "Error: accumulating resources: recursed accumulation of path "
        f"'{tmp_path}/a': file 'missing.yaml' not found\n"
    )
    error = manifests.explain_kustomize_failure(tmp_path / "env", output)
    assert "a/kustomization.yaml" in error.message
    assert "missing.yaml" in (error.output_tail or "")


# --------------------------------------------------------------------------- schemas


@pytest.fixture(scope="module")
def kubernetes_schemas() -> manifest_checks.SchemaSet:
    return manifest_checks.SchemaSet(manifest_checks.kubernetes_version(), [])


def test_a_valid_deployment_passes_the_kubernetes_schema(
    kubernetes_schemas: manifest_checks.SchemaSet,
) -> None:
    assert kubernetes_schemas.validate(deployment("backend-v1", {"app": "backend"})) == []


def test_a_misspelt_field_fails_the_kubernetes_schema(
    kubernetes_schemas: manifest_checks.SchemaSet,
) -> None:
    broken = deployment("backend-v1", {"app": "backend"})
    broken["spec"]["replica"] = 2
    problems = kubernetes_schemas.validate(broken)
    assert len(problems) == 1
    assert "Deployment/backend-v1 in ns: spec:" in problems[0]
    assert "'replica'" in problems[0]


def test_a_wrong_type_fails_the_kubernetes_schema(
    kubernetes_schemas: manifest_checks.SchemaSet,
) -> None:
    broken = deployment("backend-v1", {"app": "backend"})
    broken["spec"]["replicas"] = "two"
    assert any("spec.replicas" in p for p in kubernetes_schemas.validate(broken))


def test_an_unknown_kind_has_no_schema(kubernetes_schemas: manifest_checks.SchemaSet) -> None:
    problems = kubernetes_schemas.validate(
        obj("VirtualService", "x", {}, api="networking.istio.io/v1")
    )
    assert problems and "no schema for VirtualService" in problems[0]


def test_crd_schemas_reject_unknown_fields(tmp_path: Path) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "size": {"type": "integer"},
                                        "note": {"type": "string", "nullable": True},
                                    },
                                },
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                            },
                        }
                    },
                }
            ],
        },
    }
    import yaml

    path = tmp_path / "crd.yaml"
    path.write_text(yaml.safe_dump(crd))
    schemas = manifest_checks.SchemaSet("1.36", [path])
    good = obj("Widget", "w", {"size": 3, "note": None}, api="example.com/v1")
    assert schemas.validate(good) == []
    bad = obj("Widget", "w", {"size": 3, "colour": "red"}, api="example.com/v1")
    assert any("'colour'" in p for p in schemas.validate(bad))


# --------------------------------------------------------------------------- structure


def test_a_consistent_mesh_has_no_problems() -> None:
    assert gitops_structure.check_structure(mesh()) == []


def test_a_route_to_an_undefined_subset_is_reported() -> None:
    objects = mesh()
    find(objects, "VirtualService", "backend")["spec"]["http"][0]["route"][1]["destination"][
        "subset"
    ] = "v3"
    problems = gitops_structure.check_structure(objects)
    assert any("subset 'v3'" in p and "does not define" in p for p in problems)


def test_a_subset_selecting_the_wrong_version_is_reported() -> None:
    objects = mesh()
    find(objects, "DestinationRule", "backend")["spec"]["subsets"][1]["labels"] = {"version": "v1"}
    problems = gitops_structure.check_structure(objects)
    assert any("subset 'v2'" in p and "version 'v1'" in p for p in problems)


def test_a_subset_selecting_no_pods_is_reported() -> None:
    objects = mesh()
    find(objects, "DestinationRule", "backend")["spec"]["subsets"][1]["labels"] = {"version": "v9"}
    assert any("selects no pods" in p for p in gitops_structure.check_structure(objects))


def test_weights_must_add_up_to_100() -> None:
    objects = mesh()
    find(objects, "VirtualService", "backend")["spec"]["http"][0]["route"][1]["weight"] = 20
    assert any("do not add up to 100" in p for p in gitops_structure.check_structure(objects))


def test_a_principal_without_its_service_account_is_reported() -> None:
    objects = [
        o
        for o in mesh()
        if not (o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "caller")
    ]
    problems = gitops_structure.check_structure(objects)
    assert any("no ServiceAccount 'caller' in ns" in p for p in problems)


def test_a_principal_from_another_namespace_is_reported() -> None:
    objects = mesh()
    rules = find(objects, "AuthorizationPolicy", "backend")["spec"]["rules"]
    rules[0]["from"][0]["source"]["principals"] = ["cluster.local/ns/NAMESPACE/sa/caller"]
    assert any("from namespace 'NAMESPACE'" in p for p in gitops_structure.check_structure(objects))


def test_a_service_selecting_nothing_is_reported() -> None:
    objects = mesh()
    find(objects, "Service", "backend")["spec"]["selector"] = {"app": "backend", "version": "v3"}
    assert any("selects no Deployment" in p for p in gitops_structure.check_structure(objects))


def test_a_service_port_naming_a_missing_container_port_is_reported() -> None:
    objects = mesh()
    find(objects, "Service", "backend")["spec"]["ports"][0]["targetPort"] = "web"
    assert any(
        "targets container port 'web'" in p for p in gitops_structure.check_structure(objects)
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"readinessProbe": None}, "has no readinessProbe"),
        ({"livenessProbe": None}, "has no livenessProbe"),
        ({"resources": {"requests": {"cpu": "1m"}}}, "sets no limits.memory"),
        ({"securityContext": {"readOnlyRootFilesystem": True}}, "may run as root"),
        (
            {"securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False}},
            "writable root filesystem",
        ),
        ({"image": "backend-v1"}, "a placeholder no images: entry mapped"),
    ],
)
def test_workload_hardening_is_checked(change: dict[str, Any], expected: str) -> None:
    objects = mesh()
    container = find(objects, "Deployment", "backend-v1")["spec"]["template"]["spec"]["containers"][
        0
    ]
    for key, value in change.items():
        if value is None:
            del container[key]
        else:
            container[key] = value
    assert any(expected in p for p in gitops_structure.check_structure(objects))


def test_missing_config_maps_are_reported_but_external_secrets_are_not() -> None:
    objects = mesh()
    container = find(objects, "Deployment", "backend-v1")["spec"]["template"]["spec"]["containers"][
        0
    ]
    container["envFrom"] = [{"configMapRef": {"name": "backend-config"}}]
    container["env"] = [
        {
            "name": "JWT_SECRET",
            "valueFrom": {"secretKeyRef": {"name": "demo-secrets", "key": "JWT_SECRET"}},
        }
    ]
    problems = gitops_structure.check_structure(objects)
    assert problems == [
        "Deployment/backend-v1 in ns refers to ConfigMap 'backend-config', which does not exist"
    ]


# --------------------------------------------------------------------------- environments


def test_environment_diff_ignores_namespaces_and_generated_hashes() -> None:
    dev = [
        {
            "kind": "ConfigMap",
            "metadata": {"name": "cfg-abcde12345", "namespace": "demo-dev"},
            "data": {"HOST": "dev.localhost"},
        },
        {
            "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "demo-dev"},
            "spec": {
                "replicas": 1,
                "ref": "cfg-abcde12345",
                "principal": "cluster.local/ns/demo-dev/sa/api",
            },
        },
    ]
    prod = copy.deepcopy(dev)
    prod[0]["metadata"] = {"name": "cfg-zyxwv98765", "namespace": "demo-prod"}
    prod[0]["data"]["HOST"] = "prod.localhost"
    prod[1]["metadata"]["namespace"] = "demo-prod"
    prod[1]["spec"].update(
        replicas=2, ref="cfg-zyxwv98765", principal="cluster.local/ns/demo-prod/sa/api"
    )
    differences = [
        str(d)
        for d in manifest_checks.environment_diff(
            dev, prod, left_ns="demo-dev", right_ns="demo-prod"
        )
    ]
    assert differences == [
        "ConfigMap/cfg data.HOST: 'dev.localhost' -> 'prod.localhost'",
        "Deployment/api spec.replicas: 1 -> 2",
    ]


# --------------------------------------------------------------------------- istioctl


def test_analyze_messages_are_parsed_from_istioctl_output() -> None:
    assert gitops_lint.parse_analyze_output(ANALYZE_OUTPUT) == [
        'Warning [IST0101] (Gateway demo-dev/gw) Referenced selector not found: "istio=gw"',
        "Info [IST0102] (Namespace default) The namespace is not enabled for Istio injection.",
    ]


def test_no_messages_when_istioctl_finds_nothing() -> None:
    assert (
        gitops_lint.parse_analyze_output(
            "\u2714 No validation issues found when analyzing namespace: demo-dev.\n"
        )
        == []
    )


def test_render_errors_are_lab_errors() -> None:
    assert issubclass(
        type(manifests.explain_kustomize_failure(Path("/x"), "Error: boom")), LabError
    )
