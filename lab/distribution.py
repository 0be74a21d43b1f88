"""Images and the registry: push (the digest each push gets), digests, mirroring.

Through the docker SDK (push, mirror) and the registry's HTTP API (what it holds, and
under which digest). A deploy pins the digests these return.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from lab import registry
from lab.config import Config
from lab.engine import ERRORS as DOCKER_ERRORS
from lab.engine import has_image
from lab.errors import LabError, tail
from lab.images import REPOSITORY_PREFIX, BuiltImage


def push_images(
    engine: Any,
    built: Sequence[BuiltImage],
) -> dict[str, str]:
    """Push every tag of every built image to its registry (the lab registry).

    Returns, by service, the digest the registry gave its commit tag (the first tag):
    what a deploy pins.
    """
    digests = {}
    for image in built:
        for index, reference in enumerate(image.tags):
            repository, tag = reference.rsplit(":", 1)
            digest = push_one(engine, image.service, repository, tag)
            if index == 0 and digest:
                digests[image.service] = digest
    return digests


# Docker 28.3.3 ends a push that carries no X-Registry-Auth header with EOF (moby#50614,
# docker-py#3348; fixed in 28.4): always send one, empty when there are no credentials.
NO_CREDENTIALS: dict[str, str] = {}


def push_one(engine: Any, what: str, repository: str, tag: str) -> str | None:
    """Push `repository:tag`; the digest the registry stored it under, when it said."""
    reference = f"{repository}:{tag}"
    digest = None
    try:
        stream = engine.api.push(
            repository, tag=tag, stream=True, decode=True, auth_config=NO_CREDENTIALS
        )
        for chunk in stream:
            if "error" in chunk:
                raise _push_failure(what, reference, str(chunk["error"]))
            aux = chunk.get("aux")
            if isinstance(aux, Mapping) and str(aux.get("Digest", "")).startswith("sha256:"):
                digest = str(aux["Digest"])
    except DOCKER_ERRORS as error:
        raise _push_failure(what, reference, str(error)) from error
    return digest


MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)


def registry_has(host: str, repository: str, tag: str) -> bool:
    """Whether the plain-HTTP registry at `host` holds `repository:tag` (False if down)."""
    url = f"http://{host}/v2/{repository}/manifests/{tag}"
    try:
        return httpx.head(url, headers={"Accept": MANIFEST_TYPES}, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def registry_digest(host: str, repository: str, tag: str) -> str | None:
    """The digest the plain-HTTP registry at `host` gives `repository:tag` (None if none)."""
    url = f"http://{_dialable(host)}/v2/{repository}/manifests/{tag}"
    try:
        response = httpx.head(url, headers={"Accept": MANIFEST_TYPES}, timeout=5)
    except httpx.HTTPError:
        return None
    digest = response.headers.get("Docker-Content-Digest", "")
    return digest if response.status_code == 200 and digest.startswith("sha256:") else None


def registry_digests(registry: str, services: Sequence[str], tag: str) -> dict[str, str]:
    """By service, the digest of `<registry>/lab/<service>:<tag>`, for those it has."""
    found = {
        service: registry_digest(registry, f"{REPOSITORY_PREFIX}/{service}", tag)
        for service in services
    }
    return {service: digest for service, digest in found.items() if digest}


def pushed_digests(registry: str, services: Sequence[str], tag: str) -> dict[str, str]:
    """By service, the digest of `<registry>/lab/<service>:<tag>`; refuses a missing one.

    A deploy pins these, so what runs is what was built and scanned even if the tag is
    pushed again later (a dirty build, a re-run): nodes never reuse a stale `:tag`.
    """
    digests = {}
    for service in services:
        digest = registry_digest(registry, f"{REPOSITORY_PREFIX}/{service}", tag)
        if digest is None:
            raise LabError(
                f"the registry {registry} has no {REPOSITORY_PREFIX}/{service}:{tag} "
                "(or does not answer), so there is no digest to deploy",
                hint="run the pipeline from its build stage (`invoke pipeline.run`), and "
                "check the registry with `invoke lab.status`",
            )
        digests[service] = digest
    return digests


def _dialable(host: str) -> str:
    """`localhost:<port>` as 127.0.0.1, where the lab registry listens (not ::1)."""
    name, _, port = host.rpartition(":")
    return f"127.0.0.1:{port}" if name == "localhost" else host


def mirror_images(engine: Any, config: Config, references: Sequence[str]) -> list[str]:
    """Push local images into the lab registry under their mirror paths; returns those.

    The nodes' containerd then pulls `quay.io/argoproj/argocd:v3.6.1` from
    `localhost:5001/quay.io/argoproj/argocd:v3.6.1` and never from the internet. This is
    the seam for images that arrive without the internet: an offline bundle, or our CI's
    images built from source. Every reference must be present in the local engine.
    """
    missing = [reference for reference in references if not has_image(engine, reference)]
    if missing:
        raise LabError(
            f"{len(missing)} image(s) to mirror are not in the local Docker engine: "
            + ", ".join(missing),
            hint="pull or load them first (`docker pull`, `docker load`)",
        )
    pushed = []
    for reference in references:
        target = registry.mirror_reference(config, reference)
        repository, tag = target.rsplit(":", 1)
        try:
            engine.api.tag(reference, repository, tag=tag)
        except DOCKER_ERRORS as error:
            raise _push_failure("mirrored", target, str(error)) from error
        push_one(engine, "mirrored", repository, tag)
        pushed.append(target)
    return pushed


def _push_failure(what: str, reference: str, reason: str) -> LabError:
    return LabError(
        f"pushing the {what} image {reference} failed: {_first_line(reason)}",
        hint="check that the lab registry is running (`invoke lab.status`) and that Docker "
        f"reaches it at {reference.split('/', 1)[0]}",
        output_tail=tail(reason),
    )


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else "(no message)"
