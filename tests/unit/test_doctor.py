"""lab.doctor: parsers on real tool output; checks against fake executables on PATH."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from lab import config, doctor
from lab.doctor import Status

# Captured from the real tools.
KIND_VERSION = "kind v0.32.0 go1.25.7 linux/amd64\n"
ISTIOCTL_VERSION = "client version: 1.30.0\n"
KUBECTL_VERSION = (
    '{\n  "clientVersion": {\n    "major": "1",\n    "minor": "36",\n'
    '    "gitVersion": "v1.36.1",\n    "platform": "linux/amd64"\n  },\n'
    '  "kustomizeVersion": "v5.7.1"\n}\n'
)


def test_parsers_read_real_output() -> None:
    assert doctor.parse_kind_version(KIND_VERSION) == "v0.32.0"
    assert doctor.parse_istioctl_version(ISTIOCTL_VERSION) == "1.30.0"
    assert doctor.parse_istioctl_version("1.30.0\n") == "1.30.0"
    assert doctor.parse_kubectl_version(KUBECTL_VERSION) == "v1.36.1"
    assert doctor.parse_kubectl_version("not json") is None
    assert doctor.parse_kind_version("garbage") is None
    assert doctor.parse_kustomize_version("v5.8.1\n") == "v5.8.1"
    assert doctor.parse_kustomize_version("{Version:kustomize/v5.8.1 GitCommit:abc}") == "v5.8.1"


@pytest.mark.parametrize(
    ("found", "pinned", "same"),
    [
        ("v0.32.0", "v0.32.0", True),
        ("1.30.0", "1.30.0", True),
        ("v1.36.1-dispatcher", "v1.36.1", True),
        ("v0.31.0", "v0.32.0", False),
        ("1.29.3", "1.30.0", False),
    ],
)
def test_same_release(found: str, pinned: str, same: bool) -> None:
    assert doctor.same_release(found, pinned) is same


def _tool_checks(cfg: config.Config) -> dict[str, doctor.Check]:
    return {spec.name: doctor.check_tool(spec, cfg) for spec in doctor.TOOLS}


def test_tools_at_pinned_versions_pass(fake_bin) -> None:
    fake_bin("kind", stdout=KIND_VERSION)
    fake_bin("istioctl", stdout=ISTIOCTL_VERSION)
    fake_bin("kubectl", stdout=KUBECTL_VERSION)
    fake_bin("kustomize", stdout="v5.8.1\n")
    checks = _tool_checks(config.load({}, {}))
    assert {name: c.status for name, c in checks.items()} == {
        "kind": Status.OK,
        "istioctl": Status.OK,
        "kubectl": Status.OK,
        "kustomize": Status.OK,
    }


def test_wrong_version_warns_with_a_lab_tools_hint(fake_bin) -> None:
    fake_bin("kind", stdout="kind v0.20.0 go1.20 linux/amd64\n")
    check = _tool_checks(config.load({}, {}))["kind"]
    assert check.status is Status.WARN
    assert "v0.20.0" in check.detail and "v0.32.0" in check.detail
    assert "lab.tools" in check.hint


def test_missing_tool_fails_and_blocks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    checks = _tool_checks(config.load({}, {}))
    assert checks["kind"].blocks and checks["istioctl"].blocks
    assert checks["kubectl"].status is Status.FAIL and not checks["kubectl"].blocks
    assert "lab.tools" in checks["kind"].hint


def test_tool_that_crashes_is_reported_not_raised(fake_bin) -> None:
    fake_bin("kind", stderr="Segmentation fault\n", code=139)
    check = _tool_checks(config.load({}, {}))["kind"]
    assert check.status is Status.WARN
    assert "cannot read its version" in check.detail


def test_absent_docker_daemon_is_a_blocking_row_with_a_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    [check] = doctor.check_docker(config.load({}, {}))
    assert check.name == "Docker daemon" and check.blocks
    assert "no-such.sock" in check.detail
    assert "start Docker" in check.hint


def test_busy_port_fails_naming_the_setting() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = config.load({"ingress_http_port": port}, {})
        checks = {c.name: c for c in doctor.check_ports(cfg)}
        row = checks[f"port {port} (ingress (app))"]
        assert row.blocks
        assert "ingress_http_port" in row.hint
        assert checks[f"port {port} (ingress (app))"].status is Status.FAIL
        ours = {c.name: c for c in doctor.check_ports(cfg, owners={port: "lab-control-plane"})}
        row = ours[f"port {port} (ingress (app))"]
        assert row.status is Status.OK and "lab-control-plane" in row.detail


def test_low_inotify_limits_block_with_the_sysctl(tmp_path: Path) -> None:
    (tmp_path / "max_user_watches").write_text("8192\n")
    (tmp_path / "max_user_instances").write_text("1024\n")
    checks = {c.name: c for c in doctor.check_inotify(config.load({}, {}), root=tmp_path)}
    assert checks["inotify max_user_watches"].status is Status.FAIL
    assert checks["inotify max_user_watches"].blocks
    assert "fs.inotify.max_user_watches=524288" in checks["inotify max_user_watches"].hint
    assert checks["inotify max_user_instances"].status is Status.OK


def test_inotify_is_skipped_with_a_reason_off_linux(tmp_path: Path) -> None:
    [check] = doctor.check_inotify(config.load({}, {}), root=tmp_path / "absent")
    assert check.status is Status.SKIP and "not Linux" in check.detail


def test_ubuntus_default_inotify_instances_block() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        Path(root, "max_user_watches").write_text("524288\n")
        Path(root, "max_user_instances").write_text("128\n")  # Ubuntu's default
        checks = {c.name: c for c in doctor.check_inotify(config.load({}, {}), root=Path(root))}
    row = checks["inotify max_user_instances"]
    assert row.blocks and "sysctl fs.inotify.max_user_instances=512" in row.hint


def test_the_memory_minimum_admits_a_real_8_gb_machine() -> None:
    # An 8 GB laptop's Docker reports about 7.6-7.8 GiB of MemTotal.
    assert config.load({}, {}).docker_min_memory_gib <= 7.6
