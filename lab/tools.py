"""The pinned external tools — kind, istioctl, kubectl, kustomize — fetched into `.lab/bin/`.

`invoke lab.tools` plans one download per tool from the pinned versions in `lab.config`
and this machine's OS and architecture (`plan_downloads`, pure), then, for each tool not
already installed at its pinned version: fetches the checksum its project publishes,
streams the artifact to a temporary file in `.lab/bin/`, verifies its SHA-256, extracts
the binary from an archive (istioctl, kustomize), makes it executable and renames it into
place. Nothing is installed unless every check passed, and no partial file is left
behind. `lab.proc.which` prefers `.lab/bin/` over PATH, so every later command uses these.

What is installed is recorded in `.lab/bin/.versions.json` (version, the binary's
SHA-256, where it came from); a re-run skips a tool whose record matches the pinned
version and whose file still has the recorded digest.

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

HTTP goes through httpx, which honours HTTPS_PROXY / HTTP_PROXY / NO_PROXY.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform as platform_module
import posixpath
import re
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import IO

import httpx

from lab import __version__, changes, cli, steps
from lab.config import Config
from lab.errors import LabError
from lab.ui import UI

log = logging.getLogger("lab.tools")

TOOLS = ("kind", "istioctl", "kubectl", "kustomize")

# Read by `install_tools` when no mirror is passed. Shares the LAB_ prefix of settings,
# so lab/config.py must list it in _IGNORED_ENV for `config.load` to accept it.
MIRROR_ENV = "LAB_TOOLS_MIRROR"

VERSIONS_FILE = ".versions.json"

# Each project's download root; the path below it is the same on a mirror.
UPSTREAM = {
    "kind": "https://kind.sigs.k8s.io/dl",  # redirects to the GitHub release assets
    "istioctl": "https://github.com/istio/istio/releases/download",
    "kubectl": "https://dl.k8s.io/release",  # redirects to the CDN
    # kustomize's release tags are "kustomize/vX.Y.Z", URL-encoded in the path.
    "kustomize": "https://github.com/kubernetes-sigs/kustomize/releases/download",
}

# A stalled transfer fails after READ_TIMEOUT seconds without a byte; a slow one that
# keeps moving (workshop Wi-Fi) is never cut off.
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 30.0
CHUNK_BYTES = 1 << 16
PROGRESS_EVERY = 5.0  # seconds between progress lines during a long download
MAX_MEMBER_BYTES = 1 << 30  # istioctl is ~100 MiB; anything near 1 GiB is not istioctl

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_SUFFIXES = (".download", ".part")  # our temporary files in .lab/bin/, left by a kill -9


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


@dataclass(frozen=True)
class Installed:
    """One entry of `.versions.json`: what lab put in `.lab/bin/`."""

    version: str
    sha256: str  # of the installed binary
    source: str  # the URL it came from
    source_sha256: str  # the published digest that URL was verified against


def read_versions(bin_dir: Path) -> dict[str, Installed]:
    """The records in `<bin_dir>/.versions.json`; an unreadable file counts as none."""
    path = bin_dir / VERSIONS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(tool): Installed(**entry) for tool, entry in data.items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, AttributeError) as error:
        # Only costs a re-download; the file is rewritten after the next install.
        log.warning("ignoring unreadable %s: %s", path, error)
        return {}


def write_versions(bin_dir: Path, records: Mapping[str, Installed]) -> None:
    """Replace `<bin_dir>/.versions.json` atomically."""
    data = {tool: asdict(record) for tool, record in sorted(records.items())}
    with _temporary(bin_dir, ".versions-", ".part") as (stream, path):
        stream.write((json.dumps(data, indent=2) + "\n").encode())
        stream.close()
        os.replace(path, bin_dir / VERSIONS_FILE)


def is_installed(plan: Download, bin_dir: Path, records: Mapping[str, Installed]) -> bool:
    """True when `.lab/bin/<tool>` is the pinned version, untouched since lab put it there."""
    record = records.get(plan.tool)
    target = bin_dir / plan.tool
    if record is None or record.version != plan.version:
        return False
    if not target.is_file() or not os.access(target, os.X_OK):
        return False
    return _file_sha256(target) == record.sha256


def install_tools(
    ctx: cli.Context,
    *,
    only: Sequence[str] = (),
    force: bool = False,
    mirror: str | None = None,
    dry_run: bool = False,
) -> None:
    """Install the pinned kind, istioctl, kubectl and kustomize into `<state_dir>/bin/`.

    `only` names a subset (names may also be comma-separated); `force` re-downloads
    tools already installed; `mirror` (default: `$LAB_TOOLS_MIRROR`) replaces the
    upstream download sites (see the module docstring for its layout); `dry_run` lists
    the downloads and fetches nothing.
    """
    runner = changes.for_options(dry_run)
    wanted = _selected(only)
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV) or None
    plans = [
        plan
        for plan in plan_downloads(ctx.config, detect_platform(), mirror=mirror)
        if plan.tool in wanted
    ]
    bin_dir = ctx.config.state_path / "bin"
    try:
        bin_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LabError(
            f"cannot create {bin_dir}: {error.strerror}",
            hint="check the permissions of the state directory (setting state_dir)",
        ) from error
    records = read_versions(bin_dir)
    timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
    headers = {"User-Agent": f"lab/{__version__} (lab.tools)"}
    with httpx.Client(timeout=timeout, follow_redirects=True, headers=headers) as client:
        installs = [
            steps.Step(
                f"Installing {plan.tool} {plan.version}",
                lambda _, plan=plan: _ensure_tool(  # type: ignore[misc]
                    plan, bin_dir, records, client=client, ui=ctx.ui, force=force, runner=runner
                ),
            )
            for plan in plans
        ]
        runner.start(ctx.ui)
        steps.raise_first_failure(steps.run(installs, None, ctx.ui), context=False)
    runner.finish(ctx.ui)
    ctx.ui.info(f"Tools are in {bin_dir}; lab uses them before any on PATH.")


def _selected(only: Sequence[str]) -> set[str]:
    if isinstance(only, str):
        only = (only,)
    names = {name.strip() for item in only for name in item.split(",") if name.strip()}
    unknown = sorted(names - set(TOOLS))
    if unknown:
        raise LabError(
            f"unknown tool(s): {', '.join(unknown)}",
            hint=f"choose among {', '.join(TOOLS)}",
        )
    return names or set(TOOLS)


def _ensure_tool(
    plan: Download,
    bin_dir: Path,
    records: dict[str, Installed],
    *,
    client: httpx.Client,
    ui: UI,
    force: bool,
    runner: changes.Changes = changes.MAKE,
) -> str:
    """Install one tool unless it is already there; returns what was done."""
    _remove_leftovers(bin_dir, plan.tool)
    if not force and is_installed(plan, bin_dir, records):
        return "already installed"
    return runner.make(
        f"download {plan.url} into {bin_dir / plan.tool}",
        partial(_install, plan, bin_dir, records, client, ui),
        planned="planned",
    )


def _install(
    plan: Download, bin_dir: Path, records: dict[str, Installed], client: httpx.Client, ui: UI
) -> str:
    expected = _published_digest(client, plan)
    with _temporary(bin_dir, f".{plan.tool}-", ".download") as (artifact, artifact_path):
        actual, size = _download(client, plan, artifact, ui.progress)
        artifact.close()
        if actual != expected:
            raise LabError(
                f"refusing {plan.tool}: the SHA-256 of {plan.url} does not match the "
                f"published checksum (expected {expected}, got {actual}); nothing was installed",
                hint="the download was corrupted or altered on the way (proxy? mirror?); "
                "re-run `invoke lab.tools`, and if it persists, do not use this source",
            )
        if plan.member is None:
            binary_sha = actual
            _make_executable(artifact_path)
            os.replace(artifact_path, bin_dir / plan.tool)
        else:
            with _temporary(bin_dir, f".{plan.tool}-", ".part") as (binary, binary_path):
                binary_sha = extract_member(artifact_path, plan.member, binary, plan=plan)
                _sync(binary)
                binary.close()
                _make_executable(binary_path)
                os.replace(binary_path, bin_dir / plan.tool)
    records[plan.tool] = Installed(plan.version, binary_sha, plan.url, expected)
    write_versions(bin_dir, records)
    log.info("installed %s %s from %s (sha256 %s)", plan.tool, plan.version, plan.url, actual)
    return f"{_size(size)} downloaded, sha256 verified"


def _published_digest(client: httpx.Client, plan: Download) -> str:
    with _http_errors(plan, plan.checksum_url):
        response = client.get(plan.checksum_url)
        response.raise_for_status()
    try:
        return parse_checksum(response.text, plan.file_name)
    except ValueError as error:
        raise LabError(
            f"cannot read the published checksum of {plan.tool} at {plan.checksum_url}: {error}",
            hint="the server did not return a checksum file; if this is a mirror, "
            "copy the checksum file next to the artifact",
        ) from error


def _download(
    client: httpx.Client, plan: Download, out: IO[bytes], progress: Callable[[str], None]
) -> tuple[str, int]:
    """Stream `plan.url` into `out`; returns the SHA-256 hex digest and the size."""
    digest = hashlib.sha256()
    size = 0
    with _http_errors(plan, plan.url), client.stream("GET", plan.url) as response:
        response.raise_for_status()
        total = int(response.headers.get("Content-Length", "0") or 0)
        last_report = time.monotonic()
        for chunk in response.iter_bytes(CHUNK_BYTES):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            if time.monotonic() - last_report >= PROGRESS_EVERY:
                last_report = time.monotonic()
                of_total = f" of {_size(total)}" if total else ""
                progress(f"{plan.tool}: {_size(size)}{of_total} downloaded")
    _sync(out)
    return digest.hexdigest(), size


@contextlib.contextmanager
def _http_errors(plan: Download, url: str) -> Iterator[None]:
    """Turn httpx failures into a LabError that names the URL and what to try."""
    mirror_hint = f"or set {MIRROR_ENV} to a mirror holding {plan.tool}/... (see lab/tools.py)"
    try:
        yield
    except httpx.HTTPStatusError as error:
        response = error.response
        status = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
        if response.status_code == 404:
            hint = (
                f"is {plan.tool} {plan.version} published for this OS/architecture? "
                "check the pinned version (`invoke lab.config`), " + mirror_hint
            )
        else:
            hint = "the server refused or failed; retry later, " + mirror_hint
        raise LabError(
            f"cannot download {plan.tool}: {url} answered {status}", hint=hint
        ) from error
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        reason = str(error) or type(error).__name__
        raise LabError(
            f"cannot download {plan.tool} from {url}: {reason}",
            hint="are you offline, or behind a proxy? set HTTPS_PROXY (and NO_PROXY), "
            + mirror_hint,
        ) from error


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
                    f"{_size(matches[0].size)}",
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


@contextlib.contextmanager
def _temporary(directory: Path, prefix: str, suffix: str) -> Iterator[tuple[IO[bytes], Path]]:
    """A new file in `directory` (same file system, so a rename is atomic), removed on exit
    unless it was renamed away."""
    try:
        fd, name = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
    except OSError as error:
        raise LabError(
            f"cannot write in {directory}: {error.strerror}",
            hint="check its permissions and the free disk space",
        ) from error
    path = Path(name)
    stream = os.fdopen(fd, "wb")
    try:
        yield stream, path
    except OSError as error:
        raise LabError(
            f"cannot write {path}: {error.strerror or error}",
            hint="check the free disk space and the permissions of the state directory",
        ) from error
    finally:
        stream.close()
        path.unlink(missing_ok=True)


def _remove_leftovers(bin_dir: Path, tool: str) -> None:
    """Temporary files of an earlier run that was killed before it could clean up."""
    for path in bin_dir.glob(f".{tool}-*"):
        if path.suffix in _SUFFIXES:
            path.unlink(missing_ok=True)


def _sync(stream: IO[bytes]) -> None:
    """Data on disk before the rename, so a crash never leaves a truncated tool in place."""
    stream.flush()
    os.fsync(stream.fileno())


def _make_executable(path: Path) -> None:
    path.chmod(0o755)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _size(count: int) -> str:
    if count >= 1 << 20:
        return f"{count / (1 << 20):.1f} MiB"
    if count >= 1 << 10:
        return f"{count / (1 << 10):.0f} KiB"
    return f"{count} B"
