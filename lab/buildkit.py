"""Image builds with BuildKit: `docker buildx build` through `lab.proc`, its progress read.

The docker SDK can only drive the Engine's classic builder, which has known gaps on the
containerd image store that Docker 29 and Docker Desktop use by default. So every image
lab builds goes through the buildx CLI plugin instead; the SDK stays for everything else
(inspect, run, push, remove). buildx talks to the daemon the docker CLI's context names,
the same one kind and `lab.engine` use.

`command_for` is pure: a `Build` becomes an argv. `Progress` follows the build's
`--progress=rawjson` stream (one JSON solve status per line) and turns it into readable
log lines, the Dockerfile steps it saw, which of them the cache answered, and the step
that failed. `build` runs the command and returns the image ID.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lab import engine, proc
from lab.errors import CommandError, CommandTimeout, LabError, ToolNotFound, tail

# `--progress=rawjson` came with buildx 0.13.
MINIMUM_VERSION = (0, 13)
LOG_TAIL_LINES = 25
VERSION_TIMEOUT = 30.0

INSTALL_HINT = (
    "Docker Desktop and docker-ce ship it (docker-buildx-plugin); Debian 13 and Ubuntu: "
    "`apt-get install docker-buildx`; elsewhere `make buildx` builds it from source"
)

# A Dockerfile step as BuildKit names it: `[build 3/6] RUN go mod download`, or
# `[2/4] COPY . .` in a Dockerfile whose stages have no names.
_STEP = re.compile(r"^\[(?:(?P<stage>[^\]\s]+) )?(?P<index>\d+)/(?P<count>\d+)\] (?P<text>.*)$")
_VERSION = re.compile(r"\bv?(\d+)\.(\d+)(?:\.\d+)?")


@dataclass(frozen=True)
class Build:
    """One image to build: the context, its tags, and how."""

    context: Path
    tags: tuple[str, ...]
    dockerfile: str = "Dockerfile"  # relative to the context
    buildargs: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None  # a stage to stop at
    nocache: bool = False
    offline: bool = False  # the steps get no network


def command_for(
    build: Build,
    iidfile: Path,
    prefix: tuple[str, ...] = ("docker", "buildx"),
    builder: str = "default",
) -> tuple[str, ...]:
    """The `docker buildx build` argv for `build`, writing the image ID to `iidfile` (pure).

    The builder is the context's own (the Engine's BuildKit, `--builder <context>`),
    whichever one `docker buildx use` chose: another driver's builder could not see the
    images that exist only in the Engine (local bases, a bundle's dependency stages).
    `--load` is where that builder puts the image anyway. No provenance
    attestation: it would turn each image into an index that older registries and the
    scan would have to understand, and lab's labels already say where an image is from.
    """
    argv = [*prefix, "build", "--builder", builder, "--progress=rawjson", "--load"]
    argv.append("--provenance=false")
    argv += ["--iidfile", str(iidfile), "--file", str(build.context / build.dockerfile)]
    for tag in build.tags:
        argv += ["--tag", tag]
    for name, value in build.buildargs.items():
        argv += ["--build-arg", f"{name}={value}"]
    for name, value in build.labels.items():
        argv += ["--label", f"{name}={value}"]
    if build.target:
        argv += ["--target", build.target]
    if build.nocache:
        argv.append("--no-cache")
    if build.offline:
        argv += ["--network", "none"]
    argv.append(str(build.context))
    return tuple(argv)


@dataclass
class _Vertex:
    number: int
    name: str
    cached: bool = False
    completed: bool = False
    error: str = ""


class Progress:
    """Follows one build's rawjson progress: readable lines, steps, cache hits, failure."""

    def __init__(self, on_line: Callable[[str], None] | None = None) -> None:
        self.on_line = on_line
        self.lines: list[str] = []  # the readable log, as `docker build --progress=plain`
        self.errors: list[str] = []  # what buildx printed that was not progress (its ERROR)
        self._vertices: dict[str, _Vertex] = {}
        self._failed: list[_Vertex] = []  # in the order their errors came

    # -- what the build did

    @property
    def steps(self) -> list[str]:
        """The Dockerfile steps the cache could answer (FROM never is), in order seen."""
        return [vertex.name for vertex in self._steps()]

    @property
    def cached_steps(self) -> int:
        return sum(1 for vertex in self._steps() if vertex.cached)

    @property
    def rebuilt(self) -> list[str]:
        """The steps that ran (the cache did not answer them), without their `[stage n/m]`."""
        return [_instruction(vertex.name) for vertex in self._steps() if not vertex.cached]

    @property
    def step(self) -> str:
        """Where the build is (or stopped): the failed step, else the last one started."""
        if failed := self._first_failure():
            return failed.name
        started = [v for v in self._vertices.values() if _STEP.match(v.name)]
        running = [v for v in started if not v.completed]
        if running or started:
            return (running or started)[-1].name
        return "(before the first step)"

    @property
    def reason(self) -> str:
        """Why the build failed, in buildx's words, else the failed step's error."""
        for line in self.errors:
            if line.startswith("ERROR:"):
                return line.removeprefix("ERROR:").strip()
        if failed := self._first_failure():
            return failed.error
        return self.errors[-1] if self.errors else "buildx reported no reason"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return tail("\n".join(self.lines + self.errors), lines)

    def _first_failure(self) -> _Vertex | None:
        """The vertex that failed first; the others were cancelled because of it."""
        for vertex in self._failed:
            if "context canceled" not in vertex.error:
                return vertex
        return self._failed[0] if self._failed else None

    def _steps(self) -> list[_Vertex]:
        return [
            vertex
            for vertex in self._vertices.values()
            if (match := _STEP.match(vertex.name))
            and not match.group("text").upper().startswith("FROM ")
        ]

    # -- reading the stream

    def feed(self, line: str) -> None:
        """Take one line of buildx's output (a JSON solve status, or plain text)."""
        if not line.strip():
            return
        try:
            status = json.loads(line)
        except ValueError:
            status = None
        if not isinstance(status, dict):
            self.errors.append(line.rstrip())
            if self.on_line:
                self.on_line(line.rstrip())
            return
        for vertex in status.get("vertexes") or ():
            if isinstance(vertex, dict):
                self._vertex(vertex)
        for entry in status.get("logs") or ():
            if isinstance(entry, dict):
                self._log(entry)

    def _vertex(self, data: Mapping[str, object]) -> None:
        digest = str(data.get("digest") or "")
        name = str(data.get("name") or "")
        if not digest or not name:
            return
        vertex = self._vertices.get(digest)
        if vertex is None:
            vertex = self._vertices[digest] = _Vertex(len(self._vertices) + 1, name)
            self._say(f"#{vertex.number} {name}")
        if data.get("cached") and not vertex.cached:
            vertex.cached = True
            self._say(f"#{vertex.number} CACHED")
        error = str(data.get("error") or "")
        if error and not vertex.error:
            vertex.error = error
            self._failed.append(vertex)
            self._say(f"#{vertex.number} ERROR: {error}")
        if data.get("completed") and not vertex.completed:
            vertex.completed = True

    def _log(self, entry: Mapping[str, object]) -> None:
        vertex = self._vertices.get(str(entry.get("vertex") or ""))
        try:
            text = base64.b64decode(str(entry.get("data") or ""), validate=True).decode(
                "utf-8", errors="replace"
            )
        except (binascii.Error, ValueError):
            return
        prefix = f"#{vertex.number} " if vertex else ""
        for line in text.splitlines():
            if line.strip():
                self._say(prefix + line.rstrip())

    def _say(self, line: str) -> None:
        self.lines.append(line)
        if self.on_line:
            self.on_line(line)


class BuildError(LabError):
    """A build failed; `step` says at which Dockerfile step, `progress` has its log."""

    def __init__(self, message: str, *, step: str, progress: Progress, hint: str | None) -> None:
        super().__init__(message, hint=hint, output_tail=progress.log_tail())
        self.step = step
        self.progress = progress


def build(build: Build, progress: Progress, *, timeout: float, hint: str | None = None) -> str:
    """Run `build` (streaming its progress into `progress`); returns the image ID.

    A failed build raises `BuildError` naming the step; a missing or too old buildx
    raises a `LabError` saying how to install it.
    """
    prefix = command()
    with tempfile.TemporaryDirectory(prefix="lab-build-") as scratch:
        iidfile = Path(scratch) / "image-id"
        try:
            proc.stream(
                command_for(build, iidfile, prefix, engine.context_name()),
                timeout=timeout,
                on_line=progress.feed,
            )
        except CommandTimeout as error:
            raise BuildError(
                f"the build did not finish within {timeout:g}s and was stopped",
                step=progress.step,
                progress=progress,
                hint=hint,
            ) from error
        except CommandError as error:
            raise BuildError(
                progress.reason, step=progress.step, progress=progress, hint=hint
            ) from error
        image_id = iidfile.read_text().strip() if iidfile.is_file() else ""
    if not image_id:
        raise BuildError(
            "buildx finished but wrote no image ID",
            step=progress.step,
            progress=progress,
            hint=hint,
        )
    return image_id


def command() -> tuple[str, ...]:
    """The argv that runs buildx (`docker buildx`), checked to be there and recent enough."""
    prefix = ("docker", "buildx")
    try:
        result = proc.run((*prefix, "version"), timeout=VERSION_TIMEOUT, check=False)
    except ToolNotFound as error:
        raise LabError(
            "the docker CLI is not installed: lab builds images with `docker buildx`",
            hint="install the docker CLI and its buildx plugin; " + INSTALL_HINT,
        ) from error
    text = (result.stdout + result.stderr).strip()
    version = _VERSION.search(result.stdout) if result.ok else None
    if version is None:
        raise LabError(
            "docker buildx is not installed (lab builds images with BuildKit)",
            hint=INSTALL_HINT,
            output_tail=tail(text, 3),
        )
    found = (int(version.group(1)), int(version.group(2)))
    if found < MINIMUM_VERSION:
        wanted = ".".join(map(str, MINIMUM_VERSION))
        raise LabError(
            f"docker buildx {version.group(0)} is too old: lab needs {wanted} or newer",
            hint=INSTALL_HINT,
        )
    return prefix


def version() -> str:
    """The buildx version line (for `lab.doctor`); raises as `command` does."""
    prefix = command()
    return proc.run((*prefix, "version"), timeout=VERSION_TIMEOUT).stdout.strip()


def _instruction(name: str) -> str:
    match = _STEP.match(name)
    return match.group("text") if match else name
