"""What the kind tier needs on our CI machines, in one place: the artifacts that
`.ci/tools/kind/` builds, this machine's quirks, and the settings that absorb them.

A user's laptop gets none of this: lab's defaults stay as they are, and the tier varies
lab only through generic, documented settings (`kind_node_image`,
`kind_containerd_patch`, `kind_kubeadm_patch`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab import config as lab_config
from lab.config import Config

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".ci" / "tools" / "kind"
ADAPTER_DIR = Path(__file__).resolve().parent / "bin"


def _versions() -> dict[str, str]:
    """The tier's versions, as .ci/tools/kind/versions.sh computes them."""
    script = f'set -a; source "{TOOLS / "versions.sh"}"; env | grep -E "^(KIND|K8S|ARGOCD|TRIVY|GITEA|KUSTOMIZE)_"'
    output = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


VERSIONS = _versions()
CACHE = Path(VERSIONS["KIND_CACHE"])

# -- this machine's quirks and what absorbs them -------------------------------------------
# Without CAP_SYS_RESOURCE runc cannot set a static pod's oom_score_adj (-998), and
# static pods fail with "can't get final child's PID from pipe: EOF".
CONTAINERD_PATCH = '[plugins."io.containerd.grpc.v1.cri"]\n  restrict_oom_score_adj = true\n'
# The host is a cgroup v1 hybrid; kubelet >= 1.35 refuses cgroup v1 unless told.
KUBEADM_PATCH = (
    "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nfailCgroupV1: false\n"
)
# (The others: `--privileged` and /lib/modules are rewritten by tests/kind/bin/docker;
# the read-only cgroup v1 mounts are remounted by the tier's node image entrypoint.)


@dataclass(frozen=True)
class Artifacts:
    """The tier's binaries and node image, built by .ci/tools/kind/ (never here)."""

    kind: Path
    kubectl: Path
    istioctl: Path
    kustomize: Path
    node_image: str

    @property
    def path(self) -> str:
        """PATH for kind and lab: the docker adapter first, then the tools lab runs."""
        tools = (self.kind, self.kubectl, self.istioctl, self.kustomize)
        return os.pathsep.join(
            [str(ADAPTER_DIR), *(str(tool.parent) for tool in tools), os.environ["PATH"]]
        )


def artifacts() -> Artifacts:
    """The built artifacts, or a failure (never a skip) saying how to build them."""
    kind = CACHE / "bin" / f"kind-{VERSIONS['KIND_VERSION']}" / "kind"
    kubectl = CACHE / "bin" / f"kubernetes-{VERSIONS['K8S_VERSION']}" / "kubectl"
    ref = CACHE / "node-image.ref"
    lab_cache = CACHE.parent
    istioctl = next(iter(sorted(lab_cache.glob("istioctl-*/istioctl"))), lab_cache / "istioctl-?")
    kustomize = lab_cache / f"kustomize-{VERSIONS['KUSTOMIZE_VERSION']}" / "kustomize"
    missing = [str(p) for p in (kind, kubectl, istioctl, kustomize, ref) if not p.exists()]
    if missing:
        pytest.fail(
            "the kind tier's artifacts are not built: missing "
            + ", ".join(missing)
            + "; run `.ci/tools/kind/build.sh` (cold: about an hour on 2 cores, then cached)",
            pytrace=False,
        )
    return Artifacts(kind, kubectl, istioctl, kustomize, ref.read_text().strip())


def settings(node_image: str, **overrides: Any) -> dict[str, Any]:
    """The lab settings the tier runs with: lab's defaults plus the tier's three."""
    return {
        "kind_node_image": node_image,
        "kind_containerd_patch": CONTAINERD_PATCH,
        "kind_kubeadm_patch": KUBEADM_PATCH,
        **overrides,
    }


def config(node_image: str, **overrides: Any) -> Config:
    return lab_config.load(settings(node_image, **overrides), environ={})


def environment(values: Mapping[str, Any]) -> dict[str, str]:
    """Settings as the LAB_* variables that `invoke` reads."""
    return {f"LAB_{key.upper()}": str(value) for key, value in values.items()}


def kubectl(
    art: Artifacts, kubeconfig: Path, context: str, *args: str, timeout: float = 120
) -> str:
    result = subprocess.run(
        [str(art.kubectl), "--kubeconfig", str(kubeconfig), "--context", context, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout
