"""The docker runner's toolchains: which image each service's checks run in, the
derived image for those that need more (`derived_dockerfile`), and what goes into the
container (a copy of the source, the host's CA bundle, the proxy variables).

Pure, but for reading the host's CA bundle and source tree; `lab.docker_runner` uses it.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from lab.config import Config
from lab.errors import LabError


@dataclass(frozen=True)
class Toolchain:
    """Where the docker runner runs a service's checks."""

    build_arg: str  # the service Dockerfile's base-image build arg (Config.base_images)
    packages: tuple[str, ...] = ()  # Debian packages the checks need on top of the image
    caches: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    needs_backend_binary: bool = False  # mount a static backend build, set BACKEND_BIN


TOOLCHAINS: Mapping[str, Toolchain] = MappingProxyType(
    {
        "backend": Toolchain(
            "GO_IMAGE",
            packages=("redis-server",),  # go test starts a real redis-server
            # scripts/audit.sh installs govulncheck under ~/.cache/lab
            caches={
                "gomod": "/go/pkg/mod",
                "gobuild": "/root/.cache/go-build",
                "tools": "/root/.cache/lab",
            },
        ),
        "monitor": Toolchain(
            "PYTHON_IMAGE",
            packages=("redis-server",),  # the conftest starts a real redis-server
            caches={"pip": "/root/.cache/pip"},
            needs_backend_binary=True,
        ),
        "frontend": Toolchain("NODE_IMAGE", caches={"npm": "/root/.npm"}),
    }
)


def toolchain_image(config: Config, service: str) -> str:
    """The base image a service's checks run in: its Dockerfile's, from the settings."""
    return config.base_images[TOOLCHAINS[service].build_arg]


# In the docker runner's containers: where the source goes.
SOURCE_DIR = "/src"
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CONTAINER_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")

# Left out of the copy into the container: build outputs and caches, not source.
SKIP_ANYWHERE = frozenset(
    {".git", "node_modules", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
)
SKIP_TOP_LEVEL = frozenset(
    {".venv", "venv", "dist", "coverage", "htmlcov", ".coverage", "test-results"}
    | {"playwright-report", "bin"}
)


def derived_dockerfile(packages: Sequence[str]) -> str:
    """The recipe of a toolchain image with extra Debian packages (pure)."""
    return (
        "ARG BASE\n"
        "FROM ${BASE}\n"
        "RUN apt-get update \\\n"
        f" && apt-get install -y --no-install-recommends {' '.join(packages)} \\\n"
        " && rm -rf /var/lib/apt/lists/*\n"
    )


def host_ca_bundle(environ: Mapping[str, str] | None = None) -> Path | None:
    """The CA bundle this host trusts (SSL_CERT_FILE, else Debian's), if there is one."""
    environ = os.environ if environ is None else environ
    for candidate in (environ.get("SSL_CERT_FILE"), HOST_CA_BUNDLE):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def proxy_env() -> dict[str, str]:
    return {key: os.environ[key] for key in PROXY_VARIABLES if os.environ.get(key)}


def _skip_member(relative: Path) -> bool:
    parts = relative.parts
    if not parts:
        return False
    return parts[0] in SKIP_TOP_LEVEL or any(part in SKIP_ANYWHERE for part in parts)


def source_archive(directory: Path, prefix: str = SOURCE_DIR.strip("/")) -> bytes:
    """A tar of `directory` under `prefix/`, owned by root, build outputs left out."""
    if not directory.is_dir():
        raise LabError(f"no service directory {directory}", hint="run from the lab repository")

    def keep(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
        relative = Path(member.name).relative_to(prefix)
        if _skip_member(relative):
            return None
        member.uid = member.gid = 0
        member.uname = member.gname = "root"
        return member

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(directory, arcname=prefix, recursive=True, filter=keep)
    return buffer.getvalue()


def file_archive(source: Path, destination: str) -> bytes:
    """A tar holding one file, at `destination` (absolute) when extracted at `/`."""
    data = source.read_bytes()
    member = tarfile.TarInfo(destination.lstrip("/"))
    member.size = len(data)
    member.mode = 0o644
    member.mtime = int(time.time())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()
