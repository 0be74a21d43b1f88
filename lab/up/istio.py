"""Istio's control plane (and its gateway, when the data plane is on)."""

from __future__ import annotations

from functools import partial

from lab import (
    mesh,
    proc,
)
from lab.context import Lab, deployment_observation


def ensure_istio(lab: Lab) -> str:
    if not proc.dry_run_enabled():
        ready = [
            lab.cluster().deployment_observation(mesh.ISTIO_NAMESPACE, name)
            for name in mesh.control_plane(lab.config)
        ]
        if all(o.done for o in ready) and lab.state.istio == lab.config.istio_version:
            return "already installed"
    operator = mesh.write_operator(lab.config, lab.config.state_path)
    mesh.install(lab.config, operator, lab.context)
    if proc.dry_run_enabled():
        for name in mesh.control_plane(lab.config):
            proc.plan(f"wait for Istio {name} to be ready")
        return f"planned (operator: {operator})"
    for name in mesh.control_plane(lab.config):
        lab.wait_for(
            f"Istio {name} to be ready",
            partial(deployment_observation, lab, mesh.ISTIO_NAMESPACE, name),
            lab.config.install_timeout,
        )
    if not proc.dry_run_enabled():
        lab.state.istio = lab.config.istio_version
        lab.state.save()
    return f"Istio {lab.config.istio_version}"
