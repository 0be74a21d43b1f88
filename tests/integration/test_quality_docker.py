"""The quality stage's docker runner: checks in toolchain containers, on a real Engine.

Never skipped: without a daemon or the toolchain images the tests fail saying what to do
(CI starts Docker with .ci/tools/dockerd.sh and builds stand-ins with .ci/tools/standins.sh).
"""

from __future__ import annotations

import io
from pathlib import Path

import docker
import pytest

from lab import checks, quality, toolchains
from lab import engine as lab_engine
from lab.config import Config
from lab.errors import LabError
from lab.report import Status
from lab.ui import UI
from tests.integration.test_quality_host import copy_apps, failures

pytestmark = pytest.mark.container


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    try:
        engine = lab_engine.client()
    except LabError as error:
        pytest.fail(
            "the docker runner needs a running Docker Engine (CI starts one with "
            f".ci/tools/dockerd.sh):\n{error.render()}",
            pytrace=False,
        )
    for service in ("backend", "frontend"):
        image = toolchains.toolchain_image(Config(), service)
        try:
            engine.images.get(image)
        except docker.errors.ImageNotFound:
            pytest.fail(
                f"toolchain image {image} is missing: `docker pull {image}`, or build the "
                "stand-ins with .ci/tools/standins.sh",
                pytrace=False,
            )
    return engine


def snapshot(directory: Path) -> dict[str, float]:
    return {
        str(path.relative_to(directory)): path.stat().st_mtime
        for path in directory.rglob("*")
        if not path.is_symlink()
    }


def quality_containers(client: docker.DockerClient, config: Config) -> list[str]:
    label = f"{lab_engine.LAB_LABEL}={config.cluster_name}"
    prefix = f"{config.cluster_name}-quality-"
    return [
        c.name
        for c in client.containers.list(all=True, filters={"label": label})
        if c.name.startswith(prefix)
    ]


def test_docker_runner_runs_the_backend_checks_in_the_golang_toolchain(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    config = Config()
    apps = copy_apps(tmp_path / "apps")
    before = snapshot(apps)

    stage = quality.run_quality(
        UI(stream=io.StringIO()),
        config,
        services=("backend", "frontend"),
        runner="docker",
        strict=False,
        checks=(*(c.name for c in checks.CHECKS["backend"]), "npm audit"),
        apps_dir=apps,
    )

    assert [c.name for c in stage.checks] == [
        "backend: gofmt",
        "backend: go vet",
        "backend: go test",
        "backend: govulncheck",
        "frontend: npm audit",
    ]
    assert stage.status is not Status.FAILED, failures(stage)
    for check in stage.checks:
        if check.name.endswith(("govulncheck", "npm audit")):
            assert check.status in (Status.PASSED, Status.UNVERIFIED), check
            assert check.detail.startswith(("OK:", "UNVERIFIED:")), check.detail
        else:
            assert check.status is Status.PASSED, check
    assert stage.data["runner"] == "docker"
    # The checks ran on a copy: the host tree is untouched, no container is left behind,
    # and the caches are labelled volumes that `lab.down` removes.
    assert snapshot(apps) == before
    assert quality_containers(client, config) == []
    label = f"{lab_engine.LAB_LABEL}={config.cluster_name}"
    volumes = {v.name for v in client.volumes.list(filters={"label": label})}
    assert {f"{config.cluster_name}-quality-{s}" for s in ("gomod", "gobuild", "npm")} <= volumes


def test_docker_runner_reports_a_failing_check_with_its_output(
    client: docker.DockerClient, tmp_path: Path
) -> None:
    apps = copy_apps(tmp_path / "apps")
    (apps / "backend" / "zz_unformatted.go").write_text("package main\nfunc  unformatted( ) {}\n")

    stage = quality.run_quality(
        UI(stream=io.StringIO()),
        Config(),
        services=("backend",),
        runner="docker",
        strict=False,
        checks=("gofmt", "go vet"),
        apps_dir=apps,
    )

    gofmt, vet = stage.checks
    assert stage.status is Status.FAILED
    assert (gofmt.status, vet.status) == (Status.FAILED, Status.PASSED)
    assert gofmt.detail == "gofmt lists 1 file(s): zz_unformatted.go"
    assert "zz_unformatted.go" in gofmt.output
    assert stage.summary == "backend ✗ (gofmt failed)"
