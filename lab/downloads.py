"""What `lab.tools` downloads, from where, and how a download is checked (pure but for
reading the archive).

One `Download` per tool, for this machine's OS and architecture, from the versions
pinned in `lab.config`: the artifact's URL, the URL of the checksum its project
publishes, and the archive member that is the binary (istioctl, kustomize).
`extract_member` refuses archives that would write outside their directory or hold
anything but the one regular file asked for.

Mirrors (workshop rooms, air-gapped CI): pass `mirror=` or set `LAB_TOOLS_MIRROR` to a
base URL that holds the upstream files under `<tool>/`, with the upstream layout below
each project's download root, e.g. for linux/amd64::

    <mirror>/kind/v0.32.0/kind-linux-amd64                       (+ .sha256sum)
    <mirror>/kubectl/v1.36.1/bin/linux/amd64/kubectl              (+ .sha256)
    <mirror>/istioctl/1.30.0/istioctl-1.30.0-linux-amd64.tar.gz   (+ .sha256)
    <mirror>/kustomize/kustomize/v5.8.1/kustomize_v5.8.1_linux_amd64.tar.gz
                                                  (+ checksums.txt in the same directory)

kustomize's release tag is `kustomize/v5.8.1`; its URLs spell the slash `%2F`, which a
static file server (nginx, `python -m http.server`) decodes, hence the nested directory.
Apache answers 404 to `%2F` unless `AllowEncodedSlashes On` is set.
"""

from __future__ import annotations

import hashlib
import platform as platform_module
import posixpath
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lab.config import Config
from lab.errors import LabError

TOOLS = ("kind", "istioctl", "kubectl", "kustomize")

# Read by `install_tools` when no mirror is passed. Shares the LAB_ prefix of settings,
# so lab/config.py must list it in _IGNORED_ENV for `config.load` to accept it.
MIRROR_ENV = "LAB_TOOLS_MIRROR"

# Each project's download root; the path below it is the same on a mirror.
UPSTREAM = {
    "kind": "https://kind.sigs.k8s.io/dl",  # redirects to the GitHub release assets
    "istioctl": "https://github.com/istio/istio/releases/download",
    "kubectl": "https://dl.k8s.io/release",  # redirects to the CDN
    # kustomize's release tags are "kustomize/vX.Y.Z", URL-encoded in the path.
    "kustomize": "https://github.com/kubernetes-sigs/kustomize/releases/download",
}

CHUNK_BYTES = 1 << 16
MAX_MEMBER_BYTES = 1 << 30  # istioctl is ~100 MiB; anything near 1 GiB is not istioctl

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class Platform:
    """An OS and architecture as Go names them (the names kind and kubectl publish)."""

    os: str  # linux | darwin
    arch: str  # amd64 | arm64


_OS_NAMES = {"linux": "linux", "darwin": "darwin"}
_ARCH_NAMES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def detect_platform(system: str | None = None, machine: str | None = None) -> Platform:
    """This machine's platform (or the one `platform.system()`/`.machine()` would give)."""
    system = platform_module.system() if system is None else system
    machine = platform_module.machine() if machine is None else machine
    os_name = _OS_NAMES.get(system.lower())
    arch = _ARCH_NAMES.get(machine.lower())
    if os_name is None or arch is None:
        raise LabError(
            f"lab.tools has no downloads for {system}/{machine}",
            hint="it supports Linux and macOS on x86_64 and arm64; install kind, istioctl, "
            "kubectl and kustomize at the versions `invoke lab.config` shows, "
            "and put them on PATH",
        )
    return Platform(os_name, arch)


@dataclass(frozen=True)
class Download:
    """Where one tool's artifact and its published checksum are, and what to take from it."""

    tool: str
    version: str
    url: str
    checksum_url: str
    file_name: str  # the artifact's published name, as its checksum file refers to it
    member: str | None = None  # for a .tar.gz: the archive member that is the binary


def plan_downloads(
    config: Config, platform: Platform, *, mirror: str | None = None
) -> tuple[Download, ...]:
    """One `Download` per tool in `TOOLS`, from the pinned versions, for `platform`."""
    if mirror is not None and not re.match(r"^https?://[^/\s]+", mirror):
        raise LabError(
            f"tool mirror {mirror!r} is not an http(s) URL",
            hint=f"set {MIRROR_ENV} to a base URL such as http://10.0.0.5:8000/lab-tools",
        )
    os_name, arch = platform.os, platform.arch

    def where(tool: str, path: str) -> str:
        base = f"{mirror.rstrip('/')}/{tool}" if mirror else UPSTREAM[tool]
        return f"{base}/{path}"

    kind = f"kind-{os_name}-{arch}"
    kind_url = where("kind", f"{config.kind_version}/{kind}")
    kubectl_url = where("kubectl", f"{config.kubectl_version}/bin/{os_name}/{arch}/kubectl")
    istioctl = _istioctl_archive(config.istio_version, platform)
    istioctl_url = where("istioctl", f"{config.istio_version}/{istioctl}")
    kustomize = f"kustomize_{config.kustomize_version}_{os_name}_{arch}.tar.gz"
    kustomize_url = where("kustomize", f"kustomize%2F{config.kustomize_version}/{kustomize}")
    return (
        # kind publishes `<hex>  kind-<os>-<arch>` next to each binary.
        Download("kind", config.kind_version, kind_url, f"{kind_url}.sha256sum", kind),
        # Istio publishes `<hex> <archive>` next to each archive; the binary is `istioctl`.
        Download(
            "istioctl",
            config.istio_version,
            istioctl_url,
            f"{istioctl_url}.sha256",
            istioctl,
            member="istioctl",
        ),
        # Kubernetes publishes the bare hex digest next to each binary.
        Download(
            "kubectl", config.kubectl_version, kubectl_url, f"{kubectl_url}.sha256", "kubectl"
        ),
        # kustomize publishes one checksums.txt (`<hex>  <archive>` lines) per release; the
        # pipeline renders the GitOps repository with it (the smoke Job).
        Download(
            "kustomize",
            config.kustomize_version,
            kustomize_url,
            where("kustomize", f"kustomize%2F{config.kustomize_version}/checksums.txt"),
            kustomize,
            member="kustomize",
        ),
    )


def _istioctl_archive(version: str, platform: Platform) -> str:
    # Istio says "osx", not "darwin", and its Intel macOS archive has no arch suffix
    # (istio/istio release/downloadIstioCtl.sh: `istioctl-<v>-osx.tar.gz` unless arm64).
    if platform.os == "darwin":
        suffix = "osx-arm64" if platform.arch == "arm64" else "osx"
    else:
        suffix = f"{platform.os}-{platform.arch}"
    return f"istioctl-{version}-{suffix}.tar.gz"


def parse_checksum(text: str, file_name: str) -> str:
    """The SHA-256 hex digest for `file_name` in a published checksum file.

    Accepts a bare digest (Kubernetes), `<hex>  <name>` (sha256sum, kind), `<hex> <name>`
    (Istio) and `<hex> *<name>`; with several lines, the one naming `file_name`.
    Raises ValueError when there is no well-formed digest for `file_name`.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("the checksum file is empty")
    for line in lines:
        digest, _, name = line.partition(" ")
        if not _HEX64.match(digest):
            raise ValueError(f"not a SHA-256 digest: {line[:80]!r}")
        name = name.strip().lstrip("*")
        if not name or posixpath.basename(name) == file_name:
            return digest.lower()
    raise ValueError(f"no digest for {file_name} in it")


def extract_member(archive: Path, member: str, out: IO[bytes], *, plan: Download) -> str:
    """Copy the regular file `member` of the .tar.gz `archive` into `out`; returns its SHA-256.

    Member names never become paths here (we read the bytes ourselves), and an archive
    with any absolute or `..` path, or a link pointing out of it, is refused outright:
    it is not what the project publishes.
    """
    try:
        with tarfile.open(archive, "r:gz") as tar:
            infos = tar.getmembers()
            for info in infos:
                problem = unsafe_member(info)
                if problem:
                    raise LabError(
                        f"refusing the {plan.tool} archive {plan.url}: "
                        f"member {info.name!r} {problem}; nothing was installed",
                        hint="this is not the archive the project publishes; "
                        "do not use this download source",
                    )
            matches = [info for info in infos if posixpath.normpath(info.name) == member]
            if len(matches) != 1 or not matches[0].isreg():
                found = "several" if len(matches) > 1 else "no regular file"
                raise LabError(
                    f"the {plan.tool} archive {plan.url} has {found} {member!r} member",
                    hint="the archive layout changed or the file is not the right one; "
                    "check the pinned version",
                )
            if matches[0].size > MAX_MEMBER_BYTES:
                raise LabError(
                    f"refusing the {plan.tool} archive {plan.url}: {member!r} is "
                    f"{size_text(matches[0].size)}",
                    hint="this is not the archive the project publishes",
                )
            source = tar.extractfile(matches[0])
            if source is None:  # pragma: no cover - isreg() members always have data
                raise LabError(f"cannot read {member!r} from {plan.url}")
            digest = hashlib.sha256()
            with source:
                for chunk in iter(lambda: source.read(CHUNK_BYTES), b""):
                    out.write(chunk)
                    digest.update(chunk)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise LabError(
            f"cannot unpack the {plan.tool} archive {plan.url}: {error}",
            hint="the download is not a valid .tar.gz, or the disk is full; "
            "re-run `invoke lab.tools`",
        ) from error
    return digest.hexdigest()


def unsafe_member(info: tarfile.TarInfo) -> str | None:
    """Why the archive member `info` could write outside the directory, or None."""
    if _escapes(info.name):
        return "has an absolute path or '..'"
    if info.issym() and (
        _escapes(info.linkname)
        or _escapes(posixpath.join(posixpath.dirname(info.name), info.linkname))
    ):
        return f"is a symlink pointing outside the archive ({info.linkname!r})"
    if info.islnk() and _escapes(info.linkname):
        return f"is a hard link pointing outside the archive ({info.linkname!r})"
    if info.isdev() or info.isfifo():
        return "is a device or FIFO"
    return None


def _escapes(name: str) -> bool:
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return True
    normal = posixpath.normpath(name.replace("\\", "/"))
    return normal == ".." or normal.startswith("../")


def size_text(count: int) -> str:
    if count >= 1 << 20:
        return f"{count / (1 << 20):.1f} MiB"
    if count >= 1 << 10:
        return f"{count / (1 << 10):.0f} KiB"
    return f"{count} B"
