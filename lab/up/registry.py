"""The local registry, and wiring it into the kind cluster."""

from __future__ import annotations

from lab import registry
from lab.context import Lab


def ensure_registry(lab: Lab) -> str:
    if lab.byo:
        return f"skipped: using {lab.options.registry or 'your registry'}"
    return registry.ensure_registry(lab.config, lab.changes)


def wire_registry(lab: Lab) -> str:
    if lab.byo:
        return "skipped: your cluster already pulls from its registry"
    notes = [registry.connect_registry(lab.config, lab.changes)]
    notes.append(registry.wire_nodes(lab.config, lab.changes, new_nodes=lab.new_cluster))
    lab.cluster().apply(registry.registry_hosting_configmap(lab.config))
    return "; ".join(notes)
