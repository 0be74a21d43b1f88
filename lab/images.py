"""Service images: plan, build (BuildKit, in parallel, cache reused) and push.

`plan_builds` is pure: given the commit, branch, version and time it says, per service,
which tags, build args and labels to build with. `build_images` runs those plans with
`docker buildx build` (`lab.buildkit`) in a bounded thread pool and streams each build
log; a failed build becomes one `ImageBuildError` naming the service and the failing
Dockerfile step, with the tail of its log. `push_images` sends built tags to the lab
registry through the docker SDK.

BuildKit's cache keeps what it built across builds; an offline build on a machine that
never built (a workshop room) starts from the dependency stages a bundle carries, as
images (`DEPENDENCY_STAGES`): the steps that download never run there.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import docker
import docker.errors
import httpx

from lab import buildkit, cluster, proc
from lab.config import Config
from lab.engine import ERRORS as DOCKER_ERRORS
from lab.engine import unreachable as engine_error
from lab.errors import LabError, tail

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APPS_DIR = PROJECT_ROOT / "apps"

# The services that have an image, in the order the pipeline reports them.
SERVICES: tuple[str, ...] = ("backend", "frontend", "monitor", "smoke")

REPOSITORY_PREFIX = "lab"
DEFAULT_SOURCE = "https://github.com/lab/lab"

# The label lab adds to every image (the Dockerfiles add the OCI ones): finds lab's images.
SERVICE_LABEL = "dev.lab.service"

DEFAULT_WORKERS = 2  # builds are CPU-bound; the Engine shares the machine's cores
# Seconds one build may take in all; a cold Go or npm build on 2 shared cores takes a
# few minutes.
BUILD_TIMEOUT = 1800.0

_SHA = re.compile(r"^[0-9a-f]{40}$")
_TAG_ALLOWED = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class BuildPlan:
    """What to build for one service: where from, under which tags, with which args."""

    service: str
    context: Path
    tags: tuple[str, ...]  # full references, the commit tag first
    buildargs: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    dockerfile: str = "Dockerfile"
    target: str | None = None  # a stage to stop at (dependency_plans)

    @property
    def repository(self) -> str:
        return self.tags[0].rsplit(":", 1)[0]


@dataclass(frozen=True)
class BuiltImage:
    """A finished build: the image ID, its tags, and whether every step came from cache."""

    service: str
    image_id: str
    tags: tuple[str, ...]
    seconds: float
    steps: int
    cached_steps: int
    rebuilt: tuple[str, ...] = ()  # the steps BuildKit's cache did not answer, in order

    @property
    def fully_cached(self) -> bool:
        """True when BuildKit's cache answered every step (nothing was rebuilt)."""
        return self.steps > 0 and self.cached_steps == self.steps


class ImageBuildError(LabError):
    """A service's image failed to build; `service` and `step` say where."""

    def __init__(
        self, message: str, *, service: str, step: str, output_tail: str, hint: str | None
    ) -> None:
        super().__init__(message, hint=hint, output_tail=output_tail)
        self.service = service
        self.step = step


LogListener = Callable[[str, str], None]  # (service, line)


def image_repository(service: str, registry: str) -> str:
    """`<registry>/lab/<service>` (`localhost:5001/lab/backend`): a service's images."""
    return f"{registry}/{REPOSITORY_PREFIX}/{service}"


def branch_tag(branch: str) -> str:
    """A Docker tag for a branch name: `feature/login` becomes `feature-login`.

    Tags allow `[A-Za-z0-9_.-]`, at most 128 characters, and must not start with `.` or
    `-`.
    """
    tag = _TAG_ALLOWED.sub("-", branch.strip()).lstrip(".-")[:128]
    if not tag:
        raise LabError(
            f"branch name {branch!r} gives no usable image tag",
            hint="use a branch name with letters or digits",
        )
    return tag


def rfc3339(moment: datetime) -> str:
    """`moment` in UTC as RFC 3339 (`2026-01-02T03:04:05Z`), as the OCI spec wants."""
    if moment.tzinfo is None:
        raise ValueError("created must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# The stage of each Dockerfile that fetches the dependencies (go mod download, npm ci,
# pip install). BuildKit's cache does not travel, so a workshop bundle carries that stage
# built as an image, and an offline build starts from it: each Dockerfile's build stage
# is `FROM ${DEPS}`, `deps` unless the build arg names an image. The smoke program uses
# only Go's standard library: it downloads nothing.
DEPENDENCY_STAGES = {"backend": "deps", "frontend": "deps", "monitor": "deps"}
DEPENDENCY_ARG = "DEPS"
# What each dependency stage is made from: its image carries their hash, and an offline
# build uses it only while the tree's files still hash the same (else it would build
# with the bundle's older dependencies under the new commit's name).
DEPENDENCY_FILES = {
    "backend": ("go.mod", "go.sum"),
    "frontend": ("package.json", "package-lock.json"),
    "monitor": ("requirements-pip.txt", "requirements.txt"),
}
DEPENDENCIES_LABEL = "dev.lab.dependencies"


def dependencies_hash(context: Path, service: str) -> str:
    """The hash of the files `service`'s dependency stage is made from (missing: empty)."""
    digest = hashlib.sha256()
    for name in DEPENDENCY_FILES[service]:
        path = context / name
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"")
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def cache_image(service: str, repository: str) -> str:
    """Where a service's dependency stage is kept (`Config.build_cache_repository`)."""
    return f"{repository}/{service}:latest"


def dependency_plans(plans: Sequence[BuildPlan], repository: str) -> tuple[BuildPlan, ...]:
    """The same builds, stopped after each Dockerfile's dependency stage (pure)."""
    return tuple(
        replace(
            plan,
            tags=(cache_image(plan.service, repository),),
            target=DEPENDENCY_STAGES[plan.service],
            labels={
                **plan.labels,
                DEPENDENCIES_LABEL: dependencies_hash(plan.context, plan.service),
            },
        )
        for plan in plans
        if plan.service in DEPENDENCY_STAGES
    )


def _declared(dockerfile: Path, args: Mapping[str, str]) -> dict[str, str]:
    """The `args` that `dockerfile` declares (`ARG NAME`): others would only be warned of."""
    try:
        text = dockerfile.read_text(encoding="utf-8")
    except OSError:
        return {}  # build_image says the Dockerfile is missing
    return {name: value for name, value in args.items() if re.search(rf"^ARG {name}\b", text, re.M)}


def plan_builds(
    *,
    sha: str,
    branch: str,
    version: str,
    created: datetime,
    tag: str = "",  # the commit tag, when it is not `sha` (a dirty build's)
    base_images: Mapping[str, str] | None = None,  # Config.base_images: build arg → image
    environment: str = "dev",
    source: str = DEFAULT_SOURCE,
    services: Sequence[str] = SERVICES,
    registry: str,  # the lab's (Config.registry_host), or the one lab.up was given
    apps_dir: Path = APPS_DIR,
) -> tuple[BuildPlan, ...]:
    """Per service: the commit and branch tags, the build args and labels (pure)."""
    if not _SHA.match(sha):
        raise LabError(
            f"commit {sha!r} is not a full 40-hex SHA",
            hint="images are tagged with the full commit SHA (git rev-parse HEAD)",
        )
    unknown = [service for service in services if service not in SERVICES]
    if unknown:
        raise LabError(
            f"unknown service(s): {', '.join(unknown)}",
            hint=f"services with an image: {', '.join(SERVICES)}",
        )
    stamp = rfc3339(created)
    plans = []
    for service in services:
        repository = image_repository(service, registry)
        plans.append(
            BuildPlan(
                service=service,
                context=apps_dir / service,
                tags=(f"{repository}:{tag or sha}", f"{repository}:{branch_tag(branch)}"),
                buildargs={
                    **_declared(apps_dir / service / "Dockerfile", base_images or {}),
                    "VERSION": version,
                    "REVISION": sha,
                    "CREATED": stamp,
                    "SOURCE": source,
                    "ENVIRONMENT": environment,
                },
                # The OCI labels come from the Dockerfile (fed by the build args, per
                # docs/CONTRACTS.md); setting them here too would hide a Dockerfile
                # that forgets them from the container tier.
                labels={SERVICE_LABEL: service},
            )
        )
    return tuple(plans)


def build_images(
    engine: docker.DockerClient,
    plans: Sequence[BuildPlan],
    *,
    workers: int = DEFAULT_WORKERS,
    timeout: float = BUILD_TIMEOUT,
    on_log: LogListener | None = None,
    nocache: bool = False,
    offline: bool = False,
    cache_repository: str = Config.build_cache_repository,
) -> tuple[BuiltImage, ...]:
    """Build every plan, at most `workers` at a time, reusing BuildKit's cache.

    Every build runs to its end; if any failed, the first failure (in plan order) is
    raised, naming the others too. `nocache` builds every step afresh (benchmarks);
    `offline` gives the build's steps no network (what the cache lacks fails) and starts
    each build from its dependency stage's image under `cache_repository` when present.
    """
    if not plans:
        return ()
    if offline:  # the bundle's dependency stages stand in for the steps that download
        plans = [_from_dependency_image(engine, plan, cache_repository) for plan in plans]
    results: list[BuiltImage] = []
    failures: list[tuple[str, LabError]] = []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(plans)))) as pool:
        futures = [
            (
                plan,
                pool.submit(
                    build_image,
                    engine,
                    plan,
                    timeout=timeout,
                    on_log=on_log,
                    nocache=nocache,
                    offline=offline,
                ),
            )
            for plan in plans
        ]
        try:
            for plan, future in futures:
                try:
                    results.append(future.result())
                except LabError as error:
                    failures.append((plan.service, error))
        except KeyboardInterrupt:  # the builds run in other threads: stop them too
            pool.shutdown(wait=False, cancel_futures=True)
            proc.stop_streams()
            raise
    if failures:
        _, first = failures[0]
        others = [name for name, _ in failures[1:]]
        if others:
            first.message += f" (also failed: {', '.join(others)})"
            first.args = (first.message,)
        if offline:
            first.hint = (
                "offline, a build step has no network: one the build cache lacks (go mod "
                "download, npm ci, pip install) cannot run; build once online, or load a "
                "bundle made from this tree's lock files"
            )
        raise first
    return tuple(results)


def build_image(
    engine: docker.DockerClient | None,
    plan: BuildPlan,
    *,
    timeout: float = BUILD_TIMEOUT,
    on_log: LogListener | None = None,
    nocache: bool = False,
    offline: bool = False,
) -> BuiltImage:
    """Build one plan with BuildKit (`docker buildx build`), streaming its log.

    `engine` is not used (buildx reaches the same daemon through the docker CLI's
    context); it is kept so every image function takes the Engine first.
    """
    del engine
    if not (plan.context / plan.dockerfile).is_file():
        raise ImageBuildError(
            f"cannot build {plan.service}: no {plan.dockerfile} in {plan.context}",
            service=plan.service,
            step="(no Dockerfile)",
            output_tail="",
            hint=f"add {plan.context / plan.dockerfile}",
        )
    started = time.monotonic()
    progress = buildkit.Progress(
        (lambda line: on_log(plan.service, line)) if on_log is not None else None
    )
    build = buildkit.Build(
        context=plan.context,
        tags=plan.tags,
        dockerfile=plan.dockerfile,
        buildargs=plan.buildargs,
        labels=plan.labels,
        target=plan.target,
        nocache=nocache,
        offline=offline,
    )
    try:
        image_id = buildkit.build(build, progress, timeout=timeout)
    except buildkit.BuildError as error:
        raise ImageBuildError(
            f"building the {plan.service} image failed at {error.step}: "
            f"{_first_line(error.message)}",
            service=plan.service,
            step=error.step,
            output_tail=error.output_tail or "",
            hint=f"fix apps/{plan.service}/Dockerfile or the code it builds; "
            "the whole build log is in the run's log file",
        ) from error
    return BuiltImage(
        service=plan.service,
        image_id=image_id,
        tags=plan.tags,
        seconds=time.monotonic() - started,
        steps=len(progress.steps),
        cached_steps=progress.cached_steps,
        rebuilt=tuple(progress.rebuilt),
    )


def push_images(
    engine: docker.DockerClient,
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


def push_one(engine: docker.DockerClient, what: str, repository: str, tag: str) -> str | None:
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


def mirror_images(
    engine: docker.DockerClient, config: Config, references: Sequence[str]
) -> list[str]:
    """Push local images into the lab registry under their mirror paths; returns those.

    The nodes' containerd then pulls `quay.io/argoproj/argocd:v3.6.1` from
    `localhost:5001/quay.io/argoproj/argocd:v3.6.1` and never from the internet. This is
    the seam for images that arrive without the internet: an offline bundle, or our CI's
    images built from source. Every reference must be present in the local engine.
    """
    missing = [reference for reference in references if not _present(engine, reference)]
    if missing:
        raise LabError(
            f"{len(missing)} image(s) to mirror are not in the local Docker engine: "
            + ", ".join(missing),
            hint="pull or load them first (`docker pull`, `docker load`)",
        )
    pushed = []
    for reference in references:
        target = cluster.mirror_reference(config, reference)
        repository, tag = target.rsplit(":", 1)
        try:
            engine.api.tag(reference, repository, tag=tag)
        except DOCKER_ERRORS as error:
            raise _push_failure("mirrored", target, str(error)) from error
        push_one(engine, "mirrored", repository, tag)
        pushed.append(target)
    return pushed


def _from_dependency_image(
    engine: docker.DockerClient, plan: BuildPlan, repository: str
) -> BuildPlan:
    """`plan`, started from its bundled dependency stage when there is one for this tree."""
    if plan.target is not None or plan.service not in DEPENDENCY_STAGES:
        return plan
    reference = cache_image(plan.service, repository)
    try:
        labels = engine.images.get(reference).labels or {}
    except docker.errors.ImageNotFound:
        return plan  # the build says what it lacked
    except DOCKER_ERRORS as error:
        raise engine_error(error) from error
    if labels.get(DEPENDENCIES_LABEL) != dependencies_hash(plan.context, plan.service):
        files = ", ".join(DEPENDENCY_FILES[plan.service])
        raise LabError(
            f"the bundle's {plan.service} dependencies ({reference}) were made from other "
            f"{files} than this tree's",
            hint="offline, a build cannot fetch what changed: make a bundle of this tree "
            "on a machine with the internet (`invoke lab.bundle.create`), or build online",
        )
    return replace(plan, buildargs={**plan.buildargs, DEPENDENCY_ARG: reference})


def _present(engine: docker.DockerClient, reference: str) -> bool:
    try:
        engine.images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    except DOCKER_ERRORS as error:
        raise engine_error(error) from error
    return True


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
