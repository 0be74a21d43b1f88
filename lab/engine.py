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
