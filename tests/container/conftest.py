"""Container tier: real Docker Engine, every image built from its real Dockerfile.

The tier never skips: without a reachable daemon or the base images its tests fail with
what to do. On machines that cannot pull from a registry (our CI), `.ci/tools/standins.sh`
builds local stand-ins for the base images first.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import docker
import docker.errors
import httpx
import pytest

from lab import engine as lab_engine
from lab import images
from lab.config import Config
from lab.errors import LabError
from tests.container.stack import Images, Stack, Variant, leftovers

# The upstream images the Dockerfiles build FROM (their ARG defaults), and the one the
# stack runs as is.
BASE_IMAGES = (
    "golang:1.26-trixie",
    "node:20-trixie-slim",
    "nginx:1.30-trixie",
    "python:3.13-slim-trixie",
    "redis:7-bookworm",
)

# Fixed, so that a re-run hits the layer cache everywhere (and labels can be checked).
SHA_V1 = hashlib.sha1(b"lab container tier v1").hexdigest()
SHA_V2 = hashlib.sha1(b"lab container tier v2").hexdigest()
CREATED = datetime(2026, 1, 1, tzinfo=UTC)
BRANCH = "container-tier"
SOURCE = "https://example.test/lab"


@pytest.fixture(scope="session")
def client() -> docker.DockerClient:
    try:
        return lab_engine.client()
    except LabError as error:
        failure = error.render()
    # Outside the except block, so pytest shows the message and not the exception chain.
    pytest.fail(
        "the container tier needs a running Docker Engine (CI starts one with "
        f".ci/tools/dockerd.sh):\n{failure}",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def base_images(client: docker.DockerClient) -> None:
    """Every base image is present, pulled if it can be; else fail saying how to get it."""
    missing = []
    for name in BASE_IMAGES:
        try:
            client.images.get(name)
        except docker.errors.ImageNotFound:
            repository, tag = name.split(":", 1)
            try:
                client.images.pull(repository, tag=tag)
            except docker.errors.APIError as error:
                missing.append(f"{name} ({str(error).splitlines()[0][:160]})")
    if missing:
        pytest.fail(
            "base images missing and not pullable: "
            + "; ".join(missing)
            + "\nhint: on a machine without registry access run .ci/tools/standins.sh",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def plans() -> dict[str, images.BuildPlan]:
    """backend-v1 at SHA_V1; every service (backend as v2) at SHA_V2."""
    v1 = images.plan_builds(
        registry=Config().registry_host,
        sha=SHA_V1,
        branch=BRANCH + "-v1",
        version="1.0.0",
        created=CREATED,
        source=SOURCE,
        services=["backend"],
    )
    v2 = images.plan_builds(
        registry=Config().registry_host,
        sha=SHA_V2,
        branch=BRANCH,
        version="2.0.0",
        created=CREATED,
        source=SOURCE,
    )
    found = {"backend-v1": v1[0]}
    found.update({("backend-v2" if p.service == "backend" else p.service): p for p in v2})
    return found


@pytest.fixture(scope="session")
def built(
    client: docker.DockerClient,
    base_images: None,
    plans: dict[str, images.BuildPlan],
) -> dict[str, images.BuiltImage]:
    """Every image, built with lab.images (in parallel, layer cache reused)."""
    keys = list(plans)
    try:
        results = images.build_images(client, [plans[key] for key in keys])
    except LabError as error:
        failure = error.render()
    else:
        return dict(zip(keys, results, strict=True))
    pytest.fail(failure, pytrace=False)


@pytest.fixture(scope="session")
def stack(client: docker.DockerClient, built: dict[str, images.BuiltImage]) -> Iterator[Stack]:
    prefix = f"labct-{secrets.token_hex(3)}"
    running = Stack(
        client=client,
        prefix=prefix,
        images=Images(
            backend={
                "v1": Variant("v1", "1.0.0", SHA_V1, built["backend-v1"].tags[0]),
                "v2": Variant("v2", "2.0.0", SHA_V2, built["backend-v2"].tags[0]),
            },
            monitor=built["monitor"].tags[0],
            frontend=built["frontend"].tags[0],
            smoke=built["smoke"].tags[0],
        ),
    )
    try:
        running.start()
        running.wait_healthy(["redis", "backend-v1", "backend-v2", "monitor", "frontend", "edge"])
        wait_http(f"{running.edge_url}/api/ready", 200)
        yield running
    finally:
        running.remove()
        assert leftovers(client, prefix) == [], "the stack left objects behind"


def wait_http(
    url: str, status: int, *, headers: dict[str, str] | None = None, deadline: float = 60.0
) -> httpx.Response:
    """GET `url` until it answers `status`; fail with the last answer seen."""
    stop_at = time.monotonic() + deadline
    last = "no answer yet"
    while True:
        try:
            response = httpx.get(url, headers=headers, timeout=5)
            if response.status_code == status:
                return response
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as error:
            last = f"{type(error).__name__}: {error}"
        if time.monotonic() > stop_at:
            raise AssertionError(f"{url} did not answer {status} within {deadline:.0f}s: {last}")
        time.sleep(1)
