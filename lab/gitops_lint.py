"""The quality stage's `gitops` row: the GitOps repository linted as lab deploys it.

Each environment is rendered by the pinned kustomize (`lab.manifests.render`, whose
errors name the kustomization at fault), then checked: patches that change nothing
(`unmatched_patch_targets`) and objects that do not fit together
(`lab.gitops_structure.check_structure`). A user's change to gitops/ that would sync
into a broken environment fails the quality stage before any image is built.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from lab.config import Config
from lab.manifests import KUSTOMIZATION_FILES, kustomize_binary, render


def unmatched_patch_targets(
    root: Path, *, kustomize: str | None = None, timeout: float = 120.0
) -> list[str]:
    """Patches under `root` with a `target:` selector that change nothing.

    kustomize applies a patch to every resource its target selects and says nothing when
    that is none, so a typo in a target (or a renamed Deployment) silently undoes an
    environment's intent. For each such patch we build its kustomization with and without
    it (in a temporary copy of `root`): identical output means the patch matched nothing.
    """
    root = Path(root).resolve()
    binary = kustomize or kustomize_binary(version=Config().kustomize_version)
    problems: list[str] = []
    for kustomization in sorted(_kustomization_files(root)):
        data = yaml.safe_load(kustomization.read_text()) or {}
        patches = data.get("patches") or []
        targeted = [i for i, p in enumerate(patches) if isinstance(p, dict) and p.get("target")]
        if not targeted:
            continue
        relative = kustomization.relative_to(root)
        with tempfile.TemporaryDirectory(prefix="lab-patches-") as scratch:
            copy_root = Path(scratch) / root.name
            shutil.copytree(root, copy_root)
            copy_file = copy_root / relative
            with_all = render(copy_file.parent, kustomize=binary, timeout=timeout).text
            for index in targeted:
                without = copy.deepcopy(data)
                del without["patches"][index]
                copy_file.write_text(yaml.safe_dump(without, sort_keys=False))
                try:
                    text = render(copy_file.parent, kustomize=binary, timeout=timeout).text
                finally:
                    copy_file.write_text(kustomization.read_text())
                if text == with_all:
                    target = patches[index]["target"]
                    problems.append(
                        f"{relative}: patches[{index}] target {_describe_target(target)} "
                        "changes nothing: it matches no resource, or a later field such as "
                        "replicas: overrides it (kustomize says nothing)"
                    )
    return problems


def _kustomization_files(root: Path) -> Iterator[Path]:
    for name in KUSTOMIZATION_FILES:
        yield from root.rglob(name)


def _describe_target(target: Mapping[str, Any]) -> str:
    parts = [
        f"{key}={target[key]}"
        for key in ("group", "version", "kind", "name", "namespace")
        if key in target
    ]
    for key in ("labelSelector", "annotationSelector"):
        if key in target:
            parts.append(f"{key}={target[key]}")
    return "{" + ", ".join(parts) + "}"
