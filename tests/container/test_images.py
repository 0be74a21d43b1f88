"""Every service image, built from its real Dockerfile by lab.images, checked as shipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from lab import distribution, images
from lab.config import Config
from lab.errors import LabError
from tests.container.conftest import CREATED, SHA_V1, SHA_V2, SOURCE

pytestmark = pytest.mark.container

MB = 1_000_000
# Size budgets of the final images, uncompressed, as `docker image inspect` reports them.
# The monitor carries a Python runtime (Debian's slim base is ~75 MB of it).
SIZE_BUDGETS = {"backend-v1": 30 * MB, "monitor": 200 * MB}
# The frontend is its build on top of nginx's Debian image, which alone is ~96 MB (the
# stand-in) to ~190 MB (the official nginx:1.30-trixie): its budget is what it adds.
ADDED_SIZE_BUDGETS = {"frontend": ("nginx:1.30-trixie", 60 * MB)}
SERVICE_OF = {"backend-v1": "backend", "backend-v2": "backend"}


def _inspect(client: docker.DockerClient, reference: str) -> dict[str, Any]:
    data: dict[str, Any] = client.api.inspect_image(reference)
    return data


@pytest.mark.parametrize("key", ["backend-v1", "backend-v2", "frontend", "monitor", "smoke"])
def test_image_is_tagged_with_full_sha_and_branch(
    client: docker.DockerClient, built: dict[str, images.BuiltImage], key: str
) -> None:
    image = built[key]
    sha = SHA_V1 if key == "backend-v1" else SHA_V2
    service = SERVICE_OF.get(key, key)
    assert image.tags[0] == f"localhost:5001/lab/{service}:{sha}"
    repo_tags = _inspect(client, image.image_id)["RepoTags"]
    assert set(image.tags) <= set(repo_tags)


@pytest.mark.parametrize("key", ["backend-v1", "backend-v2", "frontend", "monitor", "smoke"])
def test_image_carries_correct_oci_labels(
    client: docker.DockerClient, built: dict[str, images.BuiltImage], key: str
) -> None:
    labels = _inspect(client, built[key].image_id)["Config"]["Labels"] or {}
    service = SERVICE_OF.get(key, key)
    expected = {
        "org.opencontainers.image.created": images.rfc3339(CREATED),
        "org.opencontainers.image.revision": SHA_V1 if key == "backend-v1" else SHA_V2,
        "org.opencontainers.image.source": SOURCE,
        "org.opencontainers.image.title": f"lab-{service}",
        "org.opencontainers.image.version": "1.0.0" if key == "backend-v1" else "2.0.0",
    }
    assert {name: labels.get(name) for name in expected} == expected


@pytest.mark.parametrize("key", ["backend-v1", "frontend", "monitor", "smoke"])
def test_image_runs_as_a_numeric_non_root_user(
    client: docker.DockerClient, built: dict[str, images.BuiltImage], key: str
) -> None:
    user = _inspect(client, built[key].image_id)["Config"]["User"] or "root"
    name = user.split(":", 1)[0]
    assert name.isdigit(), f"USER {user!r}: Kubernetes' runAsNonRoot needs a numeric uid"
    assert int(name) != 0


def test_backend_image_has_no_shell(
    client: docker.DockerClient, built: dict[str, images.BuiltImage]
) -> None:
    for shell in ("/bin/sh", "/bin/bash", "/busybox"):
        container = client.containers.create(
            built["backend-v1"].image_id,
            entrypoint=[shell],
            command=["-c", "true"],
            network_disabled=True,
            labels={"dev.lab.managed": "true"},
        )
        try:
            with pytest.raises(docker.errors.APIError) as caught:
                container.start()
            assert "no such file or directory" in str(caught.value).lower()
        finally:
            container.remove(force=True)


@pytest.mark.parametrize(("key", "budget"), sorted(SIZE_BUDGETS.items()))
def test_image_stays_within_its_size_budget(
    client: docker.DockerClient, built: dict[str, images.BuiltImage], key: str, budget: int
) -> None:
    size = int(_inspect(client, built[key].image_id)["Size"])
    assert size <= budget, f"{key} image is {size / MB:.1f} MB, budget {budget / MB:.0f} MB"


@pytest.mark.parametrize("key", sorted(ADDED_SIZE_BUDGETS))
def test_image_adds_no_more_than_its_budget_to_its_base(
    client: docker.DockerClient, built: dict[str, images.BuiltImage], key: str
) -> None:
    base, budget = ADDED_SIZE_BUDGETS[key]
    added = int(_inspect(client, built[key].image_id)["Size"]) - int(_inspect(client, base)["Size"])
    assert added <= budget, f"{key} adds {added / MB:.1f} MB to {base}, budget {budget / MB:.0f}"


def test_rebuild_of_an_unchanged_tree_comes_from_cache(
    client: docker.DockerClient,
    built: dict[str, images.BuiltImage],
    plans: dict[str, images.BuildPlan],
) -> None:
    again = images.build_images(client, [plans["monitor"], plans["smoke"]])
    for first, second in zip([built["monitor"], built["smoke"]], again, strict=True):
        assert second.fully_cached, f"{second.service}: {second.cached_steps}/{second.steps}"
        assert second.image_id == first.image_id


def test_failed_build_names_the_service_and_the_failing_step(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    context = tmp_path / "monitor"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "FROM scratch\nCOPY present.txt /\nCOPY missing.txt /\n", encoding="utf-8"
    )
    (context / "present.txt").write_text("here\n", encoding="utf-8")
    plans = images.plan_builds(
        registry=Config().registry_host,
        sha=SHA_V2,
        branch="broken",
        version="0",
        created=CREATED,
        services=["monitor"],
        apps_dir=tmp_path,
    )
    with pytest.raises(images.ImageBuildError) as caught:
        images.build_images(client, plans)
    error = caught.value
    assert error.service == "monitor"
    assert error.step == "[2/2] COPY missing.txt /"
    assert "missing.txt" in (error.output_tail or "")
    rendered = error.render()
    assert "building the monitor image failed at [2/2] COPY missing.txt /" in rendered
    assert "Traceback" not in rendered


def test_push_to_an_unreachable_registry_names_the_service_and_reference(
    client: docker.DockerClient, built: dict[str, images.BuiltImage]
) -> None:
    reference = "127.0.0.1:9/lab/smoke:container-tier"  # port 9 (discard): nothing listens
    client.api.tag(built["smoke"].image_id, "127.0.0.1:9/lab/smoke", "container-tier")
    unreachable = images.BuiltImage(
        service="smoke",
        image_id=built["smoke"].image_id,
        tags=(reference,),
        seconds=0.0,
        steps=0,
        cached_steps=0,
    )
    try:
        with pytest.raises(LabError) as caught:
            distribution.push_images(client, [unreachable])
    finally:
        client.images.remove(reference)
    assert f"pushing the smoke image {reference} failed" in caught.value.message
    assert caught.value.hint and "registry" in caught.value.hint


def test_the_monitor_image_carries_no_pip_or_setuptools(
    client: docker.DockerClient, built: dict[str, images.BuiltImage]
) -> None:
    # A scanner reads every .dist-info: venv's bundled setuptools had fixable HIGH CVEs
    # (CVE-2024-6345, CVE-2025-47273), and the service never runs pip (issue #16.13).
    listing = client.containers.run(
        built["monitor"].image_id,
        entrypoint=["python", "-c", "import pathlib; print(*sorted(p.name for p in "
                    "pathlib.Path('/opt/venv/lib').glob('python*/site-packages/*')))"],
        remove=True,
    ).decode()
    names = listing.split()
    assert any(name.lower().startswith("flask") for name in names), names
    assert not [n for n in names if n.lower().startswith(("pip", "setuptools"))], names
