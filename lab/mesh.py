"""Istio: the IstioOperator file, `istioctl install`, and the wait for its control plane."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lab.changes import Changes
from lab.config import Config

ISTIO_NAMESPACE = "istio-system"
INGRESS_GATEWAY = "istio-ingressgateway"
CONTROL_PLANE = ("istiod", INGRESS_GATEWAY)


def has_data_plane(config: Config) -> bool:
    return config.istio_data_plane == "sidecars"


def control_plane(config: Config) -> tuple[str, ...]:
    """The Deployments `lab.up` waits for: istiod, and the gateway when there is one."""
    return CONTROL_PLANE if has_data_plane(config) else ("istiod",)


def istio_operator(config: Config) -> dict[str, Any]:
    """The IstioOperator lab installs.

    The demo profile, no egress gateway, and an ingress gateway of type NodePort whose
    port list is complete: Istio replaces the profile's list with ours, so a port left
    out here disappears. Native sidecars let Jobs in the mesh (the smoke test) complete.
    """
    values: dict[str, Any] = {"pilot": {"env": {"ENABLE_NATIVE_SIDECARS": "true"}}}
    if not has_data_plane(config):
        # The injector's policy "disabled": namespaces keep their istio-injection label
        # (the GitOps repository is the same), but no pod gets a sidecar.
        values["global"] = {"proxy": {"autoInject": "disabled"}}
    return {
        "apiVersion": "install.istio.io/v1alpha1",
        "kind": "IstioOperator",
        "metadata": {"name": "lab", "namespace": ISTIO_NAMESPACE},
        "spec": {
            "profile": "demo",
            # Pinned here: istioctl's own defaults follow its build, not lab's pins.
            "hub": config.istio_hub,
            "tag": config.istio_version,
            "meshConfig": {"accessLogFile": "/dev/stdout"},
            "values": values,
            "components": {
                "egressGateways": [{"name": "istio-egressgateway", "enabled": False}],
                "ingressGateways": [
                    {
                        "name": INGRESS_GATEWAY,
                        "enabled": has_data_plane(config),
                        "k8s": {
                            "service": {
                                "type": "NodePort",
                                "ports": ingress_ports(config),
                            }
                        },
                    }
                ],
            },
        },
    }


def ingress_ports(config: Config) -> list[dict[str, Any]]:
    """The ingress gateway Service's ports; http2 on the node port kind maps to the host."""
    return [
        {"name": "status-port", "port": 15021, "targetPort": 15021},
        {"name": "http2", "port": 80, "targetPort": 8080, "nodePort": config.ingress_node_port},
        {"name": "https", "port": 443, "targetPort": 8443},
        {"name": "tcp", "port": 31400, "targetPort": 31400},
        {"name": "tls", "port": 15443, "targetPort": 15443},
    ]


def write_operator(config: Config, directory: Path, changes: Changes) -> Path:
    """`istio-operator.yaml` in `directory`, for `install` (a plan names it, unwritten)."""
    path = directory / "istio-operator.yaml"
    text = yaml.safe_dump(istio_operator(config), sort_keys=False)
    return changes.make(f"write {path}", lambda: _write(path, text), planned=path)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def install(config: Config, operator_file: Path, context: str, changes: Changes) -> None:
    changes.run(
        ("istioctl", "install", "-y", "--context", context, "-f", str(operator_file)),
        timeout=config.install_timeout,
        hint="check `kubectl -n istio-system get pods`; the diagnostics bundle has the events",
    )


def ingress_node_ports(manifest: str) -> dict[str, int]:
    """Port name → nodePort of the ingress gateway in `istioctl manifest generate` output."""
    for doc in yaml.safe_load_all(manifest):
        if (
            isinstance(doc, dict)
            and doc.get("kind") == "Service"
            and doc.get("metadata", {}).get("name") == INGRESS_GATEWAY
        ):
            ports = doc.get("spec", {}).get("ports", [])
            return {p["name"]: p["nodePort"] for p in ports if "nodePort" in p}
    return {}
