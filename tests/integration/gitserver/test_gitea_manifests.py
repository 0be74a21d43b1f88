"""The manifests that run Gitea in the cluster (lab/resources/gitea/) agree with lab.config.

Parsed as lab applies them (lab.gitea.gitea_manifests) and as kustomize renders the
directory; no cluster is needed.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from lab.config import Config
from lab.gitea import (
    ADMIN_SECRET_KEYS,
    ADMIN_SECRET_NAME,
    MANIFESTS_DIR,
    admin_secret,
    gitea_manifests,
)
from lab.proc import run
from tests.integration.gitserver.support import (
    app_ini,
    free_port,
    gitea_binary,
    gitea_env,
    kustomize_argv,
)
from tests.support import manifest_checks

pytestmark = pytest.mark.integration

SECRET_NAMES = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.IGNORECASE)


def by_kind(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds: dict[str, dict[str, Any]] = {}
    for document in documents:
        assert document["kind"] not in kinds, f"two {document['kind']} objects"
        kinds[document["kind"]] = document
    return kinds


@pytest.fixture
def objects() -> dict[str, dict[str, Any]]:
    return by_kind(gitea_manifests(Config()))


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    pod = deployment["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def test_root_url_is_the_url_argocd_uses(objects: dict[str, dict[str, Any]]) -> None:
    config = Config()
    env = objects["ConfigMap"]["data"]
    assert env["GITEA__server__ROOT_URL"] == config.gitea_internal_url + "/"
    assert (
        urlsplit(env["GITEA__server__ROOT_URL"]).hostname
        == urlsplit(config.gitops_repo_url).hostname
    )
    assert env["GITEA__server__DOMAIN"] == urlsplit(config.gitops_repo_url).hostname
    assert env["GITEA__database__DB_TYPE"] == "sqlite3"
    assert env["GITEA__security__INSTALL_LOCK"] == "true"
    assert "private" in env["GITEA__webhook__ALLOWED_HOST_LIST"].split(",")


def test_the_service_is_the_contract_one_with_the_configured_node_port(
    objects: dict[str, dict[str, Any]],
) -> None:
    config = Config()
    service = objects["Service"]
    host, port = (
        urlsplit(config.gitea_internal_url).hostname,
        urlsplit(config.gitea_internal_url).port,
    )
    assert (
        f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
        == host
    )
    assert service["spec"]["type"] == "NodePort"
    assert [(p["port"], p["nodePort"]) for p in service["spec"]["ports"]] == [
        (port, config.gitea_node_port)
    ]
    assert service["spec"]["selector"].items() <= (
        objects["Deployment"]["spec"]["template"]["metadata"]["labels"].items()
    )


def test_no_secret_value_is_inline(objects: dict[str, dict[str, Any]]) -> None:
    assert "Secret" not in objects
    assert not [key for key in objects["ConfigMap"]["data"] if SECRET_NAMES.search(key)]
    used = set()
    for container in containers(objects["Deployment"]):
        for variable in container.get("env", []):
            if SECRET_NAMES.search(variable["name"]):
                assert "value" not in variable, variable["name"]
            reference = variable.get("valueFrom", {}).get("secretKeyRef")
            if reference:
                assert reference["name"] == ADMIN_SECRET_NAME
                used.add(reference["key"])
    assert used == set(ADMIN_SECRET_KEYS)
    secret = admin_secret(Config(), username="u", password="p", secret_key="s", internal_token="t")
    assert set(secret["stringData"]) == used
    assert secret["metadata"]["namespace"] == Config().gitea_namespace


def test_gitea_runs_rootless_bounded_and_probed(objects: dict[str, dict[str, Any]]) -> None:
    deployment = objects["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    for container in containers(deployment):
        assert container["image"] == Config().gitea_image
        assert container["image"].endswith("-rootless")
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
    (main,) = pod["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert main[probe]["httpGet"]["path"] == "/api/healthz"
    volumes = {v["name"]: v for v in pod["volumes"]}
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in volumes.values()
        if "persistentVolumeClaim" in v
    }
    assert claims == {objects["PersistentVolumeClaim"]["metadata"]["name"]}  # one volume
    mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
    assert mounts["/var/lib/gitea"]["name"] in volumes
    assert "subPath" not in mounts["/var/lib/gitea"]
    config = objects["ConfigMap"]["data"]["GITEA_APP_INI"]
    assert config.startswith("/var/lib/gitea/")  # the configuration is on the one volume


def test_the_admin_is_created_by_an_init_container_keeping_the_entrypoint(
    objects: dict[str, dict[str, Any]],
) -> None:
    (init,) = objects["Deployment"]["spec"]["template"]["spec"]["initContainers"]
    assert "command" not in init  # the image's entrypoint writes app.ini, then runs args
    script = init["args"][-1]
    assert "gitea migrate" in script
    assert "gitea admin user create --admin" in script
    assert "--must-change-password=false" in script
    assert '"$GITEA_ADMIN_PASSWORD"' in script


def test_overridden_settings_reach_the_manifests() -> None:
    config = dataclasses.replace(
        Config(), gitea_node_port=31999, gitea_namespace="git", gitea_image="example/gitea:x"
    )
    objects = by_kind(gitea_manifests(config))

    assert objects["Namespace"]["metadata"]["name"] == "git"
    assert {o["metadata"].get("namespace") for k, o in objects.items() if k != "Namespace"} == {
        "git"
    }
    assert objects["Service"]["spec"]["ports"][0]["nodePort"] == 31999
    assert objects["ConfigMap"]["data"]["GITEA__server__ROOT_URL"] == (
        "http://gitea-http.git.svc.cluster.local:3000/"
    )
    assert {c["image"] for c in containers(objects["Deployment"])} == {"example/gitea:x"}
    assert by_kind(gitea_manifests(Config()))["Service"]["spec"]["ports"][0]["nodePort"] == 30300


def test_kustomize_renders_the_same_objects_as_lab_applies() -> None:
    rendered = [
        d for d in yaml.safe_load_all(run(kustomize_argv(MANIFESTS_DIR), timeout=60).stdout) if d
    ]
    assert by_kind(rendered) == by_kind(gitea_manifests(Config()))


def test_the_init_script_creates_the_admin_then_resets_its_password(tmp_path: Path) -> None:
    """The init container's script, run twice against a real Gitea's database."""
    binary = gitea_binary()
    root = tmp_path / "gitea"
    root.mkdir()
    config = root / "app.ini"
    config.write_text(app_ini(root, free_port(), binary.parent))
    bindir = tmp_path / "bin"  # the rootless image's `gitea` wrapper adds the config
    bindir.mkdir()
    wrapper = bindir / "gitea"
    wrapper.write_text(f'#!/bin/sh\nexec {binary} --config {config} "$@"\n')
    wrapper.chmod(0o755)
    (init,) = by_kind(gitea_manifests(Config()))["Deployment"]["spec"]["template"]["spec"][
        "initContainers"
    ]
    assert init["args"][:2] == ["/bin/bash", "-ec"]
    env = {
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "GITEA_WORK_DIR": str(root),
        "GITEA_ADMIN_USERNAME": "lab-admin",
        "GITEA_ADMIN_PASSWORD": "first-password",
        **gitea_env(),
    }

    first = run(("bash", "-ec", init["args"][2]), timeout=120, env=env)
    second = run(
        ("bash", "-ec", init["args"][2]),
        timeout=120,
        env={**env, "GITEA_ADMIN_PASSWORD": "second-password"},
    )

    assert "created" in (first.stdout + first.stderr).lower()
    assert "successfully updated" in (second.stdout + second.stderr).lower()
    listed = run((str(wrapper), "admin", "user", "list", "--admin"), timeout=60, env=env)
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert [row[:2] for row in rows if row[1:2] == ["lab-admin"]] == [["1", "lab-admin"]]


def test_the_manifests_match_the_kubernetes_schema() -> None:
    # built-in kinds only: Kubernetes' strict schemas (kubernetes-validate), no CRDs needed
    schemas = manifest_checks.SchemaSet(manifest_checks.kubernetes_version(), crds=())
    objects = gitea_manifests(Config())
    assert schemas.validate_all(objects) == []
    broken = copy.deepcopy(objects)
    by_kind(broken)["Deployment"]["spec"]["template"]["spec"]["containers"][0]["port"] = 3000
    assert schemas.validate_all(broken) != []  # the check does look at the fields
