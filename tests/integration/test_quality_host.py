"""The quality stage's host runner on the real apps, with the local toolchains.

The apps are copied to a temporary directory first (sources only, as the docker runner
copies them), so the checks' outputs (a venv, coverage files) never touch the working
tree that other people may be editing or testing in.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from lab import checks, quality, toolchains
from lab.config import Config
from lab.report import StageResult, Status
from lab.ui import UI

pytestmark = pytest.mark.integration

# Every backend check, and cheap ones of the others: the full run of every check is
# exercised by benchmarks/quality_parallel.py.
CHEAP = (
    *(check.name for check in checks.CHECKS["backend"]),
    "venv",
    "pip bootstrap",
    "pip install",
    "black",
    "isort",
    "npm audit",  # needs only package-lock.json
)


def copy_apps(destination: Path) -> Path:
    """apps/{backend,monitor,frontend} without their build outputs, under `destination`."""
    ignored = shutil.ignore_patterns(
        *toolchains.SKIP_ANYWHERE,
        *toolchains.SKIP_TOP_LEVEL,
        "backend",  # the built binary
    )
    for service in checks.SERVICES:
        source = quality.APPS_DIR / service
        shutil.copytree(source, destination / service, ignore=ignored, symlinks=True)
    return destination


def failures(stage: StageResult) -> str:
    return "\n".join(
        f"{c.name}: {c.status.value} {c.detail}\n{c.output}"
        for c in stage.checks
        if c.status in (Status.FAILED, Status.SKIPPED)
    )


def test_host_runner_runs_every_backend_check_and_cheap_others(tmp_path: Path) -> None:
    apps = copy_apps(tmp_path / "apps")
    ui_output = io.StringIO()

    stage = quality.run_quality(
        UI(stream=ui_output),
        Config(),
        runner="host",
        strict=False,
        checks=CHEAP,
        apps_dir=apps,
    )

    assert stage.name == "quality"
    assert [c.name for c in stage.checks] == [
        "backend: gofmt",
        "backend: go vet",
        "backend: go test",
        "backend: govulncheck",
        "monitor: venv",
        "monitor: pip bootstrap",
        "monitor: pip install",
        "monitor: black",
        "monitor: isort",
        "frontend: npm audit",
    ]
    assert stage.status is not Status.FAILED, failures(stage)
    for check in stage.checks:
        assert check.duration > 0, check.name
        if check.name.endswith(("govulncheck", "npm audit")):
            # Audits pass, or say clearly that their database was unreachable.
            assert check.status in (Status.PASSED, Status.UNVERIFIED), check
            assert check.detail.startswith(("OK:", "UNVERIFIED:")), check.detail
        else:
            assert check.status is Status.PASSED, check
    assert stage.data["runner"] == "host"
    assert "backend" in stage.summary and "frontend" in stage.summary
    assert "quality checks of backend, monitor, frontend (host runner)" in ui_output.getvalue()


def test_host_runner_fails_gofmt_on_an_unformatted_file(tmp_path: Path) -> None:
    apps = copy_apps(tmp_path / "apps")
    (apps / "backend" / "zz_unformatted.go").write_text("package main\nfunc  unformatted( ) {}\n")

    stage = quality.run_quality(
        UI(stream=io.StringIO()),
        Config(),
        services=("backend",),
        runner="host",
        strict=False,
        checks=("gofmt",),
        apps_dir=apps,
    )

    (check,) = stage.checks
    assert stage.status is Status.FAILED
    assert check.status is Status.FAILED
    assert "zz_unformatted.go" in check.detail
    assert stage.summary == "backend ✗ (gofmt failed)"


def test_strict_fails_the_stage_on_an_unverified_audit(tmp_path: Path) -> None:
    """A registry that refuses connections: npm audit cannot consult its database."""
    apps = copy_apps(tmp_path / "apps")
    npmrc = apps / "frontend" / ".npmrc"
    npmrc.write_text("registry=http://127.0.0.1:9/\nfetch-retries=0\n")

    def run(strict: bool) -> StageResult:
        return quality.run_quality(
            UI(stream=io.StringIO()),
            Config(),
            services=("frontend",),
            runner="host",
            strict=strict,
            checks=("npm audit",),
            apps_dir=apps,
        )

    lenient = run(False)
    (check,) = lenient.checks
    assert check.status is Status.UNVERIFIED, check
    assert check.detail.startswith("UNVERIFIED: vulnerability database unreachable")
    assert lenient.status is Status.UNVERIFIED
    assert lenient.summary == "frontend ? (npm audit unverified)"
    strict = run(True)
    assert strict.status is Status.FAILED
    assert strict.checks[0].status is Status.UNVERIFIED  # still shown as unverified


def test_offline_the_checks_use_the_local_caches_and_say_what_they_lack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apps = copy_apps(tmp_path / "apps")

    def go_vet() -> StageResult:
        return quality.run_quality(UI(stream=io.StringIO()), Config(), services=("backend",),
                                   runner="host", strict=False, checks=("go vet",),
                                   apps_dir=apps, offline=True)  # fmt: skip

    # This machine's module cache holds the backend's modules: offline works from it.
    (warm,) = go_vet().checks
    assert warm.status is Status.PASSED, warm
    # An empty module cache: no download is tried, and the check says why it failed.
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "empty-modcache"))
    (cold,) = go_vet().checks
    assert cold.status is Status.FAILED
    assert cold.detail.startswith(checks.OFFLINE_NOTE), cold.detail
    assert "GOPROXY=off" in cold.output, cold.output
