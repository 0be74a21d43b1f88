"""The stack runs together behind the edge proxy and passes the real smoke test."""

from __future__ import annotations

import collections

import httpx
import pytest

from tests.container.conftest import SHA_V1, SHA_V2
from tests.container.stack import Stack, Upstream, render_edge_config

pytestmark = pytest.mark.container


def test_every_container_is_healthy(stack: Stack) -> None:
    stack.wait_healthy(list(stack.containers), deadline=30)


def test_every_object_carries_the_lab_label(stack: Stack) -> None:
    for container in stack.containers.values():
        assert container.labels.get("dev.lab.managed") == "true"
    network = stack.client.networks.get(stack.network_name)
    assert network.attrs["Labels"].get("dev.lab.managed") == "true"
    volume = stack.client.volumes.get(stack.volume_name)
    assert volume.attrs["Labels"].get("dev.lab.managed") == "true"


def test_smoke_image_passes_against_the_stack(stack: Stack) -> None:
    run = stack.smoke()
    assert run.exit_code == 0, run.logs


@pytest.mark.parametrize(("variant", "commit"), [("v1", SHA_V1), ("v2", SHA_V2)])
def test_x_version_header_pins_a_backend_variant(stack: Stack, variant: str, commit: str) -> None:
    for _ in range(5):
        answer = httpx.get(
            f"{stack.edge_url}/api/version", headers={"x-version": variant}, timeout=5
        ).json()
        assert (answer["variant"], answer["commit"]) == (variant, commit)


def test_requests_without_header_reach_both_variants(stack: Stack) -> None:
    seen = collections.Counter(
        httpx.get(f"{stack.edge_url}/api/version", timeout=5).json()["variant"] for _ in range(20)
    )
    assert set(seen) == {"v1", "v2"}, seen


def test_frontend_and_monitor_are_served_under_their_paths(stack: Stack) -> None:
    shell = httpx.get(f"{stack.edge_url}/app/", timeout=5)
    assert shell.status_code == 200
    assert "text/html" in shell.headers["content-type"]
    assert httpx.get(f"{stack.edge_url}/status/healthz", timeout=5).status_code == 200
    root = httpx.get(f"{stack.edge_url}/", timeout=5)
    assert (root.status_code, root.headers["location"]) == (302, "/app/")


def test_edge_config_routes_like_the_virtual_service() -> None:
    config = render_edge_config(
        backends={"v1": Upstream("backend-v1", 3000), "v2": Upstream("backend-v2", 3000)},
        monitor=Upstream("monitor", 8000),
        frontend=Upstream("frontend", 8080),
        v2_weight=10,
    )
    assert "server backend-v1:3000 weight=90;" in config
    assert "server backend-v2:3000 weight=10;" in config
    assert "v2      backend_v2;" in config
    assert "proxy_pass http://monitor:8000;" in config
    assert "proxy_pass http://frontend:8080;" in config


def test_edge_config_leaves_out_a_variant_with_no_weight() -> None:
    config = render_edge_config(
        backends={"v1": Upstream("backend-v1", 3000), "v2": Upstream("backend-v2", 3000)},
        monitor=Upstream("monitor", 8000),
        frontend=Upstream("frontend", 8080),
        v2_weight=0,
    )
    split = config.split("upstream backend_split {", 1)[1].split("}", 1)[0]
    assert "backend-v2" not in split
