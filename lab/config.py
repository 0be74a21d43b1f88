"""Every pinned version, image, port and timeout, in one place.

Defaults live in `Config`. A user overrides them in `invoke.yaml` under a `lab:` key, or
with `LAB_<KEY>` environment variables (which win). Unknown keys and bad values are
refused with an error that names the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lab.errors import ConfigError

ENV_PREFIX = "LAB_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Config:
    """The lab's settings; field comments say what each one is for."""

    # Names
    cluster_name: str = "lab"
    registry_name: str = "lab-registry"
    state_dir: str = ".lab"

    # Pinned tools and images. kind's node image comes from kind's own defaults
    # (pkg/apis/config/defaults/image.go at the pinned kind version).
    kind_version: str = "v0.32.0"
    kind_node_image: str = (
        "kindest/node:v1.36.1"
        "@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5"
    )
    kubectl_version: str = "v1.36.1"
    istio_version: str = "1.30.0"
    # The images istioctl installs are pinned here, not left to istioctl's build.
    istio_hub: str = "docker.io/istio"
    # "sidecars": the full mesh (an ingress gateway, a sidecar in every demo pod).
    # "none": Istio's control plane only (istiod, its CRDs and validating webhook): no
    # gateway, no injection; the smoke test calls each variant's Service directly. For
    # machines that cannot run Envoy (our CI's kind tier); Istio's objects are still
    # validated by a real istiod, but nothing enforces or routes by them.
    istio_data_plane: str = "sidecars"
    argocd_version: str = "v3.6.1"
    gitea_version: str = "1.26.0"
    gitea_image: str = "docker.gitea.com/gitea:1.26.0-rootless"
    registry_image: str = "registry:3"
    trivy_image: str = "aquasec/trivy:0.68.2"
    kustomize_version: str = "v5.8.1"
    # The docker buildx plugin `make buildx` builds when the docker CLI lacks one (lab
    # builds every image with BuildKit through it); any buildx from 0.13 on will do.
    buildx_version: str = "v0.38.2"
    # The base images the apps' Dockerfiles build FROM (passed as their build args, whose
    # defaults in each Dockerfile are the same: a unit test checks), which the quality
    # stage's docker runner also runs the checks in. docs/base-images.md says how and
    # when they are refreshed.
    go_image: str = "golang:1.26-trixie"  # GO_IMAGE: backend, smoke
    nodejs_image: str = "node:20-trixie-slim"  # NODE_IMAGE: the frontend's build stage
    nginx_image: str = "nginx:1.30-trixie"  # NGINX_IMAGE: the frontend's served image
    python_image: str = "python:3.13-slim-trixie"  # PYTHON_IMAGE: monitor
    # The quality stage's docker runner derives its toolchain images (a base plus the
    # Debian packages the checks need) under this repository: <it>/<service>:<hash>.
    toolchain_repository: str = "lab-quality-toolchain"
    # The apps' dependency stages a workshop bundle carries, which offline builds start
    # from: <it>/<service>:latest (lab.images.dependency_plans).
    build_cache_repository: str = "lab-build-cache"

    # Extra kind cluster settings, for machines that need them (our CI's kind tier sets
    # them; a laptop needs none). TOML appended to kind's containerdConfigPatches, and
    # YAML documents (separated by `---`) appended to its kubeadmConfigPatches.
    kind_containerd_patch: str = ""
    kind_kubeadm_patch: str = ""

    # Host ports, bound to `bind_address` only.
    bind_address: str = "127.0.0.1"
    registry_port: int = 5001
    ingress_http_port: int = 8080
    ingress_node_port: int = 30080
    gitea_http_port: int = 3000
    gitea_node_port: int = 30300
    argocd_http_port: int = 8090
    argocd_node_port: int = 30090

    # The GitOps repository as the cluster sees it (ArgoCD's repoURL, Gitea's ROOT_URL host).
    gitea_namespace: str = "gitea"
    gitops_org: str = "lab"
    gitops_repo: str = "gitops"

    # Traffic split: percent of requests to v2 when no x-version header pins a variant.
    dev_v2_weight: int = 50
    prod_v2_weight: int = 10

    # Preflight thresholds.
    # An 8 GB machine (or Docker Desktop VM) reports 7.6-7.8 GiB after the kernel's
    # reservations: the minimum admits it; the hint still asks for 8 GB.
    docker_min_memory_gib: float = 7.0
    docker_warn_memory_gib: float = 12.0
    min_free_disk_gib: float = 20.0
    min_inotify_watches: int = 524288
    min_inotify_instances: int = 512

    # Deadlines in seconds.
    command_timeout: float = 120.0
    cluster_timeout: float = 600.0
    install_timeout: float = 600.0
    sync_timeout: float = 300.0
    smoke_timeout: float = 300.0

    @property
    def gitea_internal_url(self) -> str:
        return f"http://gitea-http.{self.gitea_namespace}.svc.cluster.local:3000"

    @property
    def gitops_repo_url(self) -> str:
        return f"{self.gitea_internal_url}/{self.gitops_org}/{self.gitops_repo}.git"

    @property
    def registry_host(self) -> str:
        return f"localhost:{self.registry_port}"

    @property
    def base_images(self) -> dict[str, str]:
        """The Dockerfiles' base-image build args and their values."""
        return {
            "GO_IMAGE": self.go_image,
            "NODE_IMAGE": self.nodejs_image,
            "NGINX_IMAGE": self.nginx_image,
            "PYTHON_IMAGE": self.python_image,
        }

    @property
    def kube_context(self) -> str:
        return f"kind-{self.cluster_name}"

    @property
    def state_path(self) -> Path:
        """`.lab/`, relative to the project root unless given as an absolute path."""
        return PROJECT_ROOT / self.state_dir

    def host_ports(self) -> dict[str, int]:
        """Each host port the lab binds, by what it serves."""
        return {
            "registry": self.registry_port,
            "ingress (app)": self.ingress_http_port,
            "Gitea": self.gitea_http_port,
            "Argo CD UI": self.argocd_http_port,
        }


ISTIO_DATA_PLANES = ("sidecars", "none")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def load(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """The defaults, then `overrides` (invoke.yaml's `lab:`), then `LAB_*` variables."""
    environ = os.environ if environ is None else environ
    known = {field.name: field for field in fields(Config)}
    values: dict[str, Any] = {}
    for key, raw in (overrides or {}).items():
        values[_known_key(str(key), known, "invoke.yaml (lab:)")] = (raw, f"invoke.yaml lab.{key}")
    for variable, raw in environ.items():
        if variable.startswith(ENV_PREFIX) and variable not in _IGNORED_ENV:
            key = variable[len(ENV_PREFIX) :].lower()
            values[_known_key(key, known, f"environment variable {variable}")] = (raw, variable)
    converted = {key: _convert(known[key], raw, source) for key, (raw, source) in values.items()}
    config = dataclasses.replace(Config(), **converted)
    _validate(config)
    return config


# Variables that share our prefix but are not settings: LAB_DEBUG turns on tracebacks;
# the others point the test suites at locally built tools (see .ci/tools/).
_IGNORED_ENV = frozenset(
    {
        "LAB_DEBUG",  # tracebacks on errors
        "LAB_E2E",  # opt in to the e2e tier
        "LAB_TOOLS_MIRROR",  # where lab.tools downloads from
        "LAB_CACHE_DIR",  # where .ci/tools/ build scripts cache their builds
        # Paths printed by .ci/tools/*.sh and exported by .ci/run as LAB_<TOOL>:
        "LAB_KUSTOMIZE",
        "LAB_ISTIOCTL",
        "LAB_GITEA",
        "LAB_STANDINS",
    }
)


def _known_key(key: str, known: Mapping[str, dataclasses.Field[Any]], source: str) -> str:
    if key in known:
        return key
    close = difflib.get_close_matches(key, list(known), n=1)
    suggestion = f"did you mean '{close[0]}'?" if close else "see lab/config.py for the keys"
    raise ConfigError(
        f"unknown setting '{key}' in {source}",
        hint=f"{suggestion} (run `invoke lab.config` to list every setting)",
    )


def _convert(field: dataclasses.Field[Any], raw: Any, source: str) -> Any:
    kind = field.type if isinstance(field.type, str) else field.type.__name__
    try:
        if kind == "int":
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        if kind == "float":
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        if kind == "str":
            if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
                raise ValueError
            return str(raw)
    except (TypeError, ValueError):
        pass
    else:
        raise AssertionError(f"unsupported setting type {kind}")  # pragma: no cover
    raise ConfigError(
        f"setting '{field.name}' from {source} must be {_KIND_WORDS[kind]}, got {raw!r}",
        hint=f"fix {source}",
    )


_KIND_WORDS = {"int": "a whole number", "float": "a number", "str": "a string"}


def _validate(config: Config) -> None:
    ports = {
        "registry_port": config.registry_port,
        "ingress_http_port": config.ingress_http_port,
        "gitea_http_port": config.gitea_http_port,
        "argocd_http_port": config.argocd_http_port,
    }
    for key, port in ports.items():
        if not 1 <= port <= 65535:
            raise ConfigError(f"setting '{key}' is {port}, not a TCP port", hint="use 1-65535")
    seen: dict[int, str] = {}
    for key, port in ports.items():
        if port in seen:
            raise ConfigError(
                f"settings '{seen[port]}' and '{key}' both use host port {port}",
                hint="give each host port its own number",
            )
        seen[port] = key
    for key in ("ingress_node_port", "gitea_node_port", "argocd_node_port"):
        port = getattr(config, key)
        if not 30000 <= port <= 32767:
            raise ConfigError(
                f"setting '{key}' is {port}, outside Kubernetes' NodePort range",
                hint="use 30000-32767",
            )
    for key in ("dev_v2_weight", "prod_v2_weight"):
        weight = getattr(config, key)
        if not 0 <= weight <= 100:
            raise ConfigError(f"setting '{key}' is {weight}, not a percentage", hint="use 0-100")
    for key in ("cluster_name", "registry_name", "gitea_namespace", "gitops_org", "gitops_repo"):
        if not _NAME.match(getattr(config, key)):
            raise ConfigError(
                f"setting '{key}' is {getattr(config, key)!r}, not a valid name",
                hint="use lower-case letters, digits and '-'",
            )
    if config.istio_data_plane not in ISTIO_DATA_PLANES:
        raise ConfigError(
            f"setting 'istio_data_plane' is {config.istio_data_plane!r}",
            hint=f"use one of: {', '.join(ISTIO_DATA_PLANES)}",
        )
    if "@sha256:" not in config.kind_node_image:
        raise ConfigError(
            "setting 'kind_node_image' must be pinned by digest (name:tag@sha256:...)",
            hint="copy the image reference from kind's release notes",
        )
    for key in (
        "command_timeout",
        "cluster_timeout",
        "install_timeout",
        "sync_timeout",
        "smoke_timeout",
    ):
        if getattr(config, key) <= 0:
            raise ConfigError(f"setting '{key}' must be positive", hint="use a number of seconds")


def describe(config: Config) -> list[tuple[str, str]]:
    """Every setting and its value, for `invoke lab.config`."""
    return [(field.name, str(getattr(config, field.name))) for field in fields(Config)]


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """Whether we run in CI (`CI` set to true, 1 or yes, as CI services set it): the one
    place that asks. Runs there are strict about UNVERIFIED unless told otherwise."""
    environ = os.environ if environ is None else environ
    return environ.get("CI", "").strip().lower() in ("1", "true", "yes")
