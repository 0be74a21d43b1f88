"""The local registry, and wiring it into the kind cluster."""

from __future__ import annotations

from lab import cluster
from lab.context import Lab


def ensure_registry(lab: Lab) -> str:
    if lab.byo:
        return f"skipped: using {lab.options.registry or 'your registry'}"
    return cluster.ensure_registry(lab.config, lab.changes)


def wire_registry(lab: Lab) -> str:
    if lab.byo:
        return "skipped: your cluster already pulls from its registry"
    notes = [cluster.connect_registry(lab.config, lab.changes)]
    notes.append(cluster.wire_nodes(lab.config, lab.changes))
    lab.cluster().apply(cluster.registry_hosting_configmap(lab.config))
    return "; ".join(notes)
