"""The workshop bundle's file format, read back from real tar files (issue #18)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from lab import bundle, bundle_loader, config
from lab.bundle import Item, Manifest
from lab.errors import LabError

CFG = config.load({}, {})


def write_bundle(path: Path, members: dict[str, bytes], *, pins: dict[str, str] | None = None,
                 manifest_items: list[Item] | None = None) -> Manifest:  # fmt: skip
    """A bundle as lab.bundle.create lays it out: the manifest first, then the members."""
    kinds = {"tools": "tool", "files": "file"}
    items = manifest_items or [
        Item(kinds[name.split("/")[0]], name.split("/")[-1], name,
             hashlib.sha256(data).hexdigest(), len(data))
        for name, data in members.items()
    ]  # fmt: skip
    manifest = Manifest("0.1.0", "2026-12-01T00:00:00+00:00", pins or bundle.pins(CFG),
                        tuple(items), ("no Trivy database",))  # fmt: skip
    with tarfile.open(path, "w") as archive:
        for name, data in [(bundle.MANIFEST, manifest.to_json().encode()), *members.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return manifest


MEMBERS = {"tools/kind": b"#!/bin/sh\necho kind\n" * 500, "files/argocd-install.yaml": b"a: 1\n"}


def test_the_manifest_reads_back_what_was_written(tmp_path: Path) -> None:
    written = write_bundle(tmp_path / "b.tar", MEMBERS)

    read = bundle_loader.read_manifest(tmp_path / "b.tar")

    assert read == written
    assert read.size == sum(len(data) for data in MEMBERS.values())
    assert bundle.summary_lines(read)[0].endswith("1 file(s), 1 tool(s)")
    bundle_loader.verify(tmp_path / "b.tar", read)  # every member matches: no error


def test_the_pins_cover_every_downloaded_version_and_the_bases() -> None:
    pins = bundle.pins(CFG)
    assert pins["kind_node_image"] == CFG.kind_node_image
    assert pins["argocd_version"] == CFG.argocd_version and pins["trivy_image"] == CFG.trivy_image
    assert "nginx:1.30-trixie" in pins["bases"].split()  # read from apps/*/Dockerfile
    assert "python:3.13-slim-trixie" in pins["bases"].split()


def test_an_altered_member_is_refused_naming_it(tmp_path: Path) -> None:
    manifest = write_bundle(tmp_path / "b.tar", MEMBERS)
    altered = {**MEMBERS, "tools/kind": MEMBERS["tools/kind"].replace(b"kind", b"evil")}
    write_bundle(tmp_path / "b.tar", altered, manifest_items=list(manifest.items))

    with pytest.raises(LabError) as caught:
        bundle_loader.verify(tmp_path / "b.tar", bundle_loader.read_manifest(tmp_path / "b.tar"))

    assert "tools/kind (kind) does not match the manifest" in caught.value.message
    assert "nothing of the bundle was loaded" in caught.value.message
    assert "copy it again" in (caught.value.hint or "")


@pytest.mark.parametrize("member", ["tools/kind", "files/argocd-install.yaml"])
def test_a_truncated_bundle_is_refused_whole(tmp_path: Path, member: str) -> None:
    path = tmp_path / "b.tar"
    manifest = write_bundle(path, MEMBERS)
    with tarfile.open(path) as archive:  # cut the file in the middle of `member`'s data
        info = archive.getmember(member)
        cut = info.offset_data + info.size // 2
    path.write_bytes(path.read_bytes()[:cut])

    with pytest.raises(LabError) as caught:
        bundle_loader.verify(path, manifest)

    assert "truncated or damaged" in caught.value.message or "missing" in caught.value.message
    assert "nothing of it was loaded" in caught.value.message


def test_a_bundle_for_other_pins_is_refused_naming_each_difference(tmp_path: Path) -> None:
    other = {**bundle.pins(CFG), "argocd_version": "v3.5.0", "istio_version": "1.29.1"}
    write_bundle(tmp_path / "b.tar", MEMBERS, pins=other)

    # Refused before anything else is asked (Docker included).
    with pytest.raises(LabError) as caught:
        bundle_loader.load(CFG, tmp_path / "b.tar", progress=lambda *_: None)

    assert f"argocd_version: bundle v3.5.0, this lab {CFG.argocd_version}" in caught.value.message
    assert f"istio_version: bundle 1.29.1, this lab {CFG.istio_version}" in caught.value.message
    assert "kind_version" not in caught.value.message  # only what differs
    assert "lab.bundle.create" in (caught.value.hint or "")


def test_what_is_not_a_bundle_says_so(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(LabError, match="truncated or damaged"):
        bundle_loader.read_manifest(tmp_path / "notes.txt")
    with tarfile.open(tmp_path / "other.tar", "w") as archive:
        archive.add(tmp_path / "notes.txt", arcname="notes.txt")
    with pytest.raises(LabError, match=r"does not start with manifest\.json"):
        bundle_loader.read_manifest(tmp_path / "other.tar")
    with pytest.raises(LabError, match="does not exist"):
        bundle_loader.read_manifest(tmp_path / "absent.tar")


def test_a_manifest_of_another_format_is_refused() -> None:
    text = Manifest("9.9", "now", {}, ()).to_json().replace('"format": 1', '"format": 2')
    with pytest.raises(LabError, match="format 2; this lab reads format 1"):
        Manifest.from_json(text, "b.tar")


@pytest.mark.parametrize(
    "item",
    [
        Item("tool", "kind", "../../.bashrc", "0" * 64, 1),
        Item("tool", "../../kind", "tools/kind", "0" * 64, 1),
        Item("tool", "sh", "tools/sh", "0" * 64, 1),
        Item("file", "authorized_keys", "files/authorized_keys", "0" * 64, 1),
        Item("image", "x:1", "images/01.tar", "0" * 64, 1, "root"),
    ],
    ids=["member outside", "tool name outside", "unknown tool", "unknown file", "unknown role"],
)
def test_an_item_whose_names_would_leave_their_place_is_refused(tmp_path: Path, item: Item) -> None:
    text = Manifest("0.1.0", "now", bundle.pins(CFG), (item,)).to_json()
    with pytest.raises(LabError, match="lists an item this lab will not load"):
        Manifest.from_json(text, "b.tar")


def test_the_tools_platform_is_a_pin() -> None:
    assert bundle.pins(CFG)["tools_platform"] == bundle.host_platform()
    assert bundle.host_platform().count("/") == 1 and "x86_64" not in bundle.host_platform()
