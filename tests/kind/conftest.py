"""The lab on a real kind cluster built here: one `invoke lab.up` per session, shared by
the tests of tests/kind/test_lab.py, run the way a user runs it (`invoke` in a process).

What differs from a user's laptop, and only through settings (printed at the start):
the node image, the two kind patches for this machine's quirks, and
`istio_data_plane: none` (Envoy cannot be built here, so no gateway and no sidecars).
The pinned upstream images are built here and pushed into the lab registry's mirror
paths before `lab.up`, as an offline bundle would be (`distribution.mirror_images`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lab import distribution, engine, registry
from lab.changes import MAKE
from lab.config import Config
from tests.kind import tier

INVOKE = str(Path(sys.executable).parent / "invoke")
WHY = (
    "kind tier: istio_data_plane=none (Envoy, Istio's data plane, cannot be built or fetched "
    "on this machine: no ingress gateway, no sidecars; istiod validates every Istio object); "
    "node image and kind patches for this machine's quirks from tests/kind/tier.py"
)


@dataclass
class Lab:
    """The tier's lab: its settings, its environment, and a way to run tasks."""

    art: tier.Artifacts
    config: Config
    env: dict[str, str]
    work: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return Path(self.env["KUBECONFIG"])

    def invoke(
        self, *args: str, timeout: float = 1800, check: bool = True, root: Path = tier.REPO
    ) -> subprocess.CompletedProcess[str]:
        """`invoke <args>` in `root` (a checkout: its tasks.py, lab package and HEAD)."""
        started = time.monotonic()
        result = subprocess.run(
            [INVOKE, "--search-root", str(root), *args],
            env=self.env,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        took = time.monotonic() - started
        self.timings.setdefault(args[0], took)
        print(f"$ invoke {' '.join(args)}  ({took:.0f}s, exit {result.returncode})")
        if check and result.returncode != 0:
            raise AssertionError(
                f"invoke {' '.join(args)} exited {result.returncode}\n"
                f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
            )
        return result

    def kubectl(self, *args: str, timeout: float = 120) -> str:
        return tier.kubectl(self.art, self.kubeconfig, self.config.kube_context, *args, timeout=timeout)


def lab_images(config: Config) -> list[str]:
    """The upstream images `lab.up` installs, as its manifests name them."""
    return [
        f"{config.istio_hub}/pilot:{config.istio_version}",
        f"quay.io/argoproj/argocd:{config.argocd_version}",
        "public.ecr.aws/docker/library/redis:8.10.1-alpine",
        config.gitea_image,
        "redis:7.4-bookworm",
    ]


def prepare(config: Config, art: tier.Artifacts) -> None:
    """What a workshop bundle would hold, put in place before `lab.up`: the registry
    with the upstream images under their mirror paths, and Argo CD's install.yaml."""
    client = engine.client()
    registry.ensure_registry(config, MAKE)
    distribution.mirror_images(client, config, lab_images(config))
    cache = config.state_path / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    install = tier.CACHE / "bin" / f"argocd-{config.argocd_version}" / "install.yaml"
    shutil.copyfile(install, cache / f"argocd-{config.argocd_version}-install.yaml")


@pytest.fixture(scope="session")
def tier_lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    art = tier.artifacts()
    work = tmp_path_factory.mktemp("kind-lab")
    values = tier.settings(art.node_image, istio_data_plane="none", state_dir=str(work / ".lab"))
    config = tier.config(art.node_image, istio_data_plane="none", state_dir=str(work / ".lab"))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LAB_") or key in ("LAB_CACHE_DIR",)
    }
    env.update(tier.environment(values))
    env.update({"PATH": art.path, "KUBECONFIG": str(work / "kubeconfig"), "NO_COLOR": "1"})
    print(WHY)
    return Lab(art, config, env, work)
