"""Istio's control plane (and its gateway, when the data plane is on)."""

from __future__ import annotations

from functools import partial

from lab import mesh
from lab.context import Lab, deployment_observation


def ensure_istio(lab: Lab) -> str:
    ready = lab.changes.read(
        lambda: all(
            lab.cluster().deployment_observation(mesh.ISTIO_NAMESPACE, name).done
            for name in mesh.control_plane(lab.config)
        ),
        absent=False,
    )
    if ready and lab.state.istio == lab.config.istio_version:
        return "already installed"
    operator = mesh.write_operator(lab.config, lab.config.state_path, lab.changes)
    mesh.install(lab.config, operator, lab.context, lab.changes)
    for name in mesh.control_plane(lab.config):
        lab.wait_for(
            f"Istio {name} to be ready",
            partial(deployment_observation, lab, mesh.ISTIO_NAMESPACE, name),
            lab.config.install_timeout,
        )
    lab.state.istio = lab.config.istio_version
    lab.save()
    return lab.changes.note(f"Istio {lab.config.istio_version}")
