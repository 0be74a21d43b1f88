"""lab.config: defaults, overrides from invoke.yaml and the environment, bad values."""

from __future__ import annotations

import pytest

from lab import config
from lab.errors import ConfigError


def test_defaults_follow_the_design() -> None:
    c = config.load({}, {})
    assert c.registry_port == 5001
    assert c.ingress_http_port == 8080
    assert c.ingress_node_port == 30080
    assert c.bind_address == "127.0.0.1"
    assert "@sha256:" in c.kind_node_image
    assert c.gitops_repo_url == "http://gitea-http.gitea.svc.cluster.local:3000/lab/gitops.git"
    assert (c.dev_v2_weight, c.prod_v2_weight) == (50, 10)


def test_invoke_yaml_overrides_defaults_and_environment_overrides_both() -> None:
    c = config.load(
        {"ingress_http_port": 8181, "cluster_name": "workshop"},
        {"LAB_INGRESS_HTTP_PORT": "8282"},
    )
    assert c.ingress_http_port == 8282
    assert c.cluster_name == "workshop"


def test_unknown_key_names_the_key_and_suggests_the_closest() -> None:
    with pytest.raises(ConfigError) as caught:
        config.load({"ingres_http_port": 1}, {})
    assert "ingres_http_port" in caught.value.message
    assert caught.value.hint and "ingress_http_port" in caught.value.hint


def test_unknown_environment_variable_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        config.load({}, {"LAB_NO_SUCH_SETTING": "1"})
    assert "LAB_NO_SUCH_SETTING" in caught.value.message


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"registry_port": "five"}, "registry_port"),
        ({"registry_port": True}, "registry_port"),
        ({"registry_port": 70000}, "registry_port"),
        ({"ingress_node_port": 8080}, "ingress_node_port"),
        ({"gitea_http_port": 8080}, "gitea_http_port"),
        ({"dev_v2_weight": 120}, "dev_v2_weight"),
        ({"cluster_name": "Bad_Name"}, "cluster_name"),
        ({"kind_node_image": "kindest/node:v1.36.1"}, "kind_node_image"),
        ({"sync_timeout": 0}, "sync_timeout"),
        ({"cluster_name": ["a"]}, "cluster_name"),
    ],
)
def test_bad_values_are_refused_naming_the_key(overrides: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(overrides, {})
    assert named in caught.value.message
    assert caught.value.hint


def test_describe_lists_every_setting() -> None:
    keys = [key for key, _ in config.describe(config.load({}, {}))]
    assert "kind_version" in keys and "argocd_http_port" in keys
    assert len(keys) == len(set(keys))


def test_tool_and_ci_variables_are_not_taken_for_settings() -> None:
    environ = {
        "LAB_DEBUG": "1",
        "LAB_E2E": "1",
        "LAB_TOOLS_MIRROR": "http://mirror",
        "LAB_CACHE_DIR": "/tmp/c",
        "LAB_KUSTOMIZE": "/x/kustomize",
        "LAB_ISTIOCTL": "/x/istioctl",
        "LAB_GITEA": "/x/gitea",
        "LAB_STANDINS": "/x",
    }
    assert config.load({}, environ) == config.load({}, {})
