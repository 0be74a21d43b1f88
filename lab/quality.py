"""The pipeline's quality stage: tests, linters and vulnerability audits of every service.

`CHECKS` is the one definition of what "quality" means: per service, an ordered tuple of
checks, each an argv run in the service's directory. Two runners run exactly that table:

- ``host``: the local toolchains (go, python3 ≥ 3.11, npm), through `lab.proc`, in
  ``apps/<service>``, as the apps' own Makefiles do (the monitor's venv is its ``.venv``).
- ``docker`` (the default; needs only Docker): per service, one throw-away container
  from the service's build toolchain image (the base image its Dockerfile names as a
  build arg, `TOOLCHAINS`). The service directory is *copied* into the container at
  ``/src`` (build outputs such as ``node_modules``, ``.venv``, ``dist`` left out), so
  nothing the checks write (venv, node_modules, coverage, root-owned files) ever lands in
  the host tree, and a remote daemon (``DOCKER_HOST``) works too. Each check is a
  ``docker exec`` wrapped in coreutils ``timeout``. Downloads are cached in named volumes
  (``<cluster>-quality-gomod``, ``-gobuild``, ``-tools``, ``-pip``, ``-npm``) labelled with
  `lab.engine.LAB_LABEL`, so ``lab.down`` removes them.

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

Statuses: a check passes on exit 0 (``gofmt -l`` also needs empty output). An audit
follows docs/CONTRACTS.md: exit 3 is `Status.UNVERIFIED` (database unreachable), shown
as ``?``; with ``strict`` (the default when ``CI=true``) an unverified check fails the
stage. A failed *setup* check skips the rest of its service, with the reason. Services
run in parallel (a bounded thread pool), checks within a service in order. On Ctrl-C no
new check starts and the docker runner's containers are removed; a host check that is
running ends at its timeout (`lab.proc` runs it in its own session).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import docker
import docker.errors

from lab import buildkit, engine, proc
from lab.config import Config, in_ci
from lab.errors import CommandTimeout, LabError, tail
from lab.report import CheckResult, StageResult, Status, worst
from lab.steps import STYLE
from lab.ui import UI, Row

log = logging.getLogger("lab.quality")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APPS_DIR = PROJECT_ROOT / "apps"
STAGE = "quality"
OUTPUT_TAIL_LINES = 30


class Kind(Enum):
    """What a check is for; a failed SETUP check skips the rest of its service."""

    SETUP = "setup"
    TEST = "test"
    LINT = "lint"
    AUDIT = "audit"


SETUP, TEST, LINT, AUDIT = Kind.SETUP, Kind.TEST, Kind.LINT, Kind.AUDIT


@dataclass(frozen=True)
class Check:
    """One command, run in the service's directory; `env` is overlaid on the runner's."""

    name: str
    argv: tuple[str, ...]
    kind: Kind
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    timeout: float = 600.0  # seconds
    fail_on_output: bool = False  # for tools that exit 0 and list what is wrong (gofmt -l)


# The one definition of every service's checks, in the order they run. Both runners run
# these argv in the service's directory. The monitor's and frontend's mirror their
# Makefiles (`make venv test audit`, `make deps test audit`).
# fmt: off
CHECKS: Mapping[str, tuple[Check, ...]] = MappingProxyType({
    "backend": (
        Check("gofmt", ("gofmt", "-l", "."), LINT, fail_on_output=True),
        Check("go vet", ("go", "vet", "./..."), LINT),
        # -count=1: a quality gate runs the tests; Go's test cache cannot see that they
        # also depend on the redis-server binary.
        Check("go test", ("go", "test", "-count=1", "./..."), TEST),
        Check("govulncheck", ("bash", "scripts/audit.sh"), AUDIT),
    ),
    "monitor": (
        Check("venv", ("python3", "-m", "venv", ".venv"), SETUP),
        # The interpreter's bundled pip may be too old for the hashed locks (Python
        # 3.11.7's pip 23.2 refuses pytest-cov's `coverage[toml]`): the pinned pip first.
        Check("pip bootstrap", (".venv/bin/python", "-m", "pip", "install", "--quiet",
                                "--disable-pip-version-check", "--require-hashes",
                                "-r", "requirements-pip.txt"),
              SETUP, env={"PIP_ROOT_USER_ACTION": "ignore"}),
        # --no-compile: modules are byte-compiled when first imported, not all up front.
        Check("pip install", (".venv/bin/python", "-m", "pip", "install", "--quiet",
                              "--no-compile", "--require-hashes", "-r", "requirements.txt",
                              "-r", "requirements-dev.txt"),
              SETUP, env={"PIP_ROOT_USER_ACTION": "ignore"}, timeout=900.0),
        Check("pytest", (".venv/bin/python", "-m", "pytest", "--cov",
                         "--cov-report=term-missing", "--cov-fail-under=90"), TEST),
        Check("pylint", (".venv/bin/pylint", "monitor", "scripts", "gunicorn.conf.py"), LINT),
        Check("pylint tests", (".venv/bin/pylint", "--disable=redefined-outer-name,"
                               "missing-function-docstring", "tests"), LINT),
        Check("black", (".venv/bin/black", "--check", "."), LINT),
        Check("isort", (".venv/bin/isort", "--check-only", "."), LINT),
        Check("pip-audit", (".venv/bin/python", "scripts/audit.py", "requirements.txt"), AUDIT),
    ),
    "frontend": (
        Check("npm ci", ("npm", "ci", "--no-audit", "--no-fund"), SETUP, timeout=900.0),
        Check("vitest", ("npm", "run", "coverage"), TEST),
        Check("eslint", ("npm", "run", "lint"), LINT),
        Check("npm audit", ("node", "scripts/audit.mjs"), AUDIT),
    ),
})
# fmt: on

SERVICES: tuple[str, ...] = tuple(CHECKS)
ALL = SERVICES


@dataclass(frozen=True)
class Toolchain:
    """Where the docker runner runs a service's checks."""

    build_arg: str  # the service Dockerfile's base-image build arg (Config.base_images)
    packages: tuple[str, ...] = ()  # Debian packages the checks need on top of the image
    caches: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    needs_backend_binary: bool = False  # mount a static backend build, set BACKEND_BIN


TOOLCHAINS: Mapping[str, Toolchain] = MappingProxyType(
    {
        "backend": Toolchain(
            "GO_IMAGE",
            packages=("redis-server",),  # go test starts a real redis-server
            # scripts/audit.sh installs govulncheck under ~/.cache/lab
            caches={
                "gomod": "/go/pkg/mod",
                "gobuild": "/root/.cache/go-build",
                "tools": "/root/.cache/lab",
            },
        ),
        "monitor": Toolchain(
            "PYTHON_IMAGE",
            packages=("redis-server",),  # the conftest starts a real redis-server
            caches={"pip": "/root/.cache/pip"},
            needs_backend_binary=True,
        ),
        "frontend": Toolchain("NODE_IMAGE", caches={"npm": "/root/.npm"}),
    }
)


def toolchain_image(config: Config, service: str) -> str:
    """The base image a service's checks run in: its Dockerfile's, from the settings."""
    return config.base_images[TOOLCHAINS[service].build_arg]


# In the docker runner: where the source goes, and the backend binary for the monitor.
SOURCE_DIR = "/src"
BACKEND_BIN_DIR = "/opt/backend"
BACKEND_BUILD = Check(
    "backend binary",
    ("go", "build", "-trimpath", "-o", "/out/backend", "."),
    SETUP,
    env={"CGO_ENABLED": "0"},
)
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CONTAINER_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
TOOLCHAIN_BUILD_TIMEOUT = 900
TIMEOUT_EXIT_CODES = (124, 137)  # coreutils timeout: TERM sent / KILL sent after -k

# Left out of the copy into the container: build outputs and caches, not source.
SKIP_ANYWHERE = frozenset(
    {".git", "node_modules", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
)
SKIP_TOP_LEVEL = frozenset(
    {".venv", "venv", "dist", "coverage", "htmlcov", ".coverage", "test-results"}
    | {"playwright-report", "bin"}
)


# -- pure: outcomes, statuses, summary ----------------------------------------------------


def verdict_line(output: str) -> str:
    """The audit's one-line verdict (`OK: ...`, `FAIL: ...`, `UNVERIFIED: ...`), if any."""
    for line in reversed(output.splitlines()):
        if line.strip().startswith(("OK:", "FAIL:", "UNVERIFIED:", "ERROR:")):
            return line.strip()
    return ""


_ERROR_PREFIXES = ("error", "fatal", "failed", "e: ", "npm error", "panic:", "traceback")
DETAIL_LIMIT = 240


def last_error_line(output: str) -> str:
    """The line of a failed command's output that says why, for its table row (pure).

    The last line that reads like an error (pip's ``ERROR: ...``, npm's ``npm error``,
    Go's ``FAIL``), else the last non-empty line; cut to `DETAIL_LIMIT` characters.
    """
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return ""
    errors = [line for line in lines if line.lower().startswith(_ERROR_PREFIXES)]
    line = errors[0] if errors else lines[-1]
    return line if len(line) <= DETAIL_LIMIT else line[: DETAIL_LIMIT - 1] + "…"


def outcome(
    service: str,
    check: Check,
    returncode: int,
    output: str,
    duration: float,
    *,
    timed_out: bool = False,
) -> CheckResult:
    """What one finished command means for its check (pure)."""
    name = f"{service}: {check.name}"
    status, detail = Status.FAILED, f"exit {returncode}"
    reason = last_error_line(output)
    if reason:
        detail = f"exit {returncode}: {reason}"
    if timed_out:
        detail = f"timed out after {check.timeout:g}s"
    elif check.kind is AUDIT:
        verdict = verdict_line(output)
        if returncode == 0:
            status, detail = Status.PASSED, verdict
        elif returncode == 3:
            status = Status.UNVERIFIED
            detail = verdict or "UNVERIFIED: vulnerability database unreachable"
        else:
            detail = verdict or detail
    elif returncode == 0 and check.fail_on_output and output.strip():
        files = [line.strip() for line in output.splitlines() if line.strip()]
        detail = f"{check.argv[0]} lists {len(files)} file(s): {', '.join(files[:5])}"
    elif returncode == 0:
        status, detail = Status.PASSED, ""
    kept = "" if status is Status.PASSED else tail(output, OUTPUT_TAIL_LINES)
    return CheckResult(name, status, duration, detail, kept)


def skipped(service: str, checks: Sequence[Check], reason: str) -> list[CheckResult]:
    return [CheckResult(f"{service}: {c.name}", Status.SKIPPED, 0.0, reason) for c in checks]


def service_status(results: Sequence[CheckResult]) -> Status:
    """FAILED if any check failed, else UNVERIFIED if any was, else PASSED; SKIPPED if
    every check was (pure)."""
    return worst(result.status for result in results) if results else Status.PASSED


def stage_status(results: Sequence[CheckResult], *, strict: bool) -> Status:
    """The stage's status; `strict` turns an unverified audit into a failed stage (pure)."""
    status = service_status(results)
    if status is Status.UNVERIFIED and strict:
        return Status.FAILED
    return Status.PASSED if status is Status.SKIPPED else status


def strict_default(environ: Mapping[str, str] | None = None) -> bool:
    """Strict unless told otherwise when running in CI."""
    return in_ci(environ)


def summarize(by_service: Mapping[str, Sequence[CheckResult]], *, strict: bool) -> str:
    """`backend ✓ monitor ✗ (pytest failed) frontend ? (npm audit unverified)` (pure)."""
    parts = []
    any_unverified = False
    for service, results in by_service.items():
        status = service_status(results)
        part = f"{service} {status.mark}"
        if status is Status.FAILED:
            failed = [_check_name(r) for r in results if r.status is Status.FAILED]
            part += f" ({', '.join(failed)} failed)"
        elif status is Status.UNVERIFIED:
            any_unverified = True
            unverified = [_check_name(r) for r in results if r.status is Status.UNVERIFIED]
            part += f" ({', '.join(unverified)} unverified)"
        parts.append(part)
    summary = " ".join(parts)
    if any_unverified and strict:
        summary += " — strict: unverified audits fail the stage"
    return summary


def _check_name(result: CheckResult) -> str:
    return result.name.split(": ", 1)[-1]


# `--offline`: every tool works from its local cache only, and says so when that lacks
# something (the checks themselves are unchanged). The audits' databases are never
# cached: offline they report UNVERIFIED, as when the database is unreachable.
OFFLINE_ENV: Mapping[str, str] = MappingProxyType(
    {
        "GOPROXY": "off",  # the module cache only: "module lookup disabled by GOPROXY=off"
        "GOSUMDB": "off",
        "npm_config_offline": "true",  # npm's cache only
        "PIP_NO_INDEX": "1",  # what the venv already has
    }
)
OFFLINE_NOTE = "offline: needs a package registry for what the local cache lacks"


def offline_checks(selected: Mapping[str, Sequence[Check]]) -> dict[str, tuple[Check, ...]]:
    """The same checks, each with OFFLINE_ENV in its environment (pure)."""
    return {
        service: tuple(replace(c, env={**c.env, **OFFLINE_ENV}) for c in checks)
        for service, checks in selected.items()
    }


def select_checks(
    services: Sequence[str], names: Collection[str] | None
) -> dict[str, tuple[Check, ...]]:
    """The checks to run per service, in table order; refuses unknown names (pure)."""
    unknown = [service for service in services if service not in CHECKS]
    if unknown:
        raise LabError(
            f"unknown service(s) for the quality stage: {', '.join(unknown)}",
            hint=f"services with quality checks: {', '.join(SERVICES)}",
        )
    wanted = dict.fromkeys(services)
    if names is not None:
        known = {check.name for service in wanted for check in CHECKS[service]}
        missing = sorted(set(names) - known)
        if missing:
            raise LabError(
                f"unknown check(s): {', '.join(missing)}",
                hint=f"checks of {', '.join(wanted)}: {', '.join(sorted(known))}",
            )
    return {
        service: tuple(c for c in CHECKS[service] if names is None or c.name in names)
        for service in wanted
    }


# -- the stage ----------------------------------------------------------------------------

# Runs one service's checks; returns their results in order.
ServiceRunner = Callable[[str, Sequence[Check]], list[CheckResult]]


def run_quality(
    ui: UI,
    config: Config,
    *,
    services: Sequence[str] = ALL,
    runner: str = "docker",
    strict: bool | None = None,
    checks: Collection[str] | None = None,
    apps_dir: Path = APPS_DIR,
    workers: int | None = None,
    offline: bool = False,
) -> StageResult:
    """Run every selected service's checks, services in parallel; one StageResult.

    `checks` limits the run to checks of those names (tests, benchmarks); `apps_dir`
    holds one directory per service; `workers` bounds the parallel services; `offline`
    runs each tool from its local cache only (OFFLINE_ENV).
    """
    strict = strict_default() if strict is None else strict
    selected = select_checks(services, checks)
    if offline:
        selected = offline_checks(selected)
    cancelled_hook: Callable[[], None] = _nothing
    cancelled = threading.Event()
    run_service: ServiceRunner
    if runner == "host":
        run_service = HostRunner(ui, apps_dir, cancelled).run_service
    elif runner == "docker":
        docker_runner = DockerRunner(ui, config, apps_dir, cancelled)
        run_service = docker_runner.run_service
        cancelled_hook = docker_runner.remove_containers
    else:
        raise LabError(f"unknown runner {runner!r}", hint="use --runner docker or --runner host")

    # The stage's start and ✓/✗ lines are the step runner's; this says what runs where.
    ui.info(f"  quality checks of {', '.join(selected)} ({runner} runner)")
    started_at, started = time.time(), time.monotonic()
    by_service = _in_parallel(run_service, selected, workers, cancelled, cancelled_hook)
    if offline:  # say plainly why a check could not run here
        by_service = {
            service: [
                replace(r, detail=f"{OFFLINE_NOTE}: {r.detail}") if r.status is Status.FAILED else r
                for r in results
            ]
            for service, results in by_service.items()
        }
    duration = time.monotonic() - started
    every = [result for results in by_service.values() for result in results]
    status = stage_status(every, strict=strict)
    summary = summarize(by_service, strict=strict)
    ui.table(
        "quality",
        ("check", "time", "result"),
        [Row((r.name, f"{r.duration:.1f}s", _result_text(r)), STYLE[r.status]) for r in every],
    )
    return StageResult(
        name=STAGE,
        status=status,
        started=started_at,
        duration=duration,
        summary=summary,
        checks=tuple(every),
        data={
            "runner": runner,
            "strict": strict,
            "services": {s: service_status(r).value for s, r in by_service.items()},
        },
    )


def _nothing() -> None:
    pass


def _result_text(result: CheckResult) -> str:
    return f"{result.status.value}: {result.detail}" if result.detail else result.status.value


def _in_parallel(
    run_service: ServiceRunner,
    selected: Mapping[str, Sequence[Check]],
    workers: int | None,
    cancelled: threading.Event,
    on_cancel: Callable[[], None],
) -> dict[str, list[CheckResult]]:
    size = max(1, min(workers or len(selected), len(selected)))
    pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="quality")
    try:
        futures = {s: pool.submit(run_service, s, checks) for s, checks in selected.items()}
        return {service: future.result() for service, future in futures.items()}
    except BaseException:
        # Ctrl-C: no new check starts; the docker runner's containers are removed, which
        # ends their checks; the host runner's running commands end at their timeouts.
        cancelled.set()
        on_cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _report(ui: UI, result: CheckResult, output: str) -> None:
    """One line per finished check (threads share the console); the tail on failure."""
    colour = {"passed": "green", "failed": "red", "unverified": "yellow", "skipped": "dim"}
    mark = f"[{colour[result.status.value]}]{result.status.mark}[/]"
    note = f" — {result.detail}" if result.detail else ""
    ui.console.print(f"{mark} {_escape(result.name)} ({result.duration:.1f}s){_escape(note)}")
    log.info("check %s: %s (%.2fs)%s", result.status.value, result.name, result.duration, note)
    if result.output and result.status in (Status.FAILED, Status.UNVERIFIED):
        ui.console.print(_indent(result.output), markup=False, highlight=False)
    ui.output(output)  # everything at -vv
    log.debug("output of %s:\n%s", result.name, output.rstrip())


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


def _run_in_order(
    ui: UI,
    service: str,
    checks: Sequence[Check],
    execute: Callable[[Check], CheckResult],
    cancelled: threading.Event,
    *,
    results: list[CheckResult] | None = None,
) -> list[CheckResult]:
    """Run `checks` one after another; a failed setup check skips the rest."""
    results = [] if results is None else results
    for index, check in enumerate(checks):
        if cancelled.is_set():
            results += skipped(service, checks[index:], "cancelled")
            break
        result = execute(check)
        results.append(result)
        if check.kind is SETUP and result.status is Status.FAILED:
            reason = f"setup step '{check.name}' failed"
            for rest in skipped(service, checks[index + 1 :], reason):
                results.append(rest)
                _report(ui, rest, "")
            break
    return results


# -- host runner --------------------------------------------------------------------------


class HostRunner:
    """Runs checks with this machine's toolchains, in `apps_dir/<service>`."""

    def __init__(self, ui: UI, apps_dir: Path, cancelled: threading.Event) -> None:
        self.ui = ui
        self.apps_dir = apps_dir
        self.cancelled = cancelled

    def run_service(self, service: str, checks: Sequence[Check]) -> list[CheckResult]:
        directory = self.apps_dir / service
        if not directory.is_dir():
            results = skipped(service, checks, f"no directory {directory}")
            return [CheckResult(r.name, Status.FAILED, 0.0, r.detail) for r in results]

        def execute(check: Check) -> CheckResult:
            return self.run_check(service, directory, check)

        return _run_in_order(self.ui, service, checks, execute, self.cancelled)

    def run_check(self, service: str, directory: Path, check: Check) -> CheckResult:
        started = time.monotonic()
        try:
            done = proc.run(
                check.argv,
                timeout=check.timeout,
                cwd=directory,
                env=dict(check.env) or None,
                check=False,
            )
        except CommandTimeout as error:
            result = outcome(
                service,
                check,
                error.returncode,
                error.output_tail or "",
                time.monotonic() - started,
                timed_out=True,
            )
            output = error.output_tail or ""
        except LabError as error:  # ToolNotFound: the toolchain is missing
            output = error.render()
            result = CheckResult(
                f"{service}: {check.name}",
                Status.FAILED,
                time.monotonic() - started,
                error.message,
                output,
            )
        else:
            output = _joined(done.stdout, done.stderr)
            result = outcome(service, check, done.returncode, output, done.duration)
        _report(self.ui, result, output)
        return result


def _joined(stdout: str, stderr: str) -> str:
    if stdout and stderr:
        return f"{stdout.rstrip()}\n{stderr}"
    return stdout or stderr


# -- docker runner ------------------------------------------------------------------------


class DockerRunner:
    """Runs checks in a throw-away container per service, from its toolchain image."""

    def __init__(self, ui: UI, config: Config, apps_dir: Path, cancelled: threading.Event) -> None:
        self.ui = ui
        self.config = config
        self.apps_dir = apps_dir
        self.cancelled = cancelled
        self.engine = engine.client()
        # A check's `docker exec` answers only when it ends: the HTTP read timeout must
        # outlast the longest check (lab.engine's client uses a short connect-sized one).
        longest = max(c.timeout for checks in CHECKS.values() for c in checks)
        self.engine.api.timeout = int(longest) + 120
        self._image_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._live: dict[str, Any] = {}  # running containers by name

    def remove_containers(self) -> None:
        """Remove every container still running checks (on Ctrl-C)."""
        with self._lock:
            live = list(self._live.values())
        for container in live:
            try:
                container.remove(force=True, v=True)
            except engine.ERRORS:
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
                        _report(self.ui, rest, "")
                    return results
            env: dict[str, str] = {}
            volumes = self._cache_volumes(toolchain)
            if toolchain.needs_backend_binary:
                volumes[self._volume("backend-bin")] = {"bind": BACKEND_BIN_DIR, "mode": "ro"}
                env["BACKEND_BIN"] = f"{BACKEND_BIN_DIR}/backend"
            with self._container(service, image, volumes, env) as container:

                def execute(check: Check) -> CheckResult:
                    return self._exec(container, service, check)

                return _run_in_order(
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
        _report(self.ui, failure, "")
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
            try:
                self.engine.images.get(tag)
                return tag
            except docker.errors.ImageNotFound:
                pass
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
        try:
            return self.engine.images.get(reference)
        except docker.errors.ImageNotFound:
            pass
        except engine.ERRORS as error:
            raise engine.unreachable(error) from error
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
                buildargs={"BASE": base, **_proxy_env()},
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
            try:
                self.engine.volumes.get(name)
            except docker.errors.NotFound:
                self.engine.volumes.create(name=name, labels=labels)
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
        environment = {**_proxy_env(), **env}
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
        try:
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
        except engine.ERRORS as error:
            raise LabError(
                f"cannot create the {service} check container from {image}: {error}",
                hint="check the Docker Engine (`invoke lab.doctor`)",
            ) from error
        with self._lock:
            self._live[name] = container
        try:
            container.put_archive("/", source_archive(self.apps_dir / service))
            if bundle is not None:
                container.put_archive("/", file_archive(bundle, CONTAINER_CA_BUNDLE))
            container.start()
            yield container
        except engine.ERRORS as error:
            raise LabError(
                f"the {service} check container failed: {error}",
                hint="check the Docker Engine (`invoke lab.doctor`)",
            ) from error
        finally:
            with self._lock:
                self._live.pop(name, None)
            try:
                container.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass  # removed on Ctrl-C already
            except engine.ERRORS:
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
            _report(self.ui, result, "")
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
        _report(self.ui, result, output)
        return result


def derived_dockerfile(packages: Sequence[str]) -> str:
    """The recipe of a toolchain image with extra Debian packages (pure)."""
    return (
        "ARG BASE\n"
        "FROM ${BASE}\n"
        "RUN apt-get update \\\n"
        f" && apt-get install -y --no-install-recommends {' '.join(packages)} \\\n"
        " && rm -rf /var/lib/apt/lists/*\n"
    )


def host_ca_bundle(environ: Mapping[str, str] | None = None) -> Path | None:
    """The CA bundle this host trusts (SSL_CERT_FILE, else Debian's), if there is one."""
    environ = os.environ if environ is None else environ
    for candidate in (environ.get("SSL_CERT_FILE"), HOST_CA_BUNDLE):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _proxy_env() -> dict[str, str]:
    return {key: os.environ[key] for key in PROXY_VARIABLES if os.environ.get(key)}


def _skip_member(relative: Path) -> bool:
    parts = relative.parts
    if not parts:
        return False
    return parts[0] in SKIP_TOP_LEVEL or any(part in SKIP_ANYWHERE for part in parts)


def source_archive(directory: Path, prefix: str = SOURCE_DIR.strip("/")) -> bytes:
    """A tar of `directory` under `prefix/`, owned by root, build outputs left out."""
    if not directory.is_dir():
        raise LabError(f"no service directory {directory}", hint="run from the lab repository")

    def keep(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
        relative = Path(member.name).relative_to(prefix)
        if _skip_member(relative):
            return None
        member.uid = member.gid = 0
        member.uname = member.gname = "root"
        return member

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(directory, arcname=prefix, recursive=True, filter=keep)
    return buffer.getvalue()


def file_archive(source: Path, destination: str) -> bytes:
    """A tar holding one file, at `destination` (absolute) when extracted at `/`."""
    data = source.read_bytes()
    member = tarfile.TarInfo(destination.lstrip("/"))
    member.size = len(data)
    member.mode = 0o644
    member.mtime = int(time.time())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()
