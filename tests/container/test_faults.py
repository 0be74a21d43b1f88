"""Faults: the smoke test names what broke, and the stack recovers without losing users.

Each test restores the stack before it returns, so the order of tests does not matter.
"""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.container.conftest import wait_http
from tests.container.stack import Stack

pytestmark = pytest.mark.container


def _register(stack: Stack) -> tuple[str, str]:
    username = f"user{secrets.token_hex(4)}"
    password = f"pw-{secrets.token_hex(8)}"
    response = httpx.post(
        f"{stack.edge_url}/api/register",
        json={"username": username, "password": password},
        timeout=10,
    )
    assert response.status_code in (200, 201), response.text
    return username, password


def _login(stack: Stack, username: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{stack.edge_url}/api/login",
        json={"username": username, "password": password},
        timeout=10,
    )


def test_redis_outage_makes_backend_unready_and_smoke_name_redis(stack: Stack) -> None:
    username, password = _register(stack)
    stack.stop("redis")
    try:
        for variant in ("v1", "v2"):
            wait_http(f"{stack.edge_url}/api/ready", 503, headers={"x-version": variant})
        run = stack.smoke()
        print(run.logs)  # shown with -rP: what a user sees when redis is down
        assert run.exit_code != 0, run.logs
        assert "redis" in run.logs.lower(), run.logs
    finally:
        stack.start_again("redis")
        stack.wait_healthy(["redis"])
    for variant in ("v1", "v2"):
        wait_http(f"{stack.edge_url}/api/ready", 200, headers={"x-version": variant})
    login = _login(stack, username, password)
    assert login.status_code == 200, f"user lost across the redis restart: {login.text}"


@pytest.mark.parametrize("variant", ["v2", "v1"])
def test_stopped_backend_variant_makes_smoke_name_it(stack: Stack, variant: str) -> None:
    role = f"backend-{variant}"
    stack.stop(role)
    try:
        run = stack.smoke()
        print(run.logs)  # shown with -rP: what a user sees when a variant is down
        assert run.exit_code != 0, run.logs
        assert f"variant {variant}" in run.logs, run.logs
    finally:
        stack.start_again(role)
        stack.wait_healthy([role])
        stack.reload_edge()  # the restarted container may have a new address
    wait_http(f"{stack.edge_url}/api/ready", 200, headers={"x-version": variant})
    assert stack.smoke().exit_code == 0
