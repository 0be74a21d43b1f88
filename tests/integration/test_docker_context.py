"""lab follows the docker CLI's current context, as kind does: the real CLI writes the
context and the real daemon answers through it (issue #16.8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab import engine
from lab.errors import LabError
from tests.conftest import REPO, require_docker

INVOKE = str(Path(sys.executable).parent / "invoke")


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment whose docker CLI config lives in tmp_path, with no DOCKER_HOST."""
    require_docker()
    environ = {key: value for key, value in os.environ.items() if key != "DOCKER_HOST"}
    environ["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", environ["DOCKER_CONFIG"])
    return environ


def docker_cli(environ: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        ["docker", *args], env=environ, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_the_daemon_is_reached_through_the_cli_s_current_context(
    docker_config: dict[str, str], tmp_path: Path
) -> None:
    # The same daemon at an address that is not the default socket, as on Colima.
    elsewhere = tmp_path / "elsewhere.sock"
    elsewhere.symlink_to(engine.DEFAULT_SOCKET.removeprefix("unix://"))
    docker_cli(
        docker_config, "context", "create", "elsewhere", "--docker", f"host=unix://{elsewhere}"
    )
    docker_cli(docker_config, "context", "use", "elsewhere")

    assert engine.endpoint() == engine.Endpoint(f"unix://{elsewhere}", "context elsewhere")
    assert engine.client().version()["Version"]

    doctor = subprocess.run(
        [INVOKE, "--search-root", str(REPO), "lab.doctor"],
        env={**docker_config, "PYTHONPATH": str(REPO), "COLUMNS": "400", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = doctor.stdout + doctor.stderr
    row = next(line for line in out.splitlines() if "Docker daemon" in line)
    assert f"unix://{elsewhere} (context elsewhere)" in row, out


def test_a_context_whose_daemon_is_gone_is_named_in_the_error(
    docker_config: dict[str, str], tmp_path: Path
) -> None:
    gone = tmp_path / "gone.sock"
    docker_cli(docker_config, "context", "create", "gone", "--docker", f"host=unix://{gone}")
    docker_cli(docker_config, "context", "use", "gone")

    with pytest.raises(LabError) as raised:
        engine.client()

    assert f"unix://{gone} (context gone)" in raised.value.message
    assert "docker context ls" in (raised.value.hint or "")
