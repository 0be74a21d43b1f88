"""The contexts the steps run in: what the user asked for, the settings, the terminal,
the state (loaded once) and the connections (made once).

`Lab` is one `lab.up` in progress; `Run` (in `lab.pipeline`) is one pipeline run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lab import changes, cluster, k8s, tags, wait
from lab.cli import Context
from lab.config import Config, in_ci
from lab.errors import LabError
from lab.report import StageResult
from lab.state import State


@dataclass
class UpOptions:
    """What the user asked for on the command line."""

    context: str | None = None  # bring your own cluster: skip kind and the registry
    registry: str | None = None  # HOST:PORT of the registry that cluster pulls from
    recreate: bool = False
    dry_run: bool = False
    offline: bool = False  # everything from a loaded bundle; nothing downloaded


@dataclass
class Lab:
    """One bring-up in progress: settings, terminal, state, and connections made so far."""

    ctx: Context
    options: UpOptions
    state: State
    changes: changes.Changes = field(init=False)  # makes the changes, or plans them
    _cluster: k8s.Cluster | None = field(default=None, repr=False)
    new_cluster: bool = field(default=False, init=False)  # kind made it in this run

    def __post_init__(self) -> None:
        self.changes = changes.for_options(self.options.dry_run)

    @property
    def config(self) -> Config:
        return self.ctx.config

    @property
    def byo(self) -> bool:
        return self.options.context is not None

    @property
    def context(self) -> str:
        return self.options.context or self.ctx.config.kube_context

    def cluster(self) -> k8s.Cluster:
        """The cluster's API (a plan of a cluster not made yet gets one with no API)."""
        if self._cluster is None:
            read = self.changes.read_new if self.new_cluster else self.changes.read
            self._cluster = read(
                lambda: k8s.connect(self.context, self.changes),
                absent=k8s.Cluster.absent(self.context, self.changes),
            )
        return self._cluster

    def cluster_made(self) -> None:
        """kind made the cluster anew (`--recreate`, or the first time): connect to the
        new one; a plan reads it as not there yet, not as the one it would delete."""
        self.new_cluster = True
        self._cluster = None

    def wait_for(self, what: str, look: Callable[[], wait.Observation], timeout: float) -> str:
        return self.changes.wait(what, look, timeout=timeout, report=self.ctx.ui.progress)

    def save(self) -> None:
        """Keep the state (what a later task must know) in `.lab/state.json`."""
        self.changes.make(f"write {self.state.path}", self.state.save, planned=None)


def deployment_observation(lab: Lab, namespace: str, name: str) -> wait.Observation:
    return lab.cluster().deployment_observation(namespace, name)


def kind_cluster_exists(lab: Lab) -> bool:
    """Whether kind has our cluster (a plan on a machine without kind: not yet)."""
    return lab.changes.read(lambda: cluster.cluster_exists(lab.config), absent=False)


@dataclass(frozen=True)
class PipelineOptions:
    """What `pipeline.run` and `pipeline.<stage>` were asked for; `from_flags` builds and
    checks it (the one place the flags are read)."""

    sha: str | None = None  # default: HEAD
    start: str | None = None  # resume from this stage (`--from`)
    stop: str | None = None  # run up to and including this stage (`pipeline.<stage>`)
    runner: str = "docker"  # quality checks: in toolchain containers, or "host"
    strict: bool | None = None  # UNVERIFIED fails (default: when CI=true)
    offline: bool = False  # scan with Trivy's cached database
    allow_dirty: bool = False

    RUNNERS = ("docker", "host")

    @classmethod
    def from_flags(
        cls,
        stages: Sequence[str],
        *,
        sha: str | None = None,
        start: str | None = None,
        stop: str | None = None,
        runner: str = "docker",
        strict: bool = False,
        lenient: bool = False,
        offline: bool = False,
        allow_dirty: bool = False,
    ) -> PipelineOptions:
        """The options, or a `LabError` saying which flag is wrong and what to pass."""
        if strict and lenient:
            raise LabError("--strict and --lenient contradict each other", hint="pass one of them")
        if runner not in cls.RUNNERS:
            raise LabError(
                f"unknown runner {runner!r}", hint="use --runner docker or --runner host"
            )
        for stage in (start, stop):
            if stage is not None and stage not in stages:
                raise LabError(f"unknown stage {stage!r}", hint=f"stages: {', '.join(stages)}")
        return cls(
            sha=sha,
            start=start,
            stop=stop,
            runner=runner,
            strict=True if strict else (False if lenient else None),
            offline=offline,
            allow_dirty=allow_dirty,
        )


@dataclass(frozen=True)
class Commit:
    sha: str
    branch: str
    dirty: bool
    # The commit's time: images carry it as their creation time, so rebuilding an
    # unchanged tree hits the layer cache all the way and gives the same image.
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    tree: str = ""  # of a dirty working tree: the git tree its files would make

    @property
    def version(self) -> str:
        return f"{self.sha[:12]}-dirty" if self.dirty else self.sha[:12]

    @property
    def image_tag(self) -> str:
        """The images' tag: the SHA, or for a dirty tree one that names its content.

        A dirty build never takes the commit's own tag: nodes keep an image per tag, so
        a later clean build under `:<sha>` would not replace it, and uncommitted code
        could run under a clean commit's name (issue #16.15).
        """
        return tags.dirty_tag(self.sha, self.tree) if self.dirty else self.sha


@dataclass
class Run:
    """One pipeline run: what it builds, and what the stages found so far."""

    ctx: Context
    options: PipelineOptions
    commit: Commit
    run_id: str
    directory: Path
    results: list[StageResult] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)  # service → reference by sha
    digests: dict[str, str] = field(default_factory=dict)  # service → digest pushed

    @property
    def strict(self) -> bool:
        if self.options.strict is not None:
            return self.options.strict
        return in_ci()

    def result(self, name: str) -> StageResult | None:
        return next((r for r in self.results if r.name == name), None)


Stage = tuple[str, Callable[[Run], StageResult]]
