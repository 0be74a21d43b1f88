"""Pushing to a real registry (Debian's docker-registry, the same distribution code as
`registry:3`) and lab.up's "images already in the registry" convergence."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lab import cli, config, context, distribution, engine, images
from lab.state import State
from lab.ui import UI
from lab.up import images as up_images

pytestmark = pytest.mark.container


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[int]:
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail(
            "docker-registry is not installed: apt-get install -y docker-registry (.ci/run does)"
        )
    port = _free_port()
    settings = tmp_path / "registry.yml"
    settings.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (tmp_path / "registry.log").open("w")
    server = subprocess.Popen(
        [binary, "serve", str(settings)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"docker-registry did not answer: {(tmp_path / 'registry.log').read_text()[-2000:]}"
                )
            time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def test_up_builds_pushes_then_finds_the_images_already_there(
    tmp_path: Path, registry: int
) -> None:
    cfg = config.load({"registry_port": registry, "state_dir": str(tmp_path / "state")}, {})
    lab = context.Lab(
        cli.Context(config=cfg, ui=UI()), context.UpOptions(), State.load(cfg.state_path)
    )
    client = engine.client()
    try:
        first = up_images.ensure_images(lab)
        assert first == f"built and pushed {', '.join(images.SERVICES)}"
        for service in images.SERVICES:
            tags = httpx.get(
                f"http://127.0.0.1:{registry}/v2/lab/{service}/tags/list", timeout=10
            ).json()
            assert "main" in tags["tags"], tags
        # What a deploy pins: the digest the push reports is the one the registry serves.
        held = distribution.registry_digests(f"localhost:{registry}", images.SERVICES, "main")
        assert sorted(held) == sorted(images.SERVICES), held
        pushed = distribution.push_one(client, "smoke", f"localhost:{registry}/lab/smoke", "main")
        assert pushed == held["smoke"], (pushed, held)
        again = up_images.ensure_images(lab)
        assert again == f"{len(images.SERVICES)} images already in localhost:{registry}"
    finally:
        for service in images.SERVICES:
            for image in client.images.list(name=f"localhost:{registry}/lab/{service}"):
                for tag in image.tags:
                    client.images.remove(tag, noprune=True)
