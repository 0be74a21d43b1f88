"""The build plan: tags, build args and labels per service (pure, table-driven)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from lab import images
from lab.config import Config
from lab.errors import LabError
from tests.conftest import REPO

SHA = "0123456789abcdef0123456789abcdef01234567"
CREATED = datetime(2026, 11, 26, 4, 30, 15, tzinfo=UTC)


def _plan(**overrides: object) -> tuple[images.BuildPlan, ...]:
    arguments: dict[str, object] = {
        "sha": SHA,
        "branch": "main",
        "version": "1.4.0",
        "created": CREATED,
        "registry": Config().registry_host,
        "apps_dir": Path("/src/apps"),
    }
    arguments.update(overrides)
    return images.plan_builds(**arguments)  # type: ignore[arg-type]


def test_plan_covers_every_service_in_order() -> None:
    assert [plan.service for plan in _plan()] == ["backend", "frontend", "monitor", "smoke"]


@pytest.mark.parametrize(
    ("service", "expected_tags"),
    [
        (
            "backend",
            (f"localhost:5001/lab/backend:{SHA}", "localhost:5001/lab/backend:main"),
        ),
        (
            "smoke",
            (f"localhost:5001/lab/smoke:{SHA}", "localhost:5001/lab/smoke:main"),
        ),
    ],
)
def test_plan_tags_images_with_full_sha_then_branch(
    service: str, expected_tags: tuple[str, str]
) -> None:
    (plan,) = _plan(services=[service])
    assert plan.tags == expected_tags
    assert plan.repository == f"localhost:5001/lab/{service}"
    assert plan.context == Path("/src/apps") / service


def test_plan_passes_the_contract_build_args() -> None:
    (plan,) = _plan(services=["monitor"], environment="prod", source="https://example.test/lab")
    assert plan.buildargs == {
        "VERSION": "1.4.0",
        "REVISION": SHA,
        "CREATED": "2026-11-26T04:30:15Z",
        "SOURCE": "https://example.test/lab",
        "ENVIRONMENT": "prod",
    }


def test_plan_labels_images_with_their_service_only() -> None:
    # The OCI labels are the Dockerfiles' job (from the build args); the container tier
    # checks them on the built images.
    (plan,) = _plan(services=["frontend"])
    assert plan.labels == {"dev.lab.service": "frontend"}


def test_plan_uses_another_registry_when_asked() -> None:
    (plan,) = _plan(services=["backend"], registry="registry.example:5000")
    assert plan.tags[0] == f"registry.example:5000/lab/backend:{SHA}"


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05Z"),
        (
            datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            "2026-01-02T03:04:05Z",
        ),
        (datetime(2026, 1, 2, 3, 4, 5, 999, tzinfo=UTC), "2026-01-02T03:04:05Z"),
    ],
)
def test_created_is_rfc3339_in_utc(created: datetime, expected: str) -> None:
    assert images.rfc3339(created) == expected


def test_created_must_carry_a_timezone() -> None:
    with pytest.raises(ValueError, match="timezone"):
        images.rfc3339(datetime(2026, 1, 2))


@pytest.mark.parametrize(
    ("branch", "tag"),
    [
        ("main", "main"),
        ("feature/login", "feature-login"),
        ("promote-" + SHA, "promote-" + SHA),
        ("-weird", "weird"),
        (".hidden", "hidden"),
        ("release/1.2", "release-1.2"),
        ("x" * 200, "x" * 128),
        ("ünïcode", "n-code"),
    ],
)
def test_branch_names_become_valid_docker_tags(branch: str, tag: str) -> None:
    assert images.branch_tag(branch) == tag


@pytest.mark.parametrize("branch", ["", "///", "--"])
def test_branch_without_usable_characters_is_refused(branch: str) -> None:
    with pytest.raises(LabError, match="no usable image tag"):
        images.branch_tag(branch)


@pytest.mark.parametrize("sha", ["abc123", SHA.upper(), SHA + "0", "g" * 40, ""])
def test_plan_refuses_anything_but_a_full_sha(sha: str) -> None:
    with pytest.raises(LabError, match="not a full 40-hex SHA") as caught:
        _plan(sha=sha)
    assert caught.value.hint and "rev-parse" in caught.value.hint


def test_plan_refuses_unknown_services() -> None:
    with pytest.raises(LabError, match="unknown service") as caught:
        _plan(services=["backend", "database"])
    assert "database" in str(caught.value)


def test_building_a_service_without_dockerfile_says_which(tmp_path: Path) -> None:
    (plan,) = _plan(services=["smoke"], apps_dir=tmp_path)
    with pytest.raises(images.ImageBuildError, match="no Dockerfile") as caught:
        images.build_image(None, plan)  # fails before buildx runs
    assert caught.value.service == "smoke"


def test_a_refused_pull_says_what_the_registry_said_and_what_to_do() -> None:
    from lab import engine

    error = engine.pull_refused(
        "redis:7.4-bookworm",
        "toomanyrequests: You have reached your unauthenticated pull rate limit.",
    )
    assert error.message.startswith("cannot pull redis:7.4-bookworm: toomanyrequests")
    assert "docker login" in (error.hint or "")
    other = engine.pull_refused("x:1", "manifest unknown")
    assert "check the name and tag" in (other.hint or "")


def test_references_split_for_the_pull_api() -> None:
    from lab import engine

    assert engine.split_tag("redis:7") == ("redis", "7")
    assert engine.split_tag("localhost:5001/lab/backend") == ("localhost:5001/lab/backend", "latest")
    assert engine.split_tag("aquasec/trivy:0.68.2@sha256:ab") == ("aquasec/trivy", "sha256:ab")


def test_the_base_image_settings_reach_only_the_dockerfiles_that_declare_them() -> None:
    bases = {"GO_IMAGE": "go:x", "NODE_IMAGE": "node:x", "NGINX_IMAGE": "nginx:x",
             "PYTHON_IMAGE": "python:x"}  # fmt: skip
    plans = {p.service: p.buildargs for p in _plan(base_images=bases, apps_dir=REPO / "apps")}

    assert plans["backend"]["GO_IMAGE"] == "go:x" and "NGINX_IMAGE" not in plans["backend"]
    assert (plans["frontend"]["NODE_IMAGE"], plans["frontend"]["NGINX_IMAGE"]) == ("node:x", "nginx:x")
    assert plans["monitor"]["PYTHON_IMAGE"] == "python:x" and "GO_IMAGE" not in plans["monitor"]
    assert plans["smoke"]["GO_IMAGE"] == "go:x"


def test_ci_builds_a_stand_in_for_every_base_image_setting() -> None:
    # Our CI cannot pull: .ci/tools/standins.sh must build each base under its name.
    from lab.config import Config

    script = (REPO / ".ci" / "tools" / "standins.sh").read_text()
    for image in Config().base_images.values():
        assert f"\nbuild {image} " in script, f"no stand-in for {image} in .ci/tools/standins.sh"


def test_each_dependency_stage_can_be_replaced_by_its_bundled_image() -> None:
    # Offline, a build starts from the bundled image of the stage that downloads: the
    # Dockerfile must name that stage `deps` and start the next one `FROM ${DEPS}`.
    for service, stage in images.DEPENDENCY_STAGES.items():
        text = (images.APPS_DIR / service / "Dockerfile").read_text()
        before_first_from = text.split("\nFROM ", 1)[0]
        assert f"ARG {images.DEPENDENCY_ARG}={stage}" in before_first_from, service
        assert f" AS {stage}\n" in text, service
        assert f"\nFROM ${{{images.DEPENDENCY_ARG}}} AS " in text, service
