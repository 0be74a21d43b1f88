"""An offline build starts from the dependency stage a workshop bundle carries: with no
network, only the steps after the downloads run (issue #18). A real Go module is
downloaded once, online, into that stage; the rest happens with no network (BuildKit's
`--network none`)."""

from __future__ import annotations

import contextlib
import secrets
from datetime import UTC, datetime
from pathlib import Path

import docker
import docker.errors
import pytest

from lab import engine, images
from lab.config import Config
from lab.errors import LabError

pytestmark = pytest.mark.container

# A one-file Go program with one real dependency (the module proxy is reachable here).
MAIN_GO = """\
package main

import (
\t"fmt"

\t"golang.org/x/text/cases"
\t"golang.org/x/text/language"
)

// token {token}
func main() {{ fmt.Println(cases.Title(language.English).String("offline build")) }}
"""
DOCKERFILE = """\
ARG GO_IMAGE=golang:1.26-trixie
ARG DEPS=deps
FROM ${GO_IMAGE} AS deps
ENV GOTOOLCHAIN=local CGO_ENABLED=0
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download && go mod verify
FROM ${DEPS} AS build
COPY *.go ./
ARG REVISION=unknown
RUN go build -trimpath -o /out/app .

FROM scratch
LABEL lab.test=offline-build
COPY --from=build /out/app /app
ENTRYPOINT ["/app"]
"""


def _app(root: Path, token: str) -> Path:
    """apps/backend in `root`: the Dockerfile's stage names are the backend's."""
    app = root / "apps" / "backend"
    app.mkdir(parents=True)
    (app / "Dockerfile").write_text(DOCKERFILE)
    # A module path of its own: no layer cache from an earlier run can match.
    (app / "go.mod").write_text(
        f"module lab.test/offline{token}\n\ngo 1.26.0\n\nrequire golang.org/x/text v0.44.0\n"
    )
    sums = (Path(__file__).parent / "data" / "offline-go.sum").read_text()
    (app / "go.sum").write_text(sums)
    (app / "main.go").write_text(MAIN_GO.format(token=token))
    return root / "apps"


def test_an_offline_build_runs_from_the_bundled_dependency_stage(
    client: docker.DockerClient, base_images: None, tmp_path: Path
) -> None:
    token = secrets.token_hex(4)
    apps = _app(tmp_path, token)
    plans = images.plan_builds(
        sha=f"{token}{'0' * 32}", branch="offline", version="0",
        created=datetime(2026, 1, 1, tzinfo=UTC), services=["backend"], apps_dir=apps,
        registry=f"localhost:1/offline{token}", base_images=Config().base_images,
    )  # fmt: skip
    repository = f"lab-build-cache-test{token}"  # not the machine's own bundle caches
    cache = images.cache_image("backend", repository)
    saved = tmp_path / "cache.tar"
    # Saving, loading and removing an image of half a GB answer only when done.
    client = engine.client()  # a client of its own, with a long read timeout
    client.api.timeout = 900
    try:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(cache, force=True)
        # Offline with no dependency stage: the download step has no network.
        with pytest.raises(LabError) as refused:
            images.build_images(client, plans, offline=True, cache_repository=repository)
        assert "offline, a build step has no network" in (refused.value.hint or "")

        # The trainer's machine, online: the dependency stage as an image, saved.
        images.build_images(client, images.dependency_plans(plans, repository))
        with open(saved, "wb") as out:
            for chunk in client.images.get(cache).save(named=cache):
                out.write(chunk)
        client.images.remove(cache, force=True)
        # The participant's: loaded, then the build with no network.
        with open(saved, "rb") as handle:
            client.images.load(handle)

        lines: list[str] = []
        [built] = images.build_images(
            client,
            plans,
            offline=True,
            cache_repository=repository,
            on_log=lambda _, line: lines.append(line),
        )

        # It started from the bundled stage: the download step is not even in the build
        # (BuildKit's own cache, which a participant's machine lacks, cannot stand in).
        assert any(f"FROM docker.io/{cache}" in line for line in lines), lines
        assert not any("go mod download" in line for line in lines), lines

        # A tree whose go.mod changed since the bundle was made is refused, not built
        # with the bundle's older dependencies under the new commit's name.
        go_mod = apps / "backend" / "go.mod"
        go_mod.write_text(go_mod.read_text() + "// changed\n")
        with pytest.raises(LabError, match=r"made from other go\.mod, go\.sum") as stale:
            images.build_images(client, plans, offline=True, cache_repository=repository)
        assert "lab.bundle.create" in (stale.value.hint or "")
        output = client.containers.run(built.image_id, remove=True).decode()
        assert output.strip() == "Offline Build"
    finally:
        for tag in (*plans[0].tags, cache):
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(tag, force=True)
