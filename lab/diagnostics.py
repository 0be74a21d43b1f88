"""A diagnostics bundle after a failure: what a person (or CI) needs to see what went wrong.

Everything is best effort: a bundle is written even when the cluster is gone, and each
part that cannot be collected says why in its own file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import yaml

from lab import cluster, k8s, proc
from lab.config import Config
from lab.errors import LabError, WaitTimeout

log = logging.getLogger("lab.diagnostics")

NAMESPACES = ("demo-dev", "demo-prod", "argocd", "istio-system", "gitea")


def collect(config: Config, error: BaseException | None, *, context: str | None = None) -> Path:
    """Write `.lab/diagnostics/<timestamp>/` and return its path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    directory = config.state_path / "diagnostics" / stamp
    directory.mkdir(parents=True, exist_ok=True)
    if error is not None:
        text = error.render() if isinstance(error, LabError) else repr(error)
        _write(directory / "error.txt", text)
        if isinstance(error, WaitTimeout):
            _write(directory / "last-observation.txt", error.last_observation)
    _part(directory, "kind-logs", lambda: _kind_logs(config, directory / "kind-logs"))
    _part(directory, "cluster", lambda: _cluster_state(context or config.kube_context, directory))
    log.info("diagnostics bundle: %s", directory)
    return directory


def _part(directory: Path, name: str, body: Callable[[], None]) -> None:
    try:
        body()
    except Exception as failure:  # a bundle must never fail: note why the part is missing
        _write(directory / f"{name}.unavailable.txt", f"{type(failure).__name__}: {failure}")


def _kind_logs(config: Config, target: Path) -> None:
    if proc.which("kind") is None or not cluster.cluster_exists(config):
        raise LabError("no kind cluster to export logs from")
    cluster.export_logs(config, str(target))


def _cluster_state(context: str, directory: Path) -> None:
    target = k8s.connect(context)
    for namespace in NAMESPACES:
        pods = target.list_objects("v1", "Pod", namespace)
        summary = [
            {
                "name": p["metadata"]["name"],
                "phase": (p.get("status") or {}).get("phase"),
                "containers": [
                    {
                        "name": c.get("name"),
                        "ready": c.get("ready"),
                        "restarts": c.get("restartCount"),
                        "state": c.get("state"),
                    }
                    for c in (p.get("status") or {}).get("containerStatuses") or []
                ],
            }
            for p in pods
        ]
        _write(directory / f"pods-{namespace}.json", json.dumps(summary, indent=2, default=str))
        _write(directory / f"events-{namespace}.txt", "\n".join(target.events(namespace)))
    apps = target.list_objects("argoproj.io/v1alpha1", "Application", "argocd")
    _write(
        directory / "argocd-applications.yaml",
        yaml.safe_dump([{"name": a["metadata"]["name"], "status": a.get("status")} for a in apps]),
    )


def _write(path: Path, text: str) -> None:
    path.write_text(text + ("" if text.endswith("\n") else "\n"), encoding="utf-8")
