"""The kind cluster (or, with `--context`, the record of what the user's holds)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import yaml

from lab import (
    bundle_loader,
    cluster,
    engine,
    your_cluster,
)
from lab.context import Lab, kind_cluster_exists
from lab.errors import LabError


def ensure_cluster(lab: Lab) -> str:
    if lab.byo:
        if (lab.state.byo or {}).get("context") != lab.context:
            # What the cluster holds before the lab, so lab.down can leave it so.
            before: dict[str, Any] = lab.changes.read(
                lambda: your_cluster.baseline(lab.cluster()), absent={}
            )
            lab.state.byo = {"context": lab.context, **before}
            lab.save()
        return lab.changes.note(
            f"skipped: using context {lab.context} (its objects before the lab: recorded)"
        )
    config = lab.config
    if kind_cluster_exists(lab):
        recorded = lab.state.cluster_settings
        if recorded not in (None, cluster.settings_hash(config)):
            if not lab.options.recreate:
                raise LabError(
                    f"cluster {config.cluster_name} was created with different pinned settings",
                    hint="run `invoke lab.up --recreate` to delete and recreate it "
                    "(the GitOps history is recreated from gitops/)",
                )
            cluster.delete_cluster(config, lab.changes)
        else:
            return "already exists"
    path = config.state_path / "kind-config.yaml"
    node_image = lab.changes.read(lambda: bundle_loader.node_image(config), absent=None)
    text = yaml.safe_dump(cluster.kind_config(config, node_image), sort_keys=False)
    lab.changes.make(f"write {path}", partial(_write, path, text), planned=None)
    network_existed = lab.changes.read(_kind_network_exists, absent=False)
    cluster.create_cluster(config, str(path), lab.changes)
    lab.cluster_made()
    if not network_existed:  # kind made it for us: lab.down removes it when unused
        lab.state.kind_network_ours = True
    lab.state.cluster_settings = cluster.settings_hash(config)
    lab.save()
    return lab.changes.note(f"created (config: {path})")


def _kind_network_exists() -> bool:
    return engine.find_network(engine.client(), cluster.KIND_NETWORK) is not None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
