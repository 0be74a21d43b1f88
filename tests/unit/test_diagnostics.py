"""lab.diagnostics: a bundle is always written, and says why a part is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import config, diagnostics
from lab.errors import WaitTimeout


def test_bundle_keeps_the_error_and_the_last_observation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_bin
) -> None:
    fake_bin("kind", stdout="")  # kind answers, but there is no cluster
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    cfg = config.load({"state_dir": str(tmp_path / "state")}, {})
    error = WaitTimeout("timed out after 300s waiting for argocd-server", last_observation="0/1 available")
    bundle = diagnostics.collect(cfg, error)
    assert bundle.parent == tmp_path / "state" / "diagnostics"
    assert "waiting for argocd-server" in (bundle / "error.txt").read_text()
    assert (bundle / "last-observation.txt").read_text() == "0/1 available\n"
    assert "no kind cluster" in (bundle / "kind-logs.unavailable.txt").read_text()
    assert "kube context" in (bundle / "cluster.unavailable.txt").read_text()
