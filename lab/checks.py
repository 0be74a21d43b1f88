"""What the quality stage checks, and what each check's result means.

`CHECKS` is the one definition of what "quality" means: per service, an ordered tuple of
checks, each an argv run in the service's directory. Both runners run exactly that table
(the host runner in `lab.quality`, the docker runner in `lab.docker_runner`), one service's
checks in order through `run_in_order`, each finished check printed by `report`. The
rest is pure: what a finished command means (`outcome`), the service's and the stage's
status, the summary line, and which checks a run selects.

Statuses: a check passes on exit 0 (``gofmt -l`` also needs empty output). An audit
follows docs/CONTRACTS.md: exit 3 is `Status.UNVERIFIED` (database unreachable), shown
as ``?``; with ``strict`` (the default when ``CI=true``) an unverified check fails the
stage. A failed *setup* check skips the rest of its service, with the reason.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType

from lab.config import in_ci
from lab.errors import LabError, tail
from lab.report import CheckResult, Status, worst
from lab.ui import UI

log = logging.getLogger("lab.quality")  # one logger for the stage's modules

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
    services: Sequence[str], names: Collection[str] | None, *, also: Collection[str] = ()
) -> dict[str, tuple[Check, ...]]:
    """The checks to run per service, in table order; refuses unknown names (pure).

    `also`: the names of checks outside this table (the gitops row's), for the hint."""
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
                hint=f"checks of {', '.join([*wanted, *(['gitops'] if also else [])])}: "
                f"{', '.join(sorted(known | set(also)))}",
            )
    return {
        service: tuple(c for c in CHECKS[service] if names is None or c.name in names)
        for service in wanted
    }


# -- what both runners share: checks in order, one line per check -----------------------


def report(ui: UI, result: CheckResult, output: str) -> None:
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


def run_in_order(
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
                report(ui, rest, "")
            break
    return results
