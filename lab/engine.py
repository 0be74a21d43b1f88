"""The Docker Engine, through the docker SDK: reachability, capacity, lab-owned objects."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests.exceptions

from lab.errors import LabError

# Every container, network and volume the lab creates carries this label, so teardown can
# find (and prove the absence of) everything that is ours.
LAB_LABEL = "dev.lab.managed"

CONNECT_TIMEOUT = 10


@dataclass(frozen=True)
class EngineInfo:
    """What the daemon says about itself."""

    server_version: str
    memory_bytes: int
    cpus: int
    root_dir: str
    operating_system: str


def client() -> docker.DockerClient:
    """A client for the daemon in `DOCKER_HOST` (or the default socket), verified to answer."""
    try:
        engine = docker.from_env(timeout=CONNECT_TIMEOUT)
        engine.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise unreachable(error) from error
    return engine


def unreachable(error: BaseException) -> LabError:
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    return LabError(
        f"cannot reach the Docker daemon at {where}",
        hint="start Docker (Docker Desktop, or `sudo systemctl start docker`), "
        "or point DOCKER_HOST at a running daemon",
        output_tail=_first_line(error),
    )


def info(engine: docker.DockerClient) -> EngineInfo:
    data: dict[str, Any] = engine.info()
    return EngineInfo(
        server_version=str(data.get("ServerVersion", "?")),
        memory_bytes=int(data.get("MemTotal", 0)),
        cpus=int(data.get("NCPU", 0)),
        root_dir=str(data.get("DockerRootDir", "")),
        operating_system=str(data.get("OperatingSystem", "")),
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def pull(engine: docker.DockerClient, reference: str) -> Any:
    """Pull `reference` and return the image; the registry's own words on failure.

    docker-py's `images.pull` ignores the error chunks of the stream, so a refused pull
    (`toomanyrequests`, `unauthorized`, `manifest unknown`) surfaced as "No such image".
    """
    repository, tag = split_tag(reference)
    try:
        for chunk in engine.api.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                raise pull_refused(reference, str(chunk.get("error") or chunk))
        return engine.images.get(reference)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise pull_refused(reference, str(error)) from error


def pull_refused(reference: str, message: str) -> LabError:
    """One error for a refused pull, with the registry's message and what to do (pure)."""
    limited = "toomanyrequests" in message.lower() or "rate limit" in message.lower()
    hint = (
        "Docker Hub limits anonymous pulls: `docker login`, wait for the limit to reset, "
        "or load a workshop bundle"
        if limited
        else "check the name and tag, and that this machine reaches the registry (proxy?)"
    )
    first = message.strip().splitlines()[0] if message.strip() else "no message"
    return LabError(f"cannot pull {reference}: {first}", hint=hint, output_tail=message[-2000:])


def split_tag(reference: str) -> tuple[str, str | None]:
    """`name[:tag][@digest]` as (repository, tag or digest) for the pull API (pure)."""
    if "@" in reference:
        repository, digest = reference.split("@", 1)
        if ":" in repository.split("/")[-1]:  # name:tag@digest: the digest wins
            repository = repository.rsplit(":", 1)[0]
        return repository, digest
    last = reference.split("/")[-1]
    if ":" in last:
        repository, tag = reference.rsplit(":", 1)
        return repository, tag
    return reference, "latest"
