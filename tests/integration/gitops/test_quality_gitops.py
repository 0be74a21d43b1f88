"""The quality stage's gitops row on the real gitops/ tree and broken copies of it,
rendered by the real kustomize and analyzed by the real istioctl (.ci/tools/kustomize.sh
and .ci/tools/istioctl.sh build the pinned ones; istioctl is put on PATH, where lab
looks for it)."""

from __future__ import annotations

import io
import os
import shutil
import threading
from pathlib import Path

import pytest

from lab import gitops_lint, manifests, proc, quality
from lab.config import Config
from lab.report import Status
from lab.ui import UI
from tests.support import manifest_checks

pytestmark = pytest.mark.integration

GITOPS = Path(__file__).resolve().parents[3] / "gitops"


@pytest.fixture(autouse=True)
def istioctl_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    binary = Path(manifest_checks.istioctl_binary())
    monkeypatch.setenv("PATH", f"{binary.parent}{os.pathsep}{os.environ['PATH']}")


@pytest.fixture
def gitops_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "gitops"
    shutil.copytree(GITOPS, copy)
    return copy


def _row(
    gitops_dir: Path, checks: set[str] | None = None
) -> tuple[dict[str, tuple[Status, str]], str]:
    out = io.StringIO()
    stage = quality.run_quality(
        UI(stream=out), Config(), services=(), checks=checks, gitops_dir=gitops_dir
    )
    rows = {r.name.removeprefix("gitops: "): (r.status, r.detail) for r in stage.checks}
    assert stage.status is (
        Status.FAILED if any(s is Status.FAILED for s, _ in rows.values()) else Status.PASSED
    )
    return rows, out.getvalue()


def test_the_project_s_gitops_tree_passes_every_check() -> None:
    rows, _ = _row(GITOPS)
    assert {name: status for name, (status, _) in rows.items()} == {
        "kustomize build": Status.PASSED,
        "patch targets": Status.PASSED,
        "structure": Status.PASSED,
        "istioctl analyze": Status.PASSED,
    }
    assert rows["kustomize build"][1].startswith("dev, prod: ")


def test_a_kustomization_that_does_not_build_fails_the_row_and_skips_the_rest(
    gitops_copy: Path,
) -> None:
    kustomization = gitops_copy / "environments/dev/kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + "  - no-such-file.yaml\n")
    rows, out = _row(gitops_copy)
    status, detail = rows["kustomize build"]
    assert status is Status.FAILED and "environments/dev" in detail
    assert rows["patch targets"] == (Status.SKIPPED, "the render failed")
    assert rows["structure"] == (Status.SKIPPED, "the render failed")
    assert rows["istioctl analyze"] == (Status.SKIPPED, "the render failed")
    assert "gitops: kustomize build" in out


def test_a_patch_that_changes_nothing_fails_the_row(gitops_copy: Path) -> None:
    with (gitops_copy / "environments/prod/kustomization.yaml").open("a") as kustomization:
        kustomization.write(
            "patches:\n"
            "  - target: {kind: Deployment, name: backend-v3}\n"
            "    patch: |-\n"
            "      - {op: replace, path: /spec/replicas, value: 4}\n"
        )
    rows, _ = _row(gitops_copy)
    status, detail = rows["patch targets"]
    assert status is Status.FAILED
    assert detail.startswith("environments/prod/kustomization.yaml: patches[0] target")
    assert rows["kustomize build"][0] is Status.PASSED  # kustomize says nothing of it


def test_objects_that_do_not_fit_together_fail_the_row_in_each_environment(
    gitops_copy: Path,
) -> None:
    service = gitops_copy / "backend/common/service.yaml"
    service.write_text(service.read_text().replace("targetPort: http", "targetPort: web"))
    rows, _ = _row(gitops_copy)
    status, detail = rows["structure"]
    assert status is Status.FAILED
    assert detail.startswith("dev: Service/backend in demo-dev port 'http' targets container")
    assert "more)" in detail  # prod too, and both variants


def test_without_kustomize_the_row_fails_saying_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LAB_KUSTOMIZE", str(tmp_path / "absent"))
    rows, _ = _row(GITOPS)
    status, detail = rows["kustomize build"]
    assert status is Status.FAILED and "LAB_KUSTOMIZE is set to" in detail
    assert rows["structure"] == (Status.SKIPPED, "kustomize is not here")


def test_structure_alone_still_renders_what_it_checks(gitops_copy: Path) -> None:
    service = gitops_copy / "backend/common/service.yaml"
    service.write_text(service.read_text().replace("targetPort: http", "targetPort: web"))
    rows, _ = _row(gitops_copy, checks={"structure"})
    assert list(rows) == ["structure"] and rows["structure"][0] is Status.FAILED


def test_a_kustomization_that_is_not_yaml_fails_its_check_and_the_others_still_run(
    gitops_copy: Path,
) -> None:
    (gitops_copy / "scratch").mkdir()  # one no environment uses
    (gitops_copy / "scratch/kustomization.yaml").write_text("patches: [unclosed\n")
    rows, _ = _row(gitops_copy)
    status, detail = rows["patch targets"]
    assert status is Status.FAILED
    assert detail.startswith("scratch/kustomization.yaml is not readable YAML")
    assert rows["structure"][0] is Status.PASSED


def test_the_row_runs_without_docker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Only the app services' docker runner needs the daemon.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    rows, _ = _row(GITOPS)
    assert {status for status, _ in rows.values()} == {Status.PASSED}


def test_after_ctrl_c_no_check_of_the_row_starts() -> None:
    cancelled = threading.Event()
    cancelled.set()
    results = gitops_lint.run_checks(
        UI(stream=io.StringIO()), Config(), GITOPS, cancelled=cancelled
    )
    assert [(r.status, r.detail) for r in results] == [(Status.SKIPPED, "cancelled")] * 4


def test_a_route_istio_s_analyzers_reject_fails_the_row(gitops_copy: Path) -> None:
    # A host the gateway does not serve: no structure check looks at Gateway hosts.
    routes = [
        p
        for p in (gitops_copy / "istio").rglob("*.yaml")
        if "kind: VirtualService" in p.read_text()
    ]
    assert routes, "the tree routes through VirtualServices"
    broken = routes[0]
    broken.write_text(
        broken.read_text().replace("gateways:", "gateways:\n    - no-such-gateway", 1)
    )
    rows, _ = _row(gitops_copy, checks={"istioctl analyze"})
    status, detail = rows["istioctl analyze"]
    assert status is Status.FAILED and "no-such-gateway" in detail, detail


def test_without_istioctl_the_analysis_is_skipped_saying_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    kustomize = manifests.kustomize_binary(version=Config().kustomize_version)
    monkeypatch.setenv("LAB_KUSTOMIZE", kustomize)
    monkeypatch.setenv("PATH", str(tmp_path))  # no istioctl, in .lab/bin/ neither
    proc.set_local_bin(tmp_path)  # as lab.cli does for the state directory
    try:
        rows, _ = _row(GITOPS, checks={"istioctl analyze"})
    finally:
        proc.set_local_bin(Config().state_path / "bin")
    assert rows["istioctl analyze"] == (
        Status.SKIPPED,
        "istioctl is not here (`invoke lab.tools --only istioctl`)",
    )
