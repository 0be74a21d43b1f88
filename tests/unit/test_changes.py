"""The runner that makes changes, and the plan that writes them down instead."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from lab import changes, proc, wait
from lab.errors import LabError
from lab.ui import UI

PY = sys.executable


def _touch(marker: Path) -> list[str]:
    return [PY, "-c", f"open({str(marker)!r}, 'w')"]


def test_changes_runs_each_command_and_makes_each_change(tmp_path: Path) -> None:
    runner = changes.for_options(dry_run=False)
    marker = tmp_path / "touched"
    result = runner.run(_touch(marker), timeout=10)
    made = runner.make("write a file", lambda: (tmp_path / "made").write_text("x"), planned=-1)
    assert result.ok and not result.skipped and marker.exists()
    assert made == 1 and (tmp_path / "made").read_text() == "x"
    assert runner.planned == [] and runner.note("created") == "created"


def test_a_plan_writes_each_change_down_once_and_makes_none(tmp_path: Path) -> None:
    plan = changes.for_options(dry_run=True)
    marker = tmp_path / "touched"
    result = plan.run(_touch(marker), timeout=10, env={"A": "b c"})
    made = plan.make("write a file", lambda: (tmp_path / "made").write_text("x"), planned=-1)
    plan.make("write a file", lambda: (tmp_path / "made").write_text("x"), planned=-1)
    seen = plan.wait("the moon", lambda: wait.Observation(False, "not yet"), timeout=0.1)
    assert result.skipped and result.ok and not marker.exists()
    assert made == -1 and not (tmp_path / "made").exists()
    assert seen == "planned"
    assert plan.planned == [
        proc.pasteable(_touch(marker), {"A": "b c"}),
        "write a file",
        "wait for the moon",
    ]
    assert plan.note("created") == "planned: created"


def test_reading_what_is_not_there_is_an_error_unless_planning() -> None:
    def missing() -> str:
        raise LabError("there is no cluster yet")

    assert changes.Plan().read(missing, absent="none") == "none"
    assert changes.Plan().read(lambda: "seen", absent="none") == "seen"
    with pytest.raises(LabError, match="no cluster"):
        changes.Changes().read(missing, absent="none")


def test_a_refusal_stops_a_run_and_is_noted_in_a_plan() -> None:
    refusal = LabError("this machine cannot run the lab yet: docker")
    with pytest.raises(LabError) as caught:
        changes.Changes().refuse(refusal)
    assert caught.value is refusal
    plan = changes.Plan()
    assert plan.refuse(refusal) == f"would stop here: {refusal.message}"
    assert plan.planned == [f"stop here: {refusal.message}"]


def test_a_plan_says_what_it_is_and_lists_what_it_would_change() -> None:
    out = io.StringIO()
    ui = UI(stream=out)
    plan = changes.Plan()
    plan.start(ui)
    plan.make("delete the cluster", lambda: None, planned=None)
    plan.finish(ui)
    assert out.getvalue().splitlines() == [
        "Dry run: nothing is changed. The plan:",
        "  would: delete the cluster",
    ]
    assert plan.diagnostics(lambda error: Path("bundle")) is None
    quiet = io.StringIO()
    runner = changes.Changes()
    runner.start(UI(stream=quiet))
    runner.finish(UI(stream=quiet))
    assert quiet.getvalue() == ""
    assert runner.diagnostics(lambda error: Path("bundle")) is not None


def test_a_plan_names_the_files_it_would_write_and_writes_none(tmp_path: Path) -> None:
    from lab import argocd, mesh
    from lab.config import Config

    plan = changes.for_options(dry_run=True)
    config = Config(state_dir=str(tmp_path / "state"))
    cache = tmp_path / "cache"
    assert argocd.fetch_install_manifest(config, cache, plan) is None  # nothing fetched
    operator = mesh.write_operator(config, tmp_path / "state", plan)
    assert not cache.exists() and not operator.exists()
    assert plan.planned == [
        f"download {argocd.install_url(config)} into "
        f"{cache / f'argocd-{config.argocd_version}-install.yaml'}",
        f"write {operator}",
    ]
    (cache).mkdir()
    (cache / f"argocd-{config.argocd_version}-install.yaml").write_text("kind: List\n")
    assert argocd.fetch_install_manifest(config, cache, plan) == "kind: List\n"  # a read


@pytest.mark.parametrize("kubeconfig", ["a directory", "not: [yaml"])
def test_a_kubeconfig_lab_cannot_read_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kubeconfig: str
) -> None:
    from lab import k8s

    path = tmp_path / "kubeconfig"
    if kubeconfig == "a directory":
        path.mkdir()
    else:
        path.write_text(kubeconfig)
    monkeypatch.setenv("KUBECONFIG", str(path))
    with pytest.raises(LabError) as caught:
        k8s.connect("kind-lab", changes.for_options(dry_run=True))
    assert caught.value.message.startswith("cannot read the kubeconfig for context kind-lab: ")


def test_what_a_run_made_anew_is_read_in_a_real_run_and_absent_in_a_plan() -> None:
    # `lab.up --dry-run --recreate`: the cluster there is the one the plan would delete.
    def old_cluster() -> str:
        raise AssertionError("a plan must not read what it would replace")

    assert changes.for_options(dry_run=True).read_new(old_cluster, absent="none") == "none"
    assert changes.for_options(dry_run=False).read_new(lambda: "new", absent="none") == "new"


def test_a_plan_says_where_it_could_not_look_but_not_what_it_would_make() -> None:
    from lab.errors import NotMadeYet

    def refused() -> bool:
        raise LabError("permission denied on the docker socket")

    def not_made() -> bool:
        raise NotMadeYet("there is no cluster at context kind-lab yet")

    plan = changes.for_options(dry_run=True)
    assert plan.read(refused, absent=False) is False
    assert plan.read(refused, absent=False) is False
    assert plan.read(not_made, absent=False) is False
    out = io.StringIO()
    plan.finish(UI(stream=out))
    assert out.getvalue().splitlines() == [
        "  could not look, so planned as if not there: permission denied on the docker socket"
    ]
