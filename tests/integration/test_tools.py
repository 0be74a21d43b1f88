"""lab.tools against a real HTTP server on 127.0.0.1 serving fake artifacts and checksums.

The server is the network boundary: everything on our side (httpx, redirects, streaming,
checksums, tar extraction, the atomic install, `.versions.json`) runs for real.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import socket
import stat
import sys
import tarfile
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lab import cli, config, downloads, proc, tools
from lab.downloads import Download
from lab.errors import LabError
from lab.ui import UI


@dataclass
class Mirror:
    """A directory served over HTTP, with the paths requested so far."""

    root: Path
    url: str
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    root = tmp_path / "mirror"
    root.mkdir()
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            if self.path.startswith("/moved/"):  # like kind.sigs.k8s.io → GitHub
                self.send_response(302)
                self.send_header("Location", self.path[len("/moved") :])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=root))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Mirror(root, f"http://127.0.0.1:{server.server_address[1]}", requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _context() -> tuple[cli.Context, io.StringIO]:
    out = io.StringIO()
    return cli.Context(config=config.load(), ui=UI(stream=out)), out


def _plans(mirror: Mirror) -> dict[str, Download]:
    planned = downloads.plan_downloads(
        config.load(), downloads.detect_platform(), mirror=mirror.url
    )
    return {plan.tool: plan for plan in planned}


def _script(name: str, version: str) -> bytes:
    """A stand-in for the real binary: prints what `<tool> version` would."""
    return f"#!{sys.executable}\nprint({f'{name} {version} (fake)'!r})\n".encode()


def _tar_gz(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _served(mirror: Mirror, url: str) -> Path:
    """The file the server sends for `url`; like nginx, it decodes kustomize's `%2F`."""
    return mirror.root / urllib.parse.unquote(url.removeprefix(mirror.url + "/"))


# What a kustomize release holds (releasing/create-release.sh), in checksums.txt's order.
KUSTOMIZE_ARTIFACTS = (
    "darwin_amd64.tar.gz",
    "darwin_arm64.tar.gz",
    "linux_amd64.tar.gz",
    "linux_arm64.tar.gz",
    "linux_ppc64le.tar.gz",
    "linux_s390x.tar.gz",
    "windows_amd64.zip",
    "windows_arm64.zip",
)


def _kustomize_checksums(plan: Download, digest: str) -> str:
    """checksums.txt as kustomize publishes it: `sha256sum` of every artifact of the release;
    `digest` on the line for `plan`'s archive."""
    names = [f"kustomize_{plan.version}_{artifact}" for artifact in KUSTOMIZE_ARTIFACTS]
    assert plan.file_name in names
    return "".join(
        f"{digest if name == plan.file_name else hashlib.sha256(name.encode()).hexdigest()}"
        f"  {name}\n"
        for name in names
    )


def _publish(mirror: Mirror, plan: Download, data: bytes, *, digest: str | None = None) -> None:
    """Put the artifact and its checksum file where the plan expects them, in the format
    its project uses."""
    path = _served(mirror, plan.url)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    digest = digest or hashlib.sha256(data).hexdigest()
    if plan.tool == "kustomize":  # one file for the whole release
        checksum = _kustomize_checksums(plan, digest)
    else:
        checksum = {
            "kind": f"{digest}  {plan.file_name}\n",
            "istioctl": f"{digest} {plan.file_name}\n",
            "kubectl": digest,
        }[plan.tool]
    _served(mirror, plan.checksum_url).write_text(checksum)


def _publish_all(mirror: Mirror) -> dict[str, bytes]:
    """Every tool published correctly; returns each installed binary's expected content."""
    plans = _plans(mirror)
    binaries = {tool: _script(tool, plans[tool].version) for tool in downloads.TOOLS}
    _publish(mirror, plans["kind"], binaries["kind"])
    _publish(mirror, plans["istioctl"], _tar_gz(("istioctl", binaries["istioctl"])))
    _publish(mirror, plans["kubectl"], binaries["kubectl"])
    _publish(mirror, plans["kustomize"], _tar_gz(("kustomize", binaries["kustomize"])))
    return binaries


def _bin_dir() -> Path:
    return config.load().state_path / "bin"


def test_install_puts_verified_executables_in_lab_bin_and_records_them(mirror: Mirror) -> None:
    binaries = _publish_all(mirror)
    ctx, out = _context()
    tools.install_tools(ctx, mirror=mirror.url)

    bin_dir = _bin_dir()
    assert sorted(p.name for p in bin_dir.iterdir()) == [".versions.json", *sorted(downloads.TOOLS)]
    for tool, content in binaries.items():
        assert (bin_dir / tool).read_bytes() == content
        assert stat.S_IMODE((bin_dir / tool).stat().st_mode) == 0o755
    assert proc.which("kind") == str(bin_dir / "kind")
    assert proc.run(["kind", "version"], timeout=30).stdout == "kind v0.32.0 (fake)\n"

    records = json.loads((bin_dir / ".versions.json").read_text())
    plans = _plans(mirror)
    assert records["istioctl"] == {
        "version": "1.30.0",
        "sha256": hashlib.sha256(binaries["istioctl"]).hexdigest(),
        "source": plans["istioctl"].url,
        "source_sha256": hashlib.sha256(
            _served(mirror, plans["istioctl"].url).read_bytes()
        ).hexdigest(),
    }
    assert records["kustomize"] == {
        "version": "v5.8.1",
        "sha256": hashlib.sha256(binaries["kustomize"]).hexdigest(),
        "source": plans["kustomize"].url,
        "source_sha256": hashlib.sha256(
            _served(mirror, plans["kustomize"].url).read_bytes()
        ).hexdigest(),
    }
    assert records["kubectl"]["version"] == "v1.36.1"
    assert proc.run(["kustomize", "version"], timeout=30).stdout == "kustomize v5.8.1 (fake)\n"
    text = out.getvalue()
    for title in (
        "Installing kind v0.32.0",
        "Installing istioctl 1.30.0",
        "Installing kubectl v1.36.1",
        "Installing kustomize v5.8.1",
    ):
        assert f"✓ {title}" in text
    assert "downloaded, sha256 verified" in text


def test_rerun_skips_installed_tools_and_force_downloads_again(mirror: Mirror) -> None:
    _publish_all(mirror)
    tools.install_tools(_context()[0], mirror=mirror.url)
    mirror.requests.clear()

    ctx, out = _context()
    tools.install_tools(ctx, mirror=mirror.url)
    assert mirror.requests == []
    assert out.getvalue().count("— already installed") == len(downloads.TOOLS)

    tools.install_tools(_context()[0], mirror=mirror.url, force=True, only=["kubectl"])
    assert [path.rsplit("/", 1)[-1] for path in mirror.requests] == ["kubectl.sha256", "kubectl"]


def test_a_killed_download_s_files_are_removed_even_when_the_tool_is_installed(
    mirror: Mirror,
) -> None:
    _publish_all(mirror)
    tools.install_tools(_context()[0], mirror=mirror.url)
    partial = _bin_dir() / ".kind-1234.download"  # as a kill -9 mid-download leaves it
    partial.write_bytes(b"half")

    plan, out = _context()
    tools.install_tools(plan, mirror=mirror.url, dry_run=True)
    assert partial.exists()  # a plan removes nothing
    assert f"would: remove 1 partial download(s) of kind in {_bin_dir()}" in out.getvalue()

    tools.install_tools(_context()[0], mirror=mirror.url)
    assert not partial.exists()


def test_a_changed_binary_or_a_new_pinned_version_is_installed_again(mirror: Mirror) -> None:
    binaries = _publish_all(mirror)
    tools.install_tools(_context()[0], mirror=mirror.url)
    (_bin_dir() / "kind").write_bytes(b"#!/bin/sh\necho tampered\n")
    mirror.requests.clear()

    tools.install_tools(_context()[0], mirror=mirror.url)
    assert (_bin_dir() / "kind").read_bytes() == binaries["kind"]
    kind = _plans(mirror)["kind"].file_name
    assert [path.rsplit("/", 1)[-1] for path in mirror.requests] == [f"{kind}.sha256sum", kind]


def test_only_installs_the_named_tools(mirror: Mirror) -> None:
    _publish_all(mirror)
    tools.install_tools(_context()[0], mirror=mirror.url, only=["kind,kubectl"])
    assert sorted(p.name for p in _bin_dir().iterdir()) == [".versions.json", "kind", "kubectl"]


def test_redirects_are_followed(mirror: Mirror) -> None:
    binaries = _publish_all(mirror)
    plans = _plans(mirror)
    tools.install_tools(_context()[0], mirror=f"{mirror.url}/moved", only=["kind"])
    assert (_bin_dir() / "kind").read_bytes() == binaries["kind"]
    assert f"/moved{plans['kind'].url.removeprefix(mirror.url)}" in mirror.requests


def test_the_mirror_comes_from_the_environment_when_not_passed(
    mirror: Mirror, monkeypatch: pytest.MonkeyPatch
) -> None:
    _publish_all(mirror)
    ctx = _context()[0]  # config.load() refuses LAB_TOOLS_MIRROR until it is in _IGNORED_ENV
    monkeypatch.setenv(downloads.MIRROR_ENV, mirror.url)
    tools.install_tools(ctx, only=["kubectl"])
    assert (ctx.config.state_path / "bin" / "kubectl").is_file()


def _assert_nothing_installed(tool: str) -> None:
    bin_dir = _bin_dir()
    leftovers = [p.name for p in bin_dir.iterdir()] if bin_dir.exists() else []
    assert tool not in leftovers
    assert [name for name in leftovers if name.startswith(f".{tool}-")] == []
    assert tools.read_versions(bin_dir).get(tool) is None


def test_a_wrong_checksum_is_refused_and_nothing_is_installed(mirror: Mirror) -> None:
    plan = _plans(mirror)["kind"]
    wrong = "0" * 64
    _publish(mirror, plan, _script("kind", "v0.32.0"), digest=wrong)
    ctx, out = _context()
    with pytest.raises(LabError) as caught:
        tools.install_tools(ctx, mirror=mirror.url, only=["kind"])
    message = str(caught.value)
    actual = hashlib.sha256(_script("kind", "v0.32.0")).hexdigest()
    assert "refusing kind" in message and plan.url in message
    assert f"expected {wrong}, got {actual}" in message
    assert "nothing was installed" in message
    assert "✗ Installing kind v0.32.0" in out.getvalue()
    _assert_nothing_installed("kind")


def test_a_wrong_kustomize_checksum_is_refused_and_nothing_is_installed(mirror: Mirror) -> None:
    plan = _plans(mirror)["kustomize"]
    archive = _tar_gz(("kustomize", _script("kustomize", "v5.8.1")))
    wrong = "0" * 64
    _publish(mirror, plan, archive, digest=wrong)  # the other artifacts' lines are right
    ctx, out = _context()
    with pytest.raises(LabError) as caught:
        tools.install_tools(ctx, mirror=mirror.url, only=["kustomize"])
    message = str(caught.value)
    assert "refusing kustomize" in message and plan.url in message
    assert f"expected {wrong}, got {hashlib.sha256(archive).hexdigest()}" in message
    assert "nothing was installed" in message
    assert "✗ Installing kustomize v5.8.1" in out.getvalue()
    _assert_nothing_installed("kustomize")


def test_kustomize_urls_keep_the_encoded_slash_of_its_release_tag(mirror: Mirror) -> None:
    _publish_all(mirror)
    tools.install_tools(_context()[0], mirror=mirror.url, only=["kustomize"])
    file_name = _plans(mirror)["kustomize"].file_name
    assert mirror.requests == [
        "/kustomize/kustomize%2Fv5.8.1/checksums.txt",
        f"/kustomize/kustomize%2Fv5.8.1/{file_name}",
    ]


def test_a_kustomize_checksums_file_without_this_platform_is_refused(mirror: Mirror) -> None:
    plan = _plans(mirror)["kustomize"]
    _publish(mirror, plan, _tar_gz(("kustomize", b"binary")))
    checksums = _served(mirror, plan.checksum_url)
    kept = [line for line in checksums.read_text().splitlines() if plan.file_name not in line]
    checksums.write_text("\n".join(kept) + "\n")
    with pytest.raises(LabError) as caught:
        tools.install_tools(_context()[0], mirror=mirror.url, only=["kustomize"])
    assert str(caught.value) == (
        f"cannot read the published checksum of kustomize at {plan.checksum_url}: "
        f"no digest for {plan.file_name} in it"
    )
    _assert_nothing_installed("kustomize")


def test_a_wrong_checksum_keeps_the_tool_installed_before(mirror: Mirror) -> None:
    binaries = _publish_all(mirror)
    tools.install_tools(_context()[0], mirror=mirror.url, only=["kubectl"])
    plan = _plans(mirror)["kubectl"]
    _publish(mirror, plan, b"#!/bin/sh\necho evil\n", digest="1" * 64)
    with pytest.raises(LabError, match="does not match the published checksum"):
        tools.install_tools(_context()[0], mirror=mirror.url, only=["kubectl"], force=True)
    assert (_bin_dir() / "kubectl").read_bytes() == binaries["kubectl"]
    assert [p.name for p in _bin_dir().iterdir() if p.name.startswith(".kubectl-")] == []


def test_an_archive_with_a_path_traversal_member_is_refused(mirror: Mirror) -> None:
    plan = _plans(mirror)["istioctl"]
    archive = _tar_gz(("istioctl", b"binary"), ("../../../escaped", b"owned"))
    _publish(mirror, plan, archive)  # its checksum matches: the archive itself is the attack
    with pytest.raises(LabError, match=r"refusing the istioctl archive .*'\.\./\.\./\.\./escaped'"):
        tools.install_tools(_context()[0], mirror=mirror.url, only=["istioctl"])
    _assert_nothing_installed("istioctl")
    assert not any(Path(os.getcwd()).parent.rglob("escaped"))


def test_a_missing_file_names_the_url_and_suggests_what_to_check(mirror: Mirror) -> None:
    plan = _plans(mirror)["kubectl"]
    with pytest.raises(LabError) as caught:
        tools.install_tools(_context()[0], mirror=mirror.url, only=["kubectl"])
    error = caught.value
    assert str(error).startswith(f"cannot download kubectl: {plan.checksum_url} answered HTTP 404")
    assert error.hint and "v1.36.1" in error.hint and downloads.MIRROR_ENV in error.hint
    _assert_nothing_installed("kubectl")


def test_a_missing_artifact_after_its_checksum_names_the_artifact_url(mirror: Mirror) -> None:
    plan = _plans(mirror)["kind"]
    _publish(mirror, plan, _script("kind", "v0.32.0"))
    _served(mirror, plan.url).unlink()
    with pytest.raises(LabError, match=f"{plan.url} answered HTTP 404"):
        tools.install_tools(_context()[0], mirror=mirror.url, only=["kind"])
    _assert_nothing_installed("kind")


def test_a_closed_port_names_the_url_and_hints_at_proxy_or_offline() -> None:
    with socket.socket() as probe:  # a port nothing listens on any more
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(LabError) as caught:
        tools.install_tools(_context()[0], mirror=url, only=["kind"])
    error = caught.value
    assert str(error).startswith(f"cannot download kind from {url}/kind/v0.32.0/kind-")
    assert error.hint and "offline" in error.hint and "proxy" in error.hint
    assert downloads.MIRROR_ENV in error.hint
    _assert_nothing_installed("kind")


def test_dry_run_plans_the_downloads_without_fetching(mirror: Mirror) -> None:
    _publish_all(mirror)
    ctx, out = _context()
    tools.install_tools(ctx, mirror=mirror.url, dry_run=True)
    assert mirror.requests == []
    planned = [line.strip() for line in out.getvalue().splitlines() if "would:" in line]
    assert [line.split(" into ")[0] for line in planned] == [
        f"would: create {_bin_dir()}",
        *(f"would: download {plan.url}" for plan in _plans(mirror).values()),
    ]
    assert not _bin_dir().exists()  # a plan writes nothing, not even the directory
    assert "Tools are in" not in out.getvalue()
