"""The pinned external tools — kind, istioctl, kubectl, kustomize — fetched into `.lab/bin/`.

`invoke lab.tools` plans one download per tool from the pinned versions in `lab.config`
and this machine's OS and architecture (`lab.downloads`, pure), then, for each tool not
already installed at its pinned version: fetches the checksum its project publishes,
streams the artifact to a temporary file in `.lab/bin/`, verifies its SHA-256, extracts
the binary from an archive (istioctl, kustomize), makes it executable and renames it
into place. Nothing is installed unless every check passed, and no partial file is left
behind. `lab.proc.which` prefers `.lab/bin/` over PATH, so every later command uses these.

What is installed is recorded in `.lab/bin/.versions.json` (version, the binary's
SHA-256, where it came from); a re-run skips a tool whose record matches the pinned
version and whose file still has the recorded digest.

Mirrors (workshop rooms, air-gapped CI): see `lab.downloads` for the layout.

HTTP goes through httpx, which honours HTTPS_PROXY / HTTP_PROXY / NO_PROXY.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import IO

import httpx

from lab import __version__, changes, cli, steps
from lab.downloads import (
    CHUNK_BYTES,
    MIRROR_ENV,
    TOOLS,
    Download,
    detect_platform,
    extract_member,
    parse_checksum,
    plan_downloads,
    size_text,
)
from lab.errors import LabError
from lab.ui import UI

log = logging.getLogger("lab.tools")

VERSIONS_FILE = ".versions.json"

# A stalled transfer fails after READ_TIMEOUT seconds without a byte; a slow one that
# keeps moving (workshop Wi-Fi) is never cut off.
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 30.0
PROGRESS_EVERY = 5.0  # seconds between progress lines during a long download

_SUFFIXES = (".download", ".part")  # our temporary files in .lab/bin/, left by a kill -9


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
    if not bin_dir.is_dir():
        runner.make(f"create {bin_dir}", partial(_make_bin_dir, bin_dir), planned=None)
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
    if not runner.planned:
        ctx.ui.info(f"Tools are in {bin_dir}; lab uses them before any on PATH.")


def _make_bin_dir(bin_dir: Path) -> None:
    try:
        bin_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LabError(
            f"cannot create {bin_dir}: {error.strerror}",
            hint="check the permissions of the state directory (setting state_dir)",
        ) from error


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
    runner: changes.Changes,
) -> str:
    """Install one tool unless it is already there; returns what was done."""
    leftovers = _leftovers(bin_dir, plan.tool)
    if leftovers:  # of a download cut off before
        runner.make(
            f"remove {len(leftovers)} partial download(s) of {plan.tool} in {bin_dir}",
            partial(_remove, leftovers),
            planned=None,
        )
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
    return f"{size_text(size)} downloaded, sha256 verified"


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
                of_total = f" of {size_text(total)}" if total else ""
                progress(f"{plan.tool}: {size_text(size)}{of_total} downloaded")
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


def _leftovers(bin_dir: Path, tool: str) -> list[Path]:
    """Temporary files of an earlier run that was killed before it could clean up."""
    return [path for path in bin_dir.glob(f".{tool}-*") if path.suffix in _SUFFIXES]


def _remove(paths: Sequence[Path]) -> None:
    for path in paths:
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
