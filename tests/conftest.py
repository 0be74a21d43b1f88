"""Shared fixtures: a pinned git identity, fake executables at the process boundary."""

from __future__ import annotations

import dataclasses
import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab import proc
from lab.config import Config

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every test runs in its own directory with a fixed git identity and no dry-run."""
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "GIT_AUTHOR_NAME": "lab test",
        "GIT_AUTHOR_EMAIL": "test@lab.local",
        "GIT_COMMITTER_NAME": "lab test",
        "GIT_COMMITTER_EMAIL": "test@lab.local",
        "GIT_CONFIG_NOSYSTEM": "1",
    }.items():
        monkeypatch.setenv(key, value)
    for field in dataclasses.fields(Config):  # a developer's own settings must not leak in
        monkeypatch.delenv(f"LAB_{field.name.upper()}", raising=False)
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path / ".lab"))
    proc.set_local_bin(tmp_path / ".lab" / "bin")
    yield


FakeTool = Callable[..., Path]


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTool:
    """Put a fake executable on PATH: a Python script printing `stdout` and exiting `code`.

    Faking is allowed only here, at the process boundary, for tools that cannot run on
    our CI machines (kind, a cluster-bound istioctl).
    """
    bindir = tmp_path / "fake-bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")

    def make(
        name: str, stdout: str = "", code: int = 0, stderr: str = "", log: Path | None = None
    ) -> Path:
        script = bindir / name
        line = f"' '.join([{name!r}] + sys.argv[1:]) + '\\n'"
        record = f"with open({str(log)!r}, 'a') as f: f.write({line})\n" if log else ""
        script.write_text(
            f"#!{sys.executable}\n"
            "import sys\n"
            f"{record}"
            f"sys.stdout.write({stdout!r})\n"
            f"sys.stderr.write({stderr!r})\n"
            f"sys.exit({code})\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        return script

    return make


def require_docker() -> object:
    """The Docker client, or a clear stop: a failure in CI (which starts Docker, so its
    absence is a broken install step), a skip with the reason on a developer machine."""
    from lab import engine
    from lab.errors import LabError

    try:
        return engine.client()
    except LabError as error:
        message = f"no Docker Engine here ({error.message}); .ci/tools/dockerd.sh starts one"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
