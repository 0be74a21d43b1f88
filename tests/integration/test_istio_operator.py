"""The IstioOperator lab installs, fed to the real istioctl (`manifest generate` is offline)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab import config, mesh, proc
from lab.changes import MAKE
from tests.support import manifest_checks

pytestmark = pytest.mark.integration


def _generate(tmp_path: Path, cfg: config.Config) -> str:
    istioctl = manifest_checks.istioctl_binary()  # fails naming .ci/tools/istioctl.sh when absent
    operator = mesh.write_operator(cfg, tmp_path, MAKE)
    return proc.run((istioctl, "manifest", "generate", "-f", str(operator)), timeout=120).stdout


def test_ingress_gateway_keeps_every_port_with_our_node_port(tmp_path: Path) -> None:
    cfg = config.load({"ingress_node_port": 30555}, {})
    ports = mesh.ingress_node_ports(_generate(tmp_path, cfg))
    assert ports["http2"] == 30555


def test_generated_control_plane_has_native_sidecars_and_no_egress_gateway(tmp_path: Path) -> None:
    objects = [d for d in yaml.safe_load_all(_generate(tmp_path, config.load({}, {}))) if d]
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert ("Deployment", "istiod") in names
    assert ("Deployment", "istio-ingressgateway") in names
    assert not any(name == "istio-egressgateway" for _, name in names)
    [service] = [o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "istio-ingressgateway"]
    assert service["spec"]["type"] == "NodePort"
    assert {p["name"] for p in service["spec"]["ports"]} >= {"status-port", "http2", "https"}
    [istiod] = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "istiod"]
    env = {e["name"]: e.get("value") for e in istiod["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env.get("ENABLE_NATIVE_SIDECARS") == "true"
