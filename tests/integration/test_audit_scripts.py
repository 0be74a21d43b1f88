"""The three audit scripts, run for real, when the tool they drive is missing.

Each must print one line that says what is missing and how to get it, and exit 2
(ERROR: the audit could not run), never a traceback and never 0 or 3.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

APPS = Path(__file__).resolve().parents[2] / "apps"


def only_these_on_path(directory: Path, *tools: str) -> str:
    """A PATH holding just `tools` (symlinks to the real ones), for hiding the rest."""
    directory.mkdir()
    for tool in tools:
        real = shutil.which(tool)
        assert real, f"{tool} is needed to run this test"
        (directory / tool).symlink_to(real)
    return str(directory)


def assert_one_error_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    lines = output.splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("ERROR: "), output
    for word in words:
        assert word in lines[0], output


def test_monitor_audit_without_pip_audit_says_how_to_get_it(tmp_path: Path) -> None:
    # sys.executable is taken as given (a symlink is not resolved), so pip-audit is
    # looked for beside this interpreter link, where it is not.
    bin_dir = tmp_path / "venv-bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)

    result = subprocess.run(
        [str(bin_dir / "python"), "scripts/audit.py", "requirements.txt"],
        cwd=APPS / "monitor",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert_one_error_line(result, "pip-audit is not installed", "make venv")


def test_backend_audit_without_go_says_how_to_get_it(tmp_path: Path) -> None:
    path = only_these_on_path(tmp_path / "bin", "bash", "dirname", "mktemp", "rm", "cat", "grep")

    result = subprocess.run(
        ["bash", "scripts/audit.sh"],
        cwd=APPS / "backend",
        env={"PATH": path, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        executable=shutil.which("bash"),
    )

    assert_one_error_line(result, "go is not installed", "install Go")


def test_backend_audit_with_a_wrong_govulncheck_path_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", "scripts/audit.sh"],
        cwd=APPS / "backend",
        env={**os.environ, "GOVULNCHECK": str(tmp_path / "nowhere" / "govulncheck")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert_one_error_line(result, "GOVULNCHECK=", "not an executable")


def test_frontend_audit_without_npm_says_how_to_get_it(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node, "node is needed to run this test"
    empty = tmp_path / "empty-path"
    empty.mkdir()

    result = subprocess.run(
        [node, "scripts/audit.mjs"],
        cwd=APPS / "frontend",
        env={"PATH": str(empty), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert_one_error_line(result, "npm is not installed", "install Node.js")
