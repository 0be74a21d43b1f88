"""The base images behave like the official ones the Dockerfiles name.

On our CI these are the stand-ins of .ci/tools/standins.sh (label dev.lab.standin=true);
elsewhere the real images. The same checks hold for both.
"""

from __future__ import annotations

import docker
import pytest

from lab import engine as lab_engine

pytestmark = pytest.mark.container

CHECKS = [
    (
        "golang:1.26-trixie",
        "go version && go env GOPATH GOROOT",
        ["go1.26", "/go\n/usr/local/go"],
    ),
    ("node:20-trixie-slim", "node --version && npm --version && id -u node", ["v20.", "\n1000"]),
    (
        "python:3.13-slim-trixie",
        "python --version && python3 --version && pip --version",
        ["Python 3.13", "pip "],
    ),
    (
        "nginx:1.30-trixie",
        "id -u nginx && nginx -t 2>&1 && grep -c 'include /etc/nginx/conf.d/\\*.conf' "
        "/etc/nginx/nginx.conf && readlink /var/log/nginx/access.log",
        ["101\n", "test is successful", "\n1\n", "/dev/stdout"],
    ),
    ("redis:7-bookworm", "redis-server --version && id -u && pwd", ["v=7.", "999\n/data"]),
]


@pytest.mark.parametrize(("image", "script", "expected"), CHECKS, ids=[c[0] for c in CHECKS])
def test_base_image_behaves_like_the_official_one(
    client: docker.DockerClient, base_images: None, image: str, script: str, expected: list[str]
) -> None:
    output = client.containers.run(
        image,
        ["-c", script],
        entrypoint=["sh"],
        remove=True,
        labels={lab_engine.LAB_LABEL: "true"},
    ).decode()
    for fragment in expected:
        assert fragment in output, f"{image}: {fragment!r} not in:\n{output}"


def test_pip_install_works_as_root_in_the_python_image(
    client: docker.DockerClient, base_images: None
) -> None:
    # The official image's Python is not "externally managed": a plain pip install works.
    output = client.containers.run(
        "python:3.13-slim-trixie",
        [
            "-c",
            "pip install --no-index --dry-run pip 2>&1 || true; python -m venv /tmp/v && "
            "/tmp/v/bin/python -c 'import sys; print(sys.prefix)'",
        ],
        entrypoint=["sh"],
        remove=True,
        labels={lab_engine.LAB_LABEL: "true"},
    ).decode()
    assert "externally-managed-environment" not in output, output
    assert "/tmp/v" in output, output
