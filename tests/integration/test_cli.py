"""The real `invoke` program on our tasks.py: listing, doctor, bad config, exit codes."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from lab import proc
from tests.conftest import REPO, require_docker

INVOKE = str(Path(sys.executable).parent / "invoke")


def _project(tmp_path: Path, invoke_yaml: str | None = None) -> Path:
    """A copy of the project's entry point, so invoke.yaml can be broken safely."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "tasks.py", project / "tasks.py")
    if invoke_yaml is not None:
        (project / "invoke.yaml").write_text(invoke_yaml)
    return project


def _invoke(project: Path, *args: str, env: dict[str, str] | None = None) -> proc.Result:
    return proc.run(
        [INVOKE, "--search-root", str(project), *args],
        timeout=60,
        check=False,
        env={"PYTHONPATH": str(REPO), **(env or {})},
    )


def test_list_shows_every_task_with_help(tmp_path: Path) -> None:
    result = _invoke(_project(tmp_path), "--list")
    assert result.ok, result.stderr
    for name in ("lab.doctor", "lab.config"):
        line = next(line for line in result.stdout.splitlines() if name in line)
        assert len(line.split(name, 1)[1].strip()) > 10, f"{name} has no help line"


def test_doctor_without_docker_prints_the_table_and_exits_1(tmp_path: Path) -> None:
    result = _invoke(
        _project(tmp_path),
        "lab.doctor",
        env={"DOCKER_HOST": f"unix://{tmp_path}/absent.sock", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert "Docker daemon" in out and "start Docker" in out
    assert "blocking problem" in out
    assert "Traceback" not in out


def test_malformed_invoke_yaml_is_one_paragraph_not_a_traceback(tmp_path: Path) -> None:
    result = _invoke(_project(tmp_path, "lab: [\n"), "lab.config")
    assert result.returncode == 1
    assert "invoke.yaml is not valid YAML at line 2" in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_setting_names_the_key_and_exits_1(tmp_path: Path) -> None:
    result = _invoke(_project(tmp_path, "lab:\n  ingres_http_port: 9000\n"), "lab.config")
    assert result.returncode == 1
    assert "unknown setting 'ingres_http_port'" in result.stderr
    assert "did you mean 'ingress_http_port'" in result.stderr
    assert "Traceback" not in result.stderr


def test_overrides_from_invoke_yaml_and_environment_are_applied(tmp_path: Path) -> None:
    project = _project(tmp_path, "lab:\n  ingress_http_port: 9090\n  cluster_name: room\n")
    result = _invoke(project, "lab.config", env={"LAB_CLUSTER_NAME": "room-7", "COLUMNS": "200"})
    assert result.ok, result.stderr
    out = result.stdout + result.stderr
    assert "9090" in out and "room-7" in out


def test_each_run_writes_a_log_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = _invoke(_project(tmp_path), "lab.config", env={"LAB_STATE_DIR": str(state)})
    assert result.ok, result.stderr
    [log] = list((state / "logs").glob("*-lab-config.log"))
    assert "task lab.config started" in log.read_text()


def test_no_color_when_not_a_terminal(tmp_path: Path) -> None:
    result = _invoke(_project(tmp_path), "lab.config", env={"NO_COLOR": "1"})
    assert "\x1b[" not in result.stdout + result.stderr


def test_doctor_with_a_running_docker_reports_its_memory(tmp_path: Path) -> None:
    require_docker()
    result = _invoke(_project(tmp_path), "lab.doctor", env={"COLUMNS": "200"})
    out = result.stdout + result.stderr
    assert "Docker memory" in out and "GiB" in out
