"""The GitOps repository (gitops/), rendered by the real kustomize and checked offline.

Needs kustomize and istioctl (built by .ci/tools/kustomize.sh and .ci/tools/istioctl.sh,
which also caches the Istio and Argo CD CRD schemas). A missing tool fails the test with
the script to run; nothing is skipped.
"""

from __future__ import annotations

import copy
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ruamel.yaml import YAML

from lab import gitops_lint, gitops_structure, manifests, tags
from lab.config import Config
from lab.errors import LabError
from tests.support import manifest_checks

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
GITOPS = REPO / "gitops"
ENVIRONMENTS = ("dev", "prod")
SECRET_KEYS = {"JWT_SECRET", "ADMIN_PASSWORD", "MONITOR_SECRET_KEY"}
IMAGE_SERVICES = {
    "backend-v1": "backend",
    "backend-v2": "backend",
    "monitor-v1": "monitor",
    "monitor-v2": "monitor",
    "frontend": "frontend",
    "smoke": "smoke",
}


def _tool(finder: Any) -> str:
    try:
        return str(finder())
    except LabError as error:  # the hint names the .ci/tools script that builds it
        pytest.fail(error.render(), pytrace=False)


@pytest.fixture(scope="module")
def kustomize() -> str:
    return _tool(lambda: manifests.kustomize_binary(version=Config().kustomize_version))


@pytest.fixture(scope="module")
def istioctl() -> str:
    return _tool(manifest_checks.istioctl_binary)


@pytest.fixture(scope="module")
def renders(kustomize: str) -> dict[str, manifests.Rendering]:
    out = {
        env: manifests.render(GITOPS / "environments" / env, kustomize=kustomize)
        for env in ENVIRONMENTS
    }
    out["argocd"] = manifests.render(GITOPS / "argocd", kustomize=kustomize)
    return out


@pytest.fixture(scope="module")
def schemas() -> manifest_checks.SchemaSet:
    try:
        files = manifest_checks.crd_files()
    except LabError as error:
        pytest.fail(error.render(), pytrace=False)
    return manifest_checks.SchemaSet(manifest_checks.kubernetes_version(), files)


@pytest.fixture
def gateway(tmp_path: Path) -> Path:
    """The stand-in for the ingress gateway that the quality stage's row analyzes with."""
    path = tmp_path / "gateway.yaml"
    path.write_text(gitops_lint.gateway_context(Config()))
    return path


@pytest.fixture
def gitops_copy(tmp_path: Path) -> Path:
    """A scratch copy of gitops/ to break or edit."""
    copy = tmp_path / "gitops"
    shutil.copytree(GITOPS, copy)
    return copy


def _environment_file(env: str, root: Path = GITOPS) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        (root / "environments" / env / "environment.yaml").read_text()
    )
    return data


def _kustomization(env: str, root: Path = GITOPS) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        (root / "environments" / env / "kustomization.yaml").read_text()
    )
    return data


def _containers(rendering: manifests.Rendering) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for obj in rendering.objects:
        if obj["kind"] in ("Deployment", "Job"):
            for container in obj["spec"]["template"]["spec"]["containers"]:
                yield obj, container


def _weighted_routes(rendering: manifests.Rendering) -> list[tuple[str, list[dict[str, Any]]]]:
    routes = []
    for vs in rendering.objects:
        if vs["kind"] == "VirtualService":
            for route in vs["spec"].get("http", []):
                if len(route.get("route", [])) > 1:
                    routes.append((f"{vs['metadata']['name']}/{route['name']}", route["route"]))
    return routes


# --------------------------------------------------------------------------- validity


@pytest.mark.parametrize("name", [*ENVIRONMENTS, "argocd"])
def test_rendered_objects_match_the_kubernetes_istio_and_argocd_schemas(
    renders: dict[str, manifests.Rendering], schemas: manifest_checks.SchemaSet, name: str
) -> None:
    rendering = renders[name]
    assert rendering.objects, f"kustomize build {name} rendered nothing"
    assert schemas.validate_all(rendering.objects) == []


def test_the_crd_schemas_catch_mistakes_in_istio_and_argocd_objects(
    renders: dict[str, manifests.Rendering], schemas: manifest_checks.SchemaSet
) -> None:
    route = copy.deepcopy(renders["dev"].find("VirtualService", "demo"))
    route["spec"]["http"][0]["route"][0]["wieght"] = 10  # a typo the API server would drop
    policy = copy.deepcopy(renders["dev"].find("AuthorizationPolicy", "backend-from-ingress"))
    policy["spec"]["action"] = "PERMIT"  # not an enum value
    app = copy.deepcopy(renders["argocd"].find("Application", "demo-dev"))
    app["spec"]["syncPolicy"]["automated"]["selfheal"] = True  # wrong case

    problems = schemas.validate_all([route, policy, app])

    assert len(problems) == 3, problems
    assert "VirtualService/demo in demo-dev: spec.http.0.route.0: " in problems[0]
    assert "'wieght'" in problems[0]
    assert (
        "AuthorizationPolicy/backend-from-ingress in demo-dev: spec.action: 'PERMIT'" in problems[1]
    )
    assert "Application/demo-dev in argocd: spec.syncPolicy.automated: " in problems[2]
    assert "'selfheal'" in problems[2]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_parts_of_each_environment_fit_together(
    renders: dict[str, manifests.Rendering], env: str
) -> None:
    assert gitops_structure.check_structure(renders[env].objects) == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_istioctl_analyze_finds_no_issues(
    renders: dict[str, manifests.Rendering], istioctl: str, gateway: Path, env: str
) -> None:
    messages = gitops_lint.analyze(renders[env].text, istioctl=istioctl, context=[gateway])
    assert messages == []


def test_istioctl_analyze_reports_a_route_to_a_missing_subset(
    renders: dict[str, manifests.Rendering], istioctl: str, gateway: Path
) -> None:
    broken = renders["dev"].text.replace("subset: v2", "subset: v3")
    messages = gitops_lint.analyze(broken, istioctl=istioctl, context=[gateway])
    assert messages, "istioctl analyze should have found the missing subset"
    assert all("IST0101" in m and "+v3" in m for m in messages)


def test_the_repository_has_no_patch_that_matches_nothing(kustomize: str) -> None:
    assert gitops_lint.unmatched_patch_targets(GITOPS, kustomize=kustomize) == []


# --------------------------------------------------------------------------- environments


def test_dev_and_prod_differ_only_in_tags_weights_replicas_and_config(
    renders: dict[str, manifests.Rendering],
) -> None:
    differences = manifest_checks.environment_diff(
        renders["dev"].objects, renders["prod"].objects, left_ns="demo-dev", right_ns="demo-prod"
    )
    print(
        "dev -> prod:\n" + "\n".join(f"  {d}" for d in differences)
    )  # the proof, with -s / on failure
    intended = [
        r"Deployment/[a-z0-9-]+ spec\.replicas",  # replicas
        r"Deployment/[a-z0-9-]+ spec\.template\.spec\.containers\[0\]\.image",  # tags
        r"Job/smoke-test spec\.template\.spec\.containers\[0\]\.image",  # tags
        r"VirtualService/(demo|backend) spec\.http\[\d+\]\.route\[[01]\]\.weight",  # weights
        r"VirtualService/demo spec\.hosts\[0\]",  # the environment's host name
        r"Gateway/demo-gateway spec\.servers\[0\]\.hosts\[0\]",
        r"ConfigMap/[a-z0-9-]+ data\.[A-Z0-9_]+",  # config
    ]
    unintended = [
        str(d)
        for d in differences
        if not any(re.fullmatch(p, f"{d.object} {d.path}") for p in intended)
    ]
    assert unintended == []
    changed = {f"{d.object} {d.path}" for d in differences}
    assert "Deployment/backend-v1 spec.replicas" in changed
    assert "VirtualService/demo spec.hosts[0]" in changed
    assert any(c.startswith("VirtualService/demo spec.http") for c in changed)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_weighted_route_follows_environment_yaml(
    renders: dict[str, manifests.Rendering], env: str
) -> None:
    weights = _environment_file(env)["spec"]["weights"]
    routes = _weighted_routes(renders[env])
    assert {name for name, _ in routes} == {
        "demo/api-split",
        "demo/status-split",
        "backend/backend-split",
    }
    for name, route in routes:
        by_subset = {r["destination"]["subset"]: r["weight"] for r in route}
        assert by_subset == {"v1": weights["v1"], "v2": weights["v2"]}, name


def test_the_default_weights_match_the_lab_config() -> None:
    config = Config()
    assert _environment_file("dev")["spec"]["weights"] == {
        "v1": 100 - config.dev_v2_weight,
        "v2": config.dev_v2_weight,
    }
    assert _environment_file("prod")["spec"]["weights"] == {
        "v1": 100 - config.prod_v2_weight,
        "v2": config.prod_v2_weight,
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_header_routes_pin_each_variant(renders: dict[str, manifests.Rendering], env: str) -> None:
    demo = renders[env].find("VirtualService", "demo")
    host = _environment_file(env)["spec"]["host"]
    assert demo["spec"]["hosts"] == [host]
    assert renders[env].find("Gateway", "demo-gateway")["spec"]["servers"][0]["hosts"] == [host]
    routes = {r["name"]: r for r in demo["spec"]["http"]}
    for prefix, service in (("/api/", "backend"), ("/status", "monitor")):
        stem = prefix.strip("/")
        for variant in ("v1", "v2"):
            route = routes[f"{stem}-pinned-{variant}"]
            assert route["match"] == [
                {"uri": {"prefix": prefix}, "headers": {"x-version": {"exact": variant}}}
            ]
            assert [r["destination"]["subset"] for r in route["route"]] == [variant]
            assert route["route"][0]["destination"]["host"] == service
        names = [r["name"] for r in demo["spec"]["http"]]
        # pinned routes must come before the split, or the split would swallow them
        assert names.index(f"{stem}-pinned-v1") < names.index(f"{stem}-split")
        assert names.index(f"{stem}-pinned-v2") < names.index(f"{stem}-split")
    assert routes["app"]["route"][0]["destination"]["host"] == "frontend"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_images_come_from_the_lab_registry_with_the_environment_tags(
    renders: dict[str, manifests.Rendering], env: str
) -> None:
    tags = {entry["name"]: entry["newTag"] for entry in _kustomization(env)["images"]}
    assert set(tags) == set(IMAGE_SERVICES)
    expected = {
        "backend-v1": f"localhost:5001/lab/backend:{tags['backend-v1']}",
        "backend-v2": f"localhost:5001/lab/backend:{tags['backend-v2']}",
        "monitor-v1": f"localhost:5001/lab/monitor:{tags['monitor-v1']}",
        "monitor-v2": f"localhost:5001/lab/monitor:{tags['monitor-v2']}",
        "frontend": f"localhost:5001/lab/frontend:{tags['frontend']}",
        "smoke-test": f"localhost:5001/lab/smoke:{tags['smoke']}",
        "redis": "redis:7.4-bookworm",
    }
    images = {
        obj["metadata"]["name"]: container["image"] for obj, container in _containers(renders[env])
    }
    assert images == expected


def test_the_seed_deploys_the_main_branch_tags() -> None:
    for env in ENVIRONMENTS:
        assert {entry["newTag"] for entry in _kustomization(env)["images"]} == {"main"}


# --------------------------------------------------------------------------- secrets and security


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_secrets_are_only_referenced_by_name(
    renders: dict[str, manifests.Rendering], env: str
) -> None:
    assert [o for o in renders[env].objects if o["kind"] == "Secret"] == []
    for obj, container in _containers(renders[env]):
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == "demo-secrets", obj["metadata"]["name"]
                assert ref["key"] in SECRET_KEYS
    for config_map in (o for o in renders[env].objects if o["kind"] == "ConfigMap"):
        for key in config_map.get("data", {}):
            assert key not in SECRET_KEYS, f"{config_map['metadata']['name']} carries {key}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_namespace_is_in_the_mesh_with_strict_mtls_and_default_deny(
    renders: dict[str, manifests.Rendering], env: str
) -> None:
    rendering = renders[env]
    assert (
        rendering.find("Namespace", f"demo-{env}")["metadata"]["labels"]["istio-injection"]
        == "enabled"
    )
    assert rendering.find("PeerAuthentication", "default")["spec"] == {"mtls": {"mode": "STRICT"}}
    assert rendering.find("AuthorizationPolicy", "allow-nothing")["spec"] == {}
    redis = rendering.find("AuthorizationPolicy", "redis-from-backend")
    principals = [
        p
        for rule in redis["spec"]["rules"]
        for f in rule["from"]
        for p in f["source"]["principals"]
    ]
    assert principals == [f"cluster.local/ns/demo-{env}/sa/backend"]
    callers = set()
    for name in ("backend-from-ingress", "backend-from-workloads"):
        policy = rendering.find("AuthorizationPolicy", name)
        callers |= {
            p
            for rule in policy["spec"]["rules"]
            for f in rule["from"]
            for p in f["source"]["principals"]
        }
    assert {c.rsplit("/", 1)[-1] for c in callers} == {
        "istio-ingressgateway-service-account",
        "frontend",
        "monitor",
        "smoke-test",
    }


# --------------------------------------------------------------------------- smoke test


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_smoke_job_runs_once_in_the_mesh_and_knows_what_to_expect(
    renders: dict[str, manifests.Rendering], env: str
) -> None:
    job = renders[env].find("Job", "smoke-test")
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    assert 0 < spec["activeDeadlineSeconds"] < Config().smoke_timeout
    assert spec["ttlSecondsAfterFinished"] > 0
    # Argo CD leaves it alone; lab code runs it per deploy (gitops/README.md)
    assert job["metadata"]["annotations"] == {"argocd.argoproj.io/hook": "Skip"}
    assert manifests.smoke_job(renders[env]) == job
    assert manifests.smoke_job(renders[env]) is not job  # a copy lab code may change
    pod = spec["template"]
    assert pod["metadata"]["annotations"]["sidecar.istio.io/nativeSidecar"] == "true"
    assert pod["spec"]["restartPolicy"] == "Never"
    config_name = pod["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"]
    config = renders[env].find("ConfigMap", config_name)["data"]
    assert config["GATEWAY_URL"] == "http://istio-ingressgateway.istio-system.svc.cluster.local"
    assert config["APP_HOST"] == _environment_file(env)["spec"]["host"]
    assert config["ADMIN_USERNAME"] == "admin"
    assert {"EXPECTED_V1_COMMIT", "EXPECTED_V2_COMMIT"} <= set(config)


# --------------------------------------------------------------------------- Argo CD


def test_argocd_project_is_fenced_to_the_lab_repository_and_namespaces(
    renders: dict[str, manifests.Rendering],
) -> None:
    project = renders["argocd"].find("AppProject", "lab")["spec"]
    assert project["sourceRepos"] == [Config().gitops_repo_url]
    assert sorted(d["namespace"] for d in project["destinations"]) == ["demo-dev", "demo-prod"]
    assert all(d["server"] == "https://kubernetes.default.svc" for d in project["destinations"])
    assert "*" not in yaml.safe_dump(project)
    assert project["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_argocd_applications_sync_automatically_from_the_lab_repository(
    renders: dict[str, manifests.Rendering], env: str
) -> None:
    app = renders["argocd"].find("Application", f"demo-{env}")
    assert app["metadata"]["namespace"] == "argocd"
    spec = app["spec"]
    assert spec["project"] == "lab"
    assert spec["source"] == {
        "repoURL": Config().gitops_repo_url,
        "targetRevision": "main",
        "path": f"environments/{env}",
    }
    assert spec["destination"]["namespace"] == f"demo-{env}"
    policy = spec["syncPolicy"]
    assert policy["automated"] == {"prune": True, "selfHeal": True}
    assert "CreateNamespace=true" in policy["syncOptions"]
    assert policy["retry"]["limit"] > 0 and policy["retry"]["backoff"]["factor"] > 1


# --------------------------------------------------------------------------- edits and errors


def test_the_fields_lab_code_edits_reach_the_render(gitops_copy: Path, kustomize: str) -> None:
    """The YAML paths gitops/README.md documents, edited the way lab code edits them."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    round_trip = YAML()
    kustomization_path = gitops_copy / "environments/prod/kustomization.yaml"
    kustomization = round_trip.load(kustomization_path)
    for entry in kustomization["images"]:
        if entry["name"] == "backend-v2":
            entry["newTag"] = sha
    for entry in kustomization["replicas"]:
        if entry["name"] == "backend-v1":
            entry["count"] = 3
    for generator in kustomization["configMapGenerator"]:
        if generator["name"] == "smoke-test":
            literals = generator["literals"]
            for index, literal in enumerate(literals):
                if literal.startswith("EXPECTED_V2_COMMIT="):
                    literals[index] = f"EXPECTED_V2_COMMIT={sha}"
    round_trip.dump(kustomization, kustomization_path)
    environment_path = gitops_copy / "environments/prod/environment.yaml"
    environment = round_trip.load(environment_path)
    environment["spec"]["weights"]["v1"] = 70
    environment["spec"]["weights"]["v2"] = 30
    round_trip.dump(environment, environment_path)
    assert "# Percent of requests" in environment_path.read_text()  # comments survive

    rendering = manifests.render(gitops_copy / "environments/prod", kustomize=kustomize)

    assert rendering.find("Deployment", "backend-v2")["spec"]["template"]["spec"]["containers"][0][
        "image"
    ] == (f"localhost:5001/lab/backend:{sha}")
    assert rendering.find("Deployment", "backend-v1")["spec"]["template"]["spec"]["containers"][0][
        "image"
    ] == ("localhost:5001/lab/backend:main")
    assert rendering.find("Deployment", "backend-v1")["spec"]["replicas"] == 3
    smoke = next(
        o
        for o in rendering.objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("smoke-test-")
    )
    assert smoke["data"]["EXPECTED_V2_COMMIT"] == sha
    for name, route in _weighted_routes(rendering):
        assert [r["weight"] for r in route] == [70, 30], name
    assert gitops_structure.check_structure(rendering.objects) == []


def test_a_deploy_by_digest_renders_each_image_pinned(gitops_copy: Path, kustomize: str) -> None:
    """What `gitops.deploy` writes, rendered by the real kustomize: tag and digest."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    digest = "sha256:" + "ab" * 32
    path = gitops_copy / "environments/dev/kustomization.yaml"
    text = path.read_text()
    planned = tags.plan_update(tags.read_tags(text, str(path)), sha, {"backend": digest})
    path.write_text(tags.edit_tags(text, planned, str(path))[0])

    rendering = manifests.render(gitops_copy / "environments/dev", kustomize=kustomize)

    for name in ("backend-v1", "backend-v2"):
        container = rendering.find("Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == f"localhost:5001/lab/backend:{sha}@{digest}", name
    frontend = rendering.find("Deployment", "frontend")["spec"]["template"]["spec"]
    assert frontend["containers"][0]["image"] == f"localhost:5001/lab/frontend:{sha}"
    assert gitops_structure.check_structure(rendering.objects) == []


def test_a_patch_of_an_unknown_resource_names_the_file_and_the_target(
    gitops_copy: Path, kustomize: str
) -> None:
    env = gitops_copy / "environments/dev"
    (env / "backend-resources.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\n"
        "metadata:\n  name: backend-v3\nspec:\n  replicas: 2\n"
    )
    with (env / "kustomization.yaml").open("a") as kustomization:
        kustomization.write("patches:\n  - path: backend-resources.yaml\n")

    with pytest.raises(LabError) as caught:
        manifests.render(env, kustomize=kustomize)

    error = caught.value
    print(error.render())
    assert "environments/dev/kustomization.yaml" in error.message
    assert "Deployment 'backend-v3'" in error.message
    assert "backend-resources.yaml" in error.message
    assert "environments/dev/kustomization.yaml" in (error.hint or "")


def test_a_patch_whose_target_selects_nothing_is_reported(
    gitops_copy: Path, kustomize: str
) -> None:
    # kustomize itself renders this without a word: the replicas change is silently lost.
    with (gitops_copy / "environments/prod/kustomization.yaml").open("a") as kustomization:
        kustomization.write(
            "patches:\n"
            "  - target: {kind: Deployment, name: backend-v3}\n"
            "    patch: |-\n"
            "      - {op: replace, path: /spec/replicas, value: 4}\n"
            "  - target: {kind: Deployment, name: frontend}\n"
            "    patch: |-\n"
            "      - {op: add, path: /metadata/annotations, value: {lab.local/note: kept}}\n"
        )
    manifests.render(
        gitops_copy / "environments/prod", kustomize=kustomize
    )  # no error from kustomize

    problems = gitops_lint.unmatched_patch_targets(gitops_copy, kustomize=kustomize)

    assert problems == [
        "environments/prod/kustomization.yaml: patches[0] target "
        "{kind=Deployment, name=backend-v3} changes nothing: it matches no resource, "
        "or a later field such as replicas: overrides it (kustomize says nothing)"
    ]
