"""The monitor's venv, built the way the quality stage and `make venv` build it, starting
from the pip that the interpreter bundles (ensurepip's), never a pip upgraded by hand.

Python 3.11.7 bundles pip 23.2.1, which refuses the hashed dev lock on its own (it
treats pytest-cov's `coverage[toml]` as an unpinned requirement); the pinned pip of
requirements-pip.txt goes in first.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lab import checks, quality, toolchains

pytestmark = pytest.mark.integration

MONITOR = quality.APPS_DIR / "monitor"


def run(argv: tuple[str, ...] | list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=900, check=False)


def pip_version(venv_python: Path, cwd: Path) -> str:
    result = run([str(venv_python), "-m", "pip", "--version"], cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[1]


@pytest.fixture
def monitor_copy(tmp_path: Path) -> Path:
    python = shutil.which("python3")
    if python is None:
        pytest.fail("python3 is needed: the monitor's checks run with it")
    destination = tmp_path / "monitor"
    shutil.copytree(
        MONITOR,
        destination,
        ignore=shutil.ignore_patterns(*toolchains.SKIP_ANYWHERE, *toolchains.SKIP_TOP_LEVEL),
    )
    return destination


def test_setup_checks_install_the_hashed_locks_starting_from_the_bundled_pip(
    monitor_copy: Path,
) -> None:
    bundled = run(["python3", "-c", "import ensurepip; print(ensurepip.version())"], monitor_copy)
    setup = [check for check in checks.CHECKS["monitor"] if check.kind is checks.SETUP]
    assert [check.name for check in setup] == ["venv", "pip bootstrap", "pip install"]
    venv_python = monitor_copy / ".venv" / "bin" / "python"

    for check in setup:
        result = run(check.argv, monitor_copy)
        assert result.returncode == 0, f"{check.name}: {result.stdout}\n{result.stderr}"
        if check.name == "venv":
            # The starting point is the interpreter's own pip, whatever its age.
            assert pip_version(venv_python, monitor_copy) == bundled.stdout.strip()

    pinned = (MONITOR / "requirements-pip.txt").read_text()
    assert f"pip=={pip_version(venv_python, monitor_copy)} " in pinned
    tools = run(
        [str(venv_python), "-c", "import pytest, pytest_cov, pylint, pip_audit"], monitor_copy
    )
    assert tools.returncode == 0, tools.stderr


def test_make_venv_bootstraps_pip_before_the_locks(monitor_copy: Path) -> None:
    result = run(["make", "--no-print-directory", "venv", "PYTHON=python3"], monitor_copy)

    assert result.returncode == 0, result.stdout + result.stderr
    commands = [line for line in result.stdout.splitlines() if "pip install" in line]
    assert "requirements-pip.txt" in commands[0], commands
    assert "requirements-dev.txt" in commands[1], commands
    assert (monitor_copy / ".venv" / ".installed").is_file()


def test_the_pinned_pip_is_the_one_the_dev_lock_pins() -> None:
    def pin(text: str) -> str:
        (line,) = [line for line in text.splitlines() if line.startswith("pip==")]
        return line.split()[0]

    assert pin((MONITOR / "requirements-pip.txt").read_text()) == pin(
        (MONITOR / "requirements-dev.txt").read_text()
    )
