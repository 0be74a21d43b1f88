"""lab.up / lab.down short of a cluster: the real invoke program, fake kind/istioctl on
PATH (they cannot run a cluster here), and the real Docker Engine for teardown."""

from __future__ import annotations

import contextlib
import io
import secrets
import shutil
import sys
import tarfile
from pathlib import Path

import docker.errors
import pytest

from lab import cli, config, context, engine, images, lifecycle, proc, teardown, up
from lab.errors import LabError
from lab.ui import UI
from lab.up import cluster as up_cluster
from lab.up import registry as up_registry
from lab.up import seed as up_seed
from tests.conftest import REPO, require_docker

INVOKE = str(Path(sys.executable).parent / "invoke")
KIND_VERSION = "kind v0.32.0 go1.25.7 linux/amd64\n"


def _invoke(*args: str, env: dict[str, str]) -> proc.Result:
    return proc.run(
        [INVOKE, "--search-root", str(REPO), *args],
        timeout=120,
        check=False,
        env={"PYTHONPATH": str(REPO), "COLUMNS": "200", **env},
    )


def _fake_tools(fake_bin, log: Path) -> None:
    fake_bin("kind", stdout=KIND_VERSION, log=log)  # also answers `kind get clusters`: none
    fake_bin("istioctl", stdout="client version: 1.30.0\n", log=log)


def test_dry_run_prints_the_ordered_plan_and_changes_nothing(fake_bin, tmp_path: Path) -> None:
    calls = tmp_path / "calls.log"
    _fake_tools(fake_bin, calls)
    state = tmp_path / "state"
    cache = state / "cache"
    cache.mkdir(parents=True)
    shutil.copy(
        REPO / "tests/data/argocd-install-excerpt.yaml", cache / "argocd-v3.6.1-install.yaml"
    )
    result = _invoke("lab.up", "--dry-run", env={"LAB_STATE_DIR": str(state)})
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    titles = [step.title for step in lifecycle.UP]
    positions = [out.index(f"✓ {title}") for title in titles]
    assert positions == sorted(positions), "steps must run in the order of lifecycle.UP"
    plan = out[out.index("would:") :]
    assert "kind create cluster --name lab --config" in plan
    assert "istioctl install -y --context kind-lab -f" in plan
    crd_apply = plan.index("apply CustomResourceDefinition/applications.argoproj.io")
    crd_wait = plan.index("wait for CRD applications.argoproj.io to be established")
    deployment = plan.index("apply Deployment/argocd-server in argocd")
    assert crd_apply < crd_wait < deployment
    assert "Secret/demo-secrets" not in plan or "stringData" not in plan
    # Nothing that changes anything ran: kind was only asked questions.
    ran = calls.read_text().splitlines() if calls.exists() else []
    assert all(
        line.split()[:2] in (["kind", "version"], ["kind", "get"], ["istioctl", "version"])
        for line in ran
    ), ran
    assert not (state / "state.json").exists()


def test_up_refuses_a_cluster_made_with_other_settings(fake_bin, tmp_path: Path) -> None:
    fake_bin("kind", stdout="lab\n")  # `kind get clusters` lists ours
    state_dir = tmp_path / "state"
    cfg = config.load({"state_dir": str(state_dir)}, {})
    from lab.state import State

    state = State.load(cfg.state_path)
    state.cluster_settings = "0000000000000000"
    state.save()
    ctx = cli.Context(config=cfg, ui=UI())
    lab = context.Lab(ctx, context.UpOptions(), State.load(cfg.state_path))
    with pytest.raises(LabError) as caught:
        up_cluster.ensure_cluster(lab)
    assert "different pinned settings" in caught.value.message
    assert caught.value.hint and "--recreate" in caught.value.hint


def test_up_keeps_an_existing_cluster_with_the_same_settings(fake_bin, tmp_path: Path) -> None:
    calls = tmp_path / "calls.log"
    fake_bin("kind", stdout="lab\n", log=calls)
    cfg = config.load({"state_dir": str(tmp_path / "state")}, {})
    from lab import cluster
    from lab.state import State

    state = State.load(cfg.state_path)
    state.cluster_settings = cluster.settings_hash(cfg)
    lab = context.Lab(cli.Context(config=cfg, ui=UI()), context.UpOptions(), state)
    assert up_cluster.ensure_cluster(lab) == "already exists"
    assert calls.read_text().splitlines() == ["kind get clusters"]


def test_bring_your_own_cluster_skips_kind_and_the_registry(tmp_path: Path) -> None:
    cfg = config.load({"state_dir": str(tmp_path / "state")}, {})
    from lab.state import State

    lab = context.Lab(
        cli.Context(config=cfg, ui=UI()),
        context.UpOptions(context="team-cluster", registry="registry.team:5000"),
        State.load(cfg.state_path),
    )
    assert up_registry.ensure_registry(lab).startswith("skipped")
    assert lab.context == "team-cluster"
    # Before installing, lab records what the cluster holds (for lab.down); a context
    # that is not in the kubeconfig is said so, before anything changed.
    with pytest.raises(LabError) as caught:
        up_cluster.ensure_cluster(lab)
    assert "no kube context named team-cluster" in caught.value.message
    assert State.load(cfg.state_path).byo is None


# -- teardown against the real Docker Engine ----------------------------------------------


def _docker():
    return require_docker()


def _empty_image(client) -> str:
    """An image with one empty layer, made locally: containers can be created from it."""
    tag = "lab-test/empty:1"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("README")
        data = b"lab teardown test\n"
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    client.api.import_image_from_data(buffer.getvalue(), repository="lab-test/empty", tag="1")
    return tag


def _labelled_image(client, tag: str, labels: dict[str, str]) -> None:
    """A one-layer image under `tag` carrying `labels`, built by the real daemon."""
    client.images.build(
        fileobj=io.BytesIO(b"FROM lab-test/empty:1\n"), tag=tag, labels=labels, rm=True
    )


@pytest.mark.parametrize(
    ("keep_registry", "keep_images"),
    [(False, False), (True, True), (True, False), (False, True)],
    ids=["everything", "keep-both", "keep-registry", "keep-images"],
)
def test_down_removes_everything_of_the_lab_and_proves_it(
    fake_bin, tmp_path: Path, keep_registry: bool, keep_images: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    client = _docker()
    fake_bin("kind", stdout="")  # no cluster left to delete
    name = f"labtest{secrets.token_hex(3)}"
    cfg = config.load(
        {
            "cluster_name": name,
            "registry_name": f"{name}-registry",
            "state_dir": str(tmp_path / "s"),
            # Names of their own, so the machine's real lab images are not touched.
            "registry_port": 40000 + secrets.randbelow(20000),
            "toolchain_repository": f"{name}-toolchain",
            "build_cache_repository": f"{name}-build-cache",
        },
        {},
    )
    keep = keep_images
    label = {engine.LAB_LABEL: name}
    image = _empty_image(client)
    other = client.containers.create(image, command=["/none"], name=f"{name}-not-ours")
    built = f"{cfg.registry_host}/lab/backend:{'a' * 40}"
    toolchain = f"{cfg.toolchain_repository}/monitor:0123456789ab"
    unlabelled = f"{cfg.registry_host}/lab/frontend:mine"  # not built by lab: no label
    _labelled_image(client, built, {images.SERVICE_LABEL: "backend"})
    _labelled_image(client, unlabelled, {})
    client.images.get(image).tag(toolchain)
    (cfg.state_path / "cache").mkdir(parents=True)
    (cfg.state_path / "cache" / "argocd-install.yaml").write_text("kind: List\n")
    try:
        client.containers.create(image, command=["/none"], name=cfg.registry_name, labels=label)
        client.containers.create(image, command=["/none"], name=f"{name}-extra", labels=label)
        client.volumes.create(f"{cfg.registry_name}-data", labels=label)
        client.networks.create(f"{name}-net", labels=label)
        found = teardown.leftovers(cfg)
        assert found.containers == (f"{name}-extra", cfg.registry_name)
        assert found.volumes == (f"{cfg.registry_name}-data",)
        assert found.networks == (f"{name}-net",)
        assert found.images == tuple(sorted((built, toolchain)))
        assert found.files == (str(cfg.state_path / "cache"),)

        teardown.down(
            cli.Context(config=cfg, ui=UI()), keep_registry=keep_registry, keep_images=keep
        )

        assert not teardown.leftovers(cfg, keep_registry=keep_registry, keep_images=keep)
        err = capsys.readouterr().err
        assert "Nothing of the lab remains on this machine, except:" in err
        assert ("--keep-images" in err) is keep and ("--keep-registry" in err) is keep_registry
        data = [v.name for v in client.volumes.list(filters={"name": f"{cfg.registry_name}-data"})]
        assert data == ([f"{cfg.registry_name}-data"] if keep_registry else [])
        assert "the base images the Dockerfiles build from" in err
        registry_kept = [
            c.name for c in client.containers.list(all=True, filters={"name": cfg.registry_name})
        ]
        assert registry_kept == ([cfg.registry_name] if keep_registry else [])
        present = {tag for i in client.images.list() for tag in i.tags}
        assert ({built, toolchain} <= present) is keep
        assert not ({built, toolchain} & present) or keep
        assert (cfg.state_path / "cache").exists() is keep
        assert unlabelled in present  # in lab's names but not built by lab: untouched
        client.containers.get(other.id)  # not ours: untouched
    finally:
        for tag in (built, toolchain, unlabelled):
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(tag)
        for container in client.containers.list(all=True, filters={"name": name}):
            container.remove(force=True)
        for volume in client.volumes.list(filters={"name": name}):
            volume.remove(force=True)
        for network in client.networks.list(names=[f"{name}-net"]):
            network.remove()


def test_bring_your_own_registry_rewrites_only_the_image_names_of_the_seed(tmp_path: Path) -> None:
    cfg = config.load({"state_dir": str(tmp_path / "state")}, {})
    from lab.state import State

    lab = context.Lab(
        cli.Context(config=cfg, ui=UI()),
        context.UpOptions(context="team", registry="registry.team.example:5000"),
        State.load(cfg.state_path),
    )
    tree = up_seed._gitops_tree(lab)
    assert tree != up.GITOPS_DIR
    for env in ("dev", "prod"):
        original = (up.GITOPS_DIR / "environments" / env / "kustomization.yaml").read_text()
        rewritten = (tree / "environments" / env / "kustomization.yaml").read_text()
        assert "localhost:5001/lab/" not in rewritten
        assert rewritten == original.replace(
            "localhost:5001/lab/", "registry.team.example:5000/lab/"
        )
    assert (
        up_seed._gitops_tree(
            context.Lab(
                cli.Context(config=cfg, ui=UI()), context.UpOptions(), State.load(cfg.state_path)
            )
        )
        == up.GITOPS_DIR
    )
