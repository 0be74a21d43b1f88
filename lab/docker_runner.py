"""The quality stage's docker runner: the checks of `lab.checks` in toolchain containers.

It needs only Docker: per service, one throw-away container from the service's build
toolchain image (the base image its Dockerfile names as a build arg, `TOOLCHAINS`). The
service directory is *copied* into the container at ``/src`` (build outputs such as
``node_modules``, ``.venv``, ``dist`` left out), so nothing the checks write (venv,
node_modules, coverage, root-owned files) ever lands in the host tree, and a remote
daemon (``DOCKER_HOST``) works too. Each check is a ``docker exec`` wrapped in coreutils
``timeout``. Downloads are cached in named volumes (``<cluster>-quality-gomod``,
``-gobuild``, ``-tools``, ``-pip``, ``-npm``) labelled with `lab.engine.LAB_LABEL`, so
``lab.down`` removes them.

Two services need more than their base image:

- The backend's ``go test`` and the monitor's pytest start a real ``redis-server``. The
  toolchain image is then a small derived image, ``FROM <base>`` plus Debian's
  ``redis-server`` package, built once through the docker SDK and cached by Docker as
  ``<toolchain_repository>/<service>:<hash>``, by default ``lab-quality-toolchain``
  (the hash covers the base image ID and the recipe, so a new base image or recipe
  gives a new derived image).
- The monitor's pytest runs the real backend binary (its conftest reads ``BACKEND_BIN``).
  Before the monitor's checks, the backend is built statically (``CGO_ENABLED=0``) in the
  backend's toolchain container into the volume ``<cluster>-quality-backend-bin``, which
  the monitor's container mounts read-only; that build is reported as the monitor's
  "backend binary" setup check. On the host, the conftest builds it with ``go build``.

Containers trust what the host trusts: when the host has a CA bundle (``SSL_CERT_FILE``
or ``/etc/ssl/certs/ca-certificates.crt``) it replaces the container's, and the proxy
variables (``HTTPS_PROXY`` ...) are passed on; behind a TLS-inspecting proxy nothing
downloads otherwise.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lab import buildkit, engine, proc
from lab.checks import CHECKS, SETUP, TEST, Check, outcome, report, run_in_order, skipped
from lab.config import Config
from lab.errors import LabError
from lab.report import CheckResult, Status
from lab.toolchains import (
    CONTAINER_CA_BUNDLE,
    SOURCE_DIR,
    TOOLCHAINS,
    Toolchain,
    derived_dockerfile,
    file_archive,
    host_ca_bundle,
    proxy_env,
    source_archive,
    toolchain_image,
)
from lab.ui import UI

log = logging.getLogger("lab.quality")  # one logger for the stage's modules

# The monitor's tests run the real backend: built once, into a volume they mount.
BACKEND_BIN_DIR = "/opt/backend"
BACKEND_BUILD = Check(
    "backend binary",
    ("go", "build", "-trimpath", "-o", "/out/backend", "."),
    SETUP,
    env={"CGO_ENABLED": "0"},
)
TOOLCHAIN_BUILD_TIMEOUT = 900
TIMEOUT_EXIT_CODES = (124, 137)  # coreutils timeout: TERM sent / KILL sent after -k


class DockerRunner:
    """Runs checks in a throw-away container per service, from its toolchain image."""

    def __init__(self, ui: UI, config: Config, apps_dir: Path, cancelled: threading.Event) -> None:
        self.ui = ui
        self.config = config
        self.apps_dir = apps_dir
        self.cancelled = cancelled
        # A check's `docker exec` answers only when it ends: the HTTP read timeout must
        # outlast the longest check (lab.engine's client uses a short connect-sized one).
        longest = max(c.timeout for checks in CHECKS.values() for c in checks)
        self.engine = engine.client(read_timeout=int(longest) + 120)
        self._image_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._live: dict[str, Any] = {}  # running containers by name

    def remove_containers(self) -> None:
        """Remove every container still running checks (on Ctrl-C)."""
        with self._lock:
            live = list(self._live.values())
        for container in live:
            try:
                engine.remove_container(container)
            except LabError:
                log.warning("could not remove container %s", container.name)

    def run_service(self, service: str, checks: Sequence[Check]) -> list[CheckResult]:
        toolchain = TOOLCHAINS[service]
        results: list[CheckResult] = []
        try:
            image = self._toolchain_image(service)
            if toolchain.needs_backend_binary and any(c.kind is TEST for c in checks):
                binary = self._build_backend_binary()
                results.append(binary)
                if binary.status is Status.FAILED:
                    reason = "setup step 'backend binary' failed"
                    for rest in skipped(service, checks, reason):
                        results.append(rest)
                        report(self.ui, rest, "")
                    return results
            env: dict[str, str] = {}
            volumes = self._cache_volumes(toolchain)
            if toolchain.needs_backend_binary:
                volumes[self._volume("backend-bin")] = {"bind": BACKEND_BIN_DIR, "mode": "ro"}
                env["BACKEND_BIN"] = f"{BACKEND_BIN_DIR}/backend"
            with self._container(service, image, volumes, env) as container:

                def execute(check: Check) -> CheckResult:
                    return self._exec(container, service, check)

                return run_in_order(
                    self.ui, service, checks, execute, self.cancelled, results=results
                )
        except LabError as error:
            return self._setup_failed(service, checks, results, error)

    def _setup_failed(
        self, service: str, checks: Sequence[Check], done: list[CheckResult], error: LabError
    ) -> list[CheckResult]:
        failure = CheckResult(
            f"{service}: toolchain container", Status.FAILED, 0.0, error.message, error.render()
        )
        report(self.ui, failure, "")
        ran = {result.name for result in done}
        rest = [c for c in checks if f"{service}: {c.name}" not in ran]
        return [*done, failure, *skipped(service, rest, "no toolchain container")]

    def _build_backend_binary(self) -> CheckResult:
        """A static backend build into the backend-bin volume, for the monitor's tests."""
        volumes = self._cache_volumes(TOOLCHAINS["backend"])
        volumes[self._volume("backend-bin")] = {"bind": "/out", "mode": "rw"}
        image = self._toolchain_image("backend")
        with self._container("backend", image, volumes, {}, label="backend-binary") as container:
            result = self._exec(container, "monitor", BACKEND_BUILD)
        return result

    # -- images

    def _toolchain_image(self, service: str) -> str:
        """The service's toolchain image, or the derived one with its extra packages."""
        toolchain = TOOLCHAINS[service]
        image = toolchain_image(self.config, service)
        base = self._base_image(image)
        if not toolchain.packages:
            return image
        recipe = derived_dockerfile(toolchain.packages)
        digest = hashlib.sha256(f"{base.id}\n{recipe}".encode()).hexdigest()[:12]
        tag = f"{self.config.toolchain_repository}/{service}:{digest}"
        with self._lock:
            lock = self._image_locks.setdefault(tag, threading.Lock())
        with lock:
            if engine.has_image(self.engine, tag):
                return tag
            self.ui.progress(f"building {tag} ({image} + {' '.join(toolchain.packages)})")
            self._build(tag, image, recipe)
            self._remove_older(tag)
        return tag

    def _remove_older(self, current: str) -> None:
        """Drop the derived images of an older base or recipe (each is a toolchain's size)."""
        repository = current.rsplit(":", 1)[0]
        try:
            for image in self.engine.images.list(name=repository):
                for old in image.tags:
                    if old != current:
                        self.engine.images.remove(old)
        except engine.ERRORS as error:
            log.info("kept an older toolchain image: %s", error)

    def _base_image(self, reference: str) -> Any:
        image = engine.find_image(self.engine, reference)
        if image is not None:
            return image
        self.ui.progress(f"pulling {reference}")
        try:
            return engine.pull(self.engine, reference)
        except LabError as error:
            raise LabError(
                f"toolchain image {reference} is not here and cannot be pulled: {error.message}",
                hint=f"{error.hint}; or `docker pull {reference}` on a machine with registry "
                "access; without one, .ci/tools/standins.sh builds a local stand-in",
                output_tail=error.output_tail,
            ) from error

    def _build(self, tag: str, base: str, recipe: str) -> None:
        progress = buildkit.Progress()
        with tempfile.TemporaryDirectory(prefix="lab-toolchain-") as context:
            (Path(context) / "Dockerfile").write_text(recipe, encoding="utf-8")
            build = buildkit.Build(
                context=Path(context),
                tags=(tag,),
                buildargs={"BASE": base, **proxy_env()},
                labels={engine.LAB_LABEL: self.config.cluster_name},
            )
            try:
                buildkit.build(build, progress, timeout=TOOLCHAIN_BUILD_TIMEOUT)
            except buildkit.BuildError as error:
                raise LabError(
                    f"building the toolchain image {tag} failed at {error.step}: {error.message}",
                    hint="the build installs Debian packages: check that the Debian "
                    "mirror is reachable from Docker",
                    output_tail=error.output_tail,
                ) from error
        log.debug("built %s:\n%s", tag, "\n".join(progress.lines))

    # -- volumes and containers

    def _volume(self, suffix: str) -> str:
        name = f"{self.config.cluster_name}-quality-{suffix}"
        labels = {engine.LAB_LABEL: self.config.cluster_name}
        with self._lock:
            engine.ensure_volume(self.engine, name, labels)
        return name

    def _cache_volumes(self, toolchain: Toolchain) -> dict[str, dict[str, str]]:
        return {
            self._volume(suffix): {"bind": path, "mode": "rw"}
            for suffix, path in toolchain.caches.items()
        }

    @contextmanager
    def _container(
        self,
        service: str,
        image: str,
        volumes: Mapping[str, Mapping[str, str]],
        env: Mapping[str, str],
        *,
        label: str | None = None,
    ) -> Iterator[Any]:
        """A started container holding a copy of apps/<service> at /src; removed after."""
        environment = {**proxy_env(), **env}
        bundle = host_ca_bundle()
        if bundle is not None:
            environment.update(
                {
                    "REQUESTS_CA_BUNDLE": CONTAINER_CA_BUNDLE,
                    "PIP_CERT": CONTAINER_CA_BUNDLE,
                    "NODE_EXTRA_CA_CERTS": CONTAINER_CA_BUNDLE,
                }
            )
        name = f"{self.config.cluster_name}-quality-{label or service}-{uuid.uuid4().hex[:8]}"
        with engine.doing(f"create the {service} check container from {image}"):
            container = self.engine.containers.create(
                image,
                command=["sleep", "infinity"],
                name=name,
                labels={engine.LAB_LABEL: self.config.cluster_name},
                volumes={key: dict(value) for key, value in volumes.items()},
                environment=environment,
                working_dir=SOURCE_DIR,
                detach=True,
            )
        with self._lock:
            self._live[name] = container
        try:
            with engine.doing(f"start the {service} check container {name}"):
                container.put_archive("/", source_archive(self.apps_dir / service))
                if bundle is not None:
                    container.put_archive("/", file_archive(bundle, CONTAINER_CA_BUNDLE))
                container.start()
            yield container
        finally:
            with self._lock:
                self._live.pop(name, None)
            try:
                engine.remove_container(container)  # False: removed on Ctrl-C already
            except LabError:
                log.warning("could not remove container %s", name)

    def _exec(self, container: Any, service: str, check: Check) -> CheckResult:
        argv = ("timeout", "-k", "10", f"{check.timeout:g}", *check.argv)
        shown = proc.pasteable(check.argv, check.env)
        self.ui.command(f"docker exec {container.name} {shown}")
        log.debug("exec in %s: %s", container.name, shown)
        started = time.monotonic()
        try:
            code, raw = container.exec_run(
                list(argv), workdir=SOURCE_DIR, environment=dict(check.env), demux=False
            )
        except engine.ERRORS as error:
            duration = time.monotonic() - started
            result = CheckResult(
                f"{service}: {check.name}",
                Status.FAILED,
                duration,
                f"docker exec failed: {str(error).splitlines()[0] if str(error) else error!r}",
            )
            report(self.ui, result, "")
            return result
        duration = time.monotonic() - started
        output = (raw or b"").decode("utf-8", errors="replace")
        if code == 127 and not output.strip():
            output = f"{check.argv[0]}: command not found in the toolchain image"
        result = outcome(
            service,
            check,
            int(code),
            output,
            duration,
            timed_out=code in TIMEOUT_EXIT_CODES and duration >= check.timeout,
        )
        report(self.ui, result, output)
        return result
