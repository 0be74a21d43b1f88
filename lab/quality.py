"""The pipeline's quality stage: tests, linters and vulnerability audits of every service.

`lab.checks` is the one definition of what "quality" means (`CHECKS`: per service, an
ordered tuple of checks, each an argv run in the service's directory) and of what each
result means. Two runners run exactly that table:

- ``host`` (`HostRunner`, here): the local toolchains (go, python3 ≥ 3.11, npm), through
  `lab.proc`, in ``apps/<service>``, as the apps' own Makefiles do (the monitor's venv is
  its ``.venv``).
- ``docker`` (the default; needs only Docker): per service, one throw-away container
  from the service's build toolchain image; `lab.docker_runner` says how.

The stage also lints the GitOps repository (the `gitops` row, `lab.gitops_lint`), on
this machine with lab's own kustomize whatever the runner. Statuses follow
`lab.checks`. Services run in parallel (a bounded thread pool), checks within a
service in order. On Ctrl-C no new check starts and the docker runner's
containers are removed; a host check that is running ends at its timeout (`lab.proc`
runs it in its own session).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from lab import gitops_lint, proc
from lab.checks import (
    ALL,
    OFFLINE_NOTE,
    Check,
    offline_checks,
    outcome,
    report,
    run_in_order,
    select_checks,
    service_status,
    skipped,
    stage_status,
    strict_default,
    summarize,
)
from lab.config import Config
from lab.docker_runner import DockerRunner
from lab.errors import CommandTimeout, LabError
from lab.report import CheckResult, StageResult, Status
from lab.steps import STYLE
from lab.ui import UI, Row

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APPS_DIR = PROJECT_ROOT / "apps"
STAGE = "quality"


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
    gitops_dir: Path | None = None,
) -> StageResult:
    """Run every selected service's checks, services in parallel; one StageResult.

    `checks` limits the run to checks of those names (tests, benchmarks); `apps_dir`
    holds one directory per service; `workers` bounds the parallel services; `offline`
    runs each tool from its local cache only (OFFLINE_ENV); `gitops_dir` adds the
    `gitops` row, which lints that GitOps repository (`lab.gitops_lint`).
    """
    strict = strict_default() if strict is None else strict
    if runner not in ("host", "docker"):
        raise LabError(f"unknown runner {runner!r}", hint="use --runner docker or --runner host")
    gitops_row = () if gitops_dir is None else gitops_lint.CHECKS
    gitops_names = {check.name for check in gitops_row}
    gitops_checks = tuple(c for c in gitops_row if checks is None or c.name in checks)
    names = None if checks is None else set(checks) - gitops_names
    selected = {  # a service none of whose checks was asked for does not run
        service: chosen
        for service, chosen in select_checks(services, names, also=gitops_names).items()
        if chosen
    }
    if offline:
        selected = offline_checks(selected)
    cancelled_hook: Callable[[], None] = _nothing
    cancelled = threading.Event()
    run_service: ServiceRunner = _no_service
    if selected and runner == "host":
        run_service = HostRunner(ui, apps_dir, cancelled).run_service
    elif selected:  # the docker runner connects to Docker: only when there is work for it
        docker_runner = DockerRunner(ui, config, apps_dir, cancelled)
        run_service = docker_runner.run_service
        cancelled_hook = docker_runner.remove_containers
    if gitops_dir is not None and gitops_checks:  # on this machine, whatever the runner
        run_app = run_service

        def run_service(service: str, checks: Sequence[Check]) -> list[CheckResult]:
            if service == gitops_lint.SERVICE:
                return gitops_lint.run_checks(ui, config, gitops_dir, checks, cancelled)
            return run_app(service, checks)

        selected = {gitops_lint.SERVICE: gitops_checks, **selected}
    if not selected:
        raise LabError("no quality check to run", hint="name checks that exist (or none: all)")

    # The stage's start and ✓/✗ lines are the step runner's; this says what runs where.
    apps = ", ".join(service for service in selected if service != gitops_lint.SERVICE)
    where = [f"{apps} ({runner} runner)"] if apps else []
    if gitops_lint.SERVICE in selected:
        where.append(f"{gitops_dir} (lab's kustomize)")
    ui.info(f"  quality checks of {'; '.join(where)}")
    started_at, started = time.time(), time.monotonic()
    by_service = _in_parallel(run_service, selected, workers, cancelled, cancelled_hook)
    if offline:  # say plainly why a check could not run here
        by_service = {
            service: [
                replace(r, detail=f"{OFFLINE_NOTE}: {r.detail}")
                if r.status is Status.FAILED and service != gitops_lint.SERVICE  # no network
                else r
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


def _no_service(service: str, checks: Sequence[Check]) -> list[CheckResult]:
    raise AssertionError(f"no runner was made for {service}")  # selected had no service


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

        return run_in_order(self.ui, service, checks, execute, self.cancelled)

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
        report(self.ui, result, output)
        return result


def _joined(stdout: str, stderr: str) -> str:
    if stdout and stderr:
        return f"{stdout.rstrip()}\n{stderr}"
    return stdout or stderr
