"""The local registry, and wiring it into the kind cluster."""

from __future__ import annotations

from lab import (
    cluster,
    engine,
    proc,
)
from lab.context import Lab, docker_answers, kind_cluster_exists, plan_apply


def ensure_registry(lab: Lab) -> str:
    if lab.byo:
        return f"skipped: using {lab.options.registry or 'your registry'}"
    if proc.dry_run_enabled() and not docker_answers():
        proc.plan(f"docker run {lab.config.registry_image} as {lab.config.registry_name}")
        return "planned"
    return cluster.ensure_registry(engine.client(), lab.config)


def wire_registry(lab: Lab) -> str:
    if lab.byo:
        return "skipped: your cluster already pulls from its registry"
    if proc.dry_run_enabled() and not (docker_answers() and kind_cluster_exists(lab.config)):
        proc.plan(f"docker network connect {cluster.KIND_NETWORK} {lab.config.registry_name}")
        proc.plan(f"write {cluster.CERTS_DIR}/{lab.config.registry_host}/hosts.toml on each node")
        plan_apply(cluster.registry_hosting_configmap(lab.config))
        return "planned"
    client = engine.client()
    notes = [cluster.connect_registry(client, lab.config)]
    notes.append(cluster.wire_nodes(client, lab.config))
    lab.cluster().apply(cluster.registry_hosting_configmap(lab.config))
    return "; ".join(notes)
