"""The Docker Engine, through the docker SDK: reachability, capacity, lab-owned objects.

Every client lab uses is made by `client()`, which also makes each of its API calls
visible: at -v, one line per call (`on_call`), the way `lab.proc` shows each command;
in the log always. This module is the one that imports docker-py: the rest of lab finds
objects with `find_image`, `find_container` and `find_volume` (None when there is none),
and turns Docker's errors into a LabError with `doing(what)`, the one translation.
`ERRORS` is what any docker-py call raises when the daemon refuses.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.tls
import requests
import requests.exceptions

from lab.errors import LabError

log = logging.getLogger("lab.engine")

# Every container, network and volume the lab creates carries this label, so teardown can
# find (and prove the absence of) everything that is ours.
LAB_LABEL = "dev.lab.managed"

CONNECT_TIMEOUT = 10
# What a docker-py call raises when the daemon refuses or does not answer: every caller
# catches this one tuple and turns it into a LabError saying what it was doing.
ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)
DEFAULT_SOCKET = "unix:///var/run/docker.sock"

_listeners: list[Callable[[str], None]] = []


def on_call(listener: Callable[[str], None]) -> None:
    """Call `listener` with a line per Docker API call (method, path, status), for `-v`."""
    _listeners.append(listener)


def _echo(response: requests.Response, *_: Any, **__: Any) -> None:
    request = response.request
    line = f"docker {request.method} {request.path_url} → {response.status_code}"
    log.debug("%s", line)
    for listener in _listeners:
        listener(line)


@dataclass(frozen=True)
class Endpoint:
    """Where the docker CLI (and so kind) talks to, and why: the same rules as the CLI."""

    host: str
    source: str  # "DOCKER_HOST", "context colima", "the default socket"
    tls_dir: Path | None = None  # ca.pem, cert.pem, key.pem of a context, when it has them
    skip_tls_verify: bool = False

    def __str__(self) -> str:
        return f"{self.host} ({self.source})"


def endpoint(environ: Mapping[str, str] = os.environ) -> Endpoint:
    """The daemon the docker CLI would use, resolved as the CLI does (pure but for files).

    `DOCKER_HOST` wins; then `DOCKER_CONTEXT`; then `currentContext` in the CLI's
    config.json (under `DOCKER_CONFIG`, default ~/.docker). docker-py's `from_env` reads
    only `DOCKER_HOST`, so on Docker Desktop, Colima, OrbStack or rootless Docker it
    would talk to another daemon than kind, or to none.
    """
    if environ.get("DOCKER_HOST"):
        return Endpoint(environ["DOCKER_HOST"], "DOCKER_HOST")
    config_dir = Path(environ.get("DOCKER_CONFIG") or Path(environ.get("HOME", "~")) / ".docker")
    name, source = environ.get("DOCKER_CONTEXT", ""), "DOCKER_CONTEXT"
    if not name:
        name, source = _current_context(config_dir / "config.json"), "docker context use"
    if name in ("", "default"):
        return Endpoint(DEFAULT_SOCKET, "the default socket")
    context_id = hashlib.sha256(name.encode()).hexdigest()
    meta_file = config_dir / "contexts" / "meta" / context_id / "meta.json"
    try:
        meta = json.loads(meta_file.read_text())
        docker_endpoint = meta["Endpoints"]["docker"]
        host = str(docker_endpoint["Host"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise LabError(
            f"the docker context {name!r} (chosen by {source}) cannot be read: {meta_file}",
            hint="`docker context ls` lists the contexts; `docker context use default` "
            "goes back to the default socket",
            output_tail=_first_line(error),
        ) from error
    tls_dir = config_dir / "contexts" / "tls" / context_id / "docker"
    return Endpoint(
        host,
        f"context {name}",
        tls_dir=tls_dir if tls_dir.is_dir() else None,
        skip_tls_verify=bool(docker_endpoint.get("SkipTLSVerify", False)),
    )


def context_name(environ: Mapping[str, str] = os.environ) -> str:
    """The docker CLI context in use (`default` when DOCKER_HOST names the daemon).

    buildx names each context's own builder (the Engine's BuildKit) after it.
    """
    if environ.get("DOCKER_HOST"):
        return "default"
    config_dir = Path(environ.get("DOCKER_CONFIG") or Path(environ.get("HOME", "~")) / ".docker")
    name = environ.get("DOCKER_CONTEXT") or _current_context(config_dir / "config.json")
    return name or "default"


def _current_context(config_file: Path) -> str:
    try:
        return str(json.loads(config_file.read_text()).get("currentContext") or "")
    except (OSError, ValueError, AttributeError):
        return ""  # no config, or one the CLI would also ignore: the default context


@dataclass(frozen=True)
class EngineInfo:
    """What the daemon says about itself."""

    server_version: str
    memory_bytes: int
    cpus: int
    root_dir: str
    operating_system: str


def client(*, read_timeout: float = CONNECT_TIMEOUT) -> docker.DockerClient:
    """A client for the daemon the docker CLI uses (`endpoint`), verified to answer.

    `read_timeout` is for calls that answer only when done (docker save and load, an
    exec that runs a check): the default is connect-sized.
    """
    where = endpoint()
    try:
        if where.source == "DOCKER_HOST":
            engine = docker.from_env(timeout=CONNECT_TIMEOUT)  # with DOCKER_TLS_VERIFY etc.
        else:
            engine = docker.DockerClient(
                base_url=where.host,
                tls=_tls(where),
                timeout=CONNECT_TIMEOUT,
                use_ssh_client=where.host.startswith("ssh://"),
            )
        engine.api.hooks["response"].append(_echo)  # requests' own hook: every call
        engine.ping()
    except ERRORS as error:
        raise unreachable(error, where) from error
    engine.api.timeout = read_timeout
    return engine


# -- the door: lookups that may find nothing, and one translation of Docker's errors

DOCKER_HINT = "is Docker Engine up and its disk not full? (`invoke lab.doctor`, `docker system df`)"


@contextmanager
def doing(what: str, *, hint: str = DOCKER_HINT) -> Iterator[None]:
    """Docker's errors inside the block as one LabError: `Docker could not <what>: ...`.

    A daemon that stopped answering says so (`unreachable`); a refusal gives Docker's own
    first line, and its whole text as the output tail.
    """
    try:
        yield
    except requests.exceptions.ConnectionError as error:
        raise unreachable(error) from error
    except ERRORS as error:
        raise LabError(
            f"Docker could not {what}: {_first_line(error)}",
            hint=hint,
            output_tail=str(error)[-2000:],
        ) from error


def find_image(engine: docker.DockerClient, reference: str) -> Any | None:
    """The image `reference` names (a name, or an ID), or None if Docker has none."""
    return _or_none(f"look up the image {reference}", lambda: engine.images.get(reference))


def has_image(engine: docker.DockerClient, reference: str) -> bool:
    return find_image(engine, reference) is not None


def find_container(engine: docker.DockerClient, name: str) -> Any | None:
    """The container called `name` (running or not), or None."""
    return _or_none(f"look up the container {name}", lambda: engine.containers.get(name))


def find_volume(engine: docker.DockerClient, name: str) -> Any | None:
    return _or_none(f"look up the volume {name}", lambda: engine.volumes.get(name))


def find_network(engine: docker.DockerClient, name: str) -> Any | None:
    """The network called exactly `name`, or None (Docker's name filter is a substring)."""
    with doing(f"look up the network {name}"):
        found = engine.networks.list(names=[name])
    return next((network for network in found if network.name == name), None)


def ensure_volume(engine: docker.DockerClient, name: str, labels: Mapping[str, str]) -> Any:
    """The volume `name`, made with `labels` if it is not there."""
    volume = find_volume(engine, name)
    if volume is not None:
        return volume
    with doing(f"create the volume {name}"):
        return engine.volumes.create(name=name, labels=dict(labels))


def remove_image(engine: docker.DockerClient, reference: str) -> bool:
    """Untag (or remove) `reference`; False if Docker had no such image."""
    return _removed(f"remove the image {reference}", lambda: engine.images.remove(reference))


def remove_volume(volume: Any) -> bool:
    """Remove `volume` (even in use by a stopped container); False if already gone."""
    return _removed(f"remove the volume {volume.name}", lambda: volume.remove(force=True))


def remove_network(network: Any) -> bool:
    return _removed(f"remove the network {network.name}", network.remove)


def remove_container(container: Any) -> bool:
    """Remove `container` and its anonymous volumes, stopped or not; False if already gone."""
    return _removed(
        f"remove the container {container.name}", lambda: container.remove(force=True, v=True)
    )


def _or_none(what: str, get: Callable[[], Any]) -> Any | None:
    """What `get()` returns, or None where Docker answers 404 (ImageNotFound included)."""
    with doing(what):
        try:
            return get()
        except docker.errors.NotFound:
            return None


def _removed(what: str, remove: Callable[[], object]) -> bool:
    """Whether `remove()` removed something: False where it was gone already (404)."""
    with doing(what):
        try:
            remove()
        except docker.errors.NotFound:
            return False
    return True


def _tls(where: Endpoint) -> docker.tls.TLSConfig | bool:
    if where.tls_dir is None:
        return False
    files = {name: where.tls_dir / f"{name}.pem" for name in ("ca", "cert", "key")}
    return docker.tls.TLSConfig(
        client_cert=(str(files["cert"]), str(files["key"])) if files["cert"].is_file() else None,
        ca_cert=str(files["ca"]) if files["ca"].is_file() else None,
        verify=not where.skip_tls_verify,
    )


def unreachable(error: BaseException, where: Endpoint | None = None) -> LabError:
    try:
        where = where or endpoint()
    except LabError:
        where = Endpoint("?", "an unreadable docker context")
    return LabError(
        f"cannot reach the Docker daemon at {where}",
        hint="start Docker (Docker Desktop, Colima, or `sudo systemctl start docker`); "
        "`docker context ls` shows which daemon the docker CLI and kind use, and "
        "DOCKER_HOST overrides it",
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
    except ERRORS as error:
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
