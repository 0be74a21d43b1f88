"""Service images: plan, build (BuildKit, in parallel, cache reused) and push.

`plan_builds` is pure: given the commit, branch, version and time it says, per service,
which tags, build args and labels to build with. `build_images` runs those plans with
`docker buildx build` (`lab.buildkit`) in a bounded thread pool and streams each build
log; a failed build becomes one `ImageBuildError` naming the service and the failing
Dockerfile step, with the tail of its log. `lab.distribution` pushes what was built.

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
from typing import Any

from lab import buildkit, proc
from lab.config import Config
from lab.engine import find_image
from lab.errors import LabError

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
    engine: Any,
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
    engine: Any,
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


def _from_dependency_image(engine: Any, plan: BuildPlan, repository: str) -> BuildPlan:
    """`plan`, started from its bundled dependency stage when there is one for this tree."""
    if plan.target is not None or plan.service not in DEPENDENCY_STAGES:
        return plan
    reference = cache_image(plan.service, repository)
    image = find_image(engine, reference)
    if image is None:
        return plan  # the build says what it lacked
    labels = image.labels or {}
    if labels.get(DEPENDENCIES_LABEL) != dependencies_hash(plan.context, plan.service):
        files = ", ".join(DEPENDENCY_FILES[plan.service])
        raise LabError(
            f"the bundle's {plan.service} dependencies ({reference}) were made from other "
            f"{files} than this tree's",
            hint="offline, a build cannot fetch what changed: make a bundle of this tree "
            "on a machine with the internet (`invoke lab.bundle.create`), or build online",
        )
    return replace(plan, buildargs={**plan.buildargs, DEPENDENCY_ARG: reference})


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else "(no message)"
