"""Loading a workshop bundle (`invoke lab.bundle.load FILE`), and what `lab.up --offline`
reads back from it.

A bundle made for other pins, or for another Docker engine's platform, is refused before
anything is read out. Loading verifies every member against the manifest before anything
is used: a truncated or altered file is refused whole, and nothing of it is loaded. What is
already present (an image ID in Docker, a mirror in the registry, a tool with the same
SHA-256) is not loaded again. `.lab/bundle.json` records what was loaded; `lab.up
--offline` reads it (the node image by ID, since `docker load` drops registry digests),
and `missing_offline` says what it would still have to download.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from lab import distribution, doctor, engine, proc, registry, scan, tools
from lab.bundle import (
    CHUNK,
    MANIFEST,
    RECORD,
    Item,
    Manifest,
    Progress,
    describe_size,
    engine_platform,
    file_sha256,
    mismatches,
    pins,
    transfer_client,
)
from lab.changes import MAKE
from lab.config import Config
from lab.errors import LabError


@dataclass
class Loaded:
    manifest: Manifest
    loaded: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    seconds: float = 0.0


def read_manifest(path: Path) -> Manifest:
    """The manifest of the bundle at `path`, or a clear error for what is not one."""
    if not path.is_file():
        raise LabError(f"{path} does not exist", hint="give the bundle's path")
    try:
        with tarfile.open(path, "r:") as archive:
            first = archive.next()
            if first is None or first.name != MANIFEST:
                raise LabError(
                    f"{path} does not start with {MANIFEST}: not a lab bundle",
                    hint="make one with `invoke lab.bundle.create`",
                )
            handle = archive.extractfile(first)
            assert handle is not None
            return Manifest.from_json(handle.read().decode(), str(path))
    except (tarfile.TarError, OSError, UnicodeDecodeError) as error:
        raise corrupt(path, error) from error


def corrupt(path: Path, error: BaseException) -> LabError:
    return LabError(
        f"{path} is truncated or damaged ({error}); nothing of it was loaded",
        hint="copy the bundle again and compare its size with the trainer's "
        "(`invoke lab.bundle.create` prints it)",
    )


def load(config: Config, path: Path, *, progress: Progress) -> Loaded:
    """Verify the whole bundle, then put each item where the lab looks for it."""
    started = time.monotonic()
    manifest = read_manifest(path)
    made_for = {k: v for k, v in manifest.pins.items() if k != "images_platform"}
    _refuse_other_pins(path, manifest, mismatches(made_for, pins(config)))
    client = transfer_client()
    ours = engine_platform(client)
    if manifest.pins.get("images_platform", ours) != ours:
        _refuse_other_pins(
            path,
            manifest,
            [
                f"images_platform: bundle {manifest.pins['images_platform']}, "
                f"this Docker engine {ours}"
            ],
        )
    result = Loaded(manifest)
    needed = [item for item in manifest.items if not _present(client, config, item)]
    result.present = [i.name for i in manifest.items if i not in needed]
    # A member is read out only when an item needs its bytes: an image Docker already
    # has (only its registry copy is missing) is pushed, not loaded again.
    read_out = {
        i.member: i
        for i in needed
        if not (i.kind == "image" and engine.has_image(client, i.image_id))
    }
    staging_dir = config.state_path / "bundle-staging"  # not beside a bundle on a USB stick
    with _verified(path, manifest, read_out, progress, staging_dir) as staged:
        loaded: set[str] = set()  # the shared member of the `docker` images loads once
        registry_running = False
        for item in needed:  # the `docker` images first: the registry's image is one
            if item.role in ("mirror", "registry") and not registry_running:
                registry.ensure_registry(config, MAKE)
                registry_running = True
            source = staged / item.member if item.member in read_out else None
            if item.kind == "image" and item.member in loaded:
                source = None
            _apply(client, config, item, source)
            if item.kind == "image" and source is not None:
                loaded.add(item.member)
            result.loaded.append(item.name)
    _record(config, path, manifest)
    result.seconds = time.monotonic() - started
    return result


def _refuse_other_pins(path: Path, manifest: Manifest, differences: list[str]) -> None:
    if differences:
        raise LabError(
            f"{path} was made for other pins (lab {manifest.lab_version}): "
            + "; ".join(differences),
            hint="use a bundle made by this version of lab for this kind of machine, or "
            "make one: `invoke lab.bundle.create` on a machine with the internet",
        )


def verify(path: Path, manifest: Manifest, progress: Progress | None = None) -> None:
    """Every member hashed against the manifest; a LabError for the first that is not."""
    nothing = progress or (lambda what, done, total: None)
    with _verified(path, manifest, {}, nothing, Path(tempfile.gettempdir())):
        pass


@contextmanager
def _verified(
    path: Path,
    manifest: Manifest,
    needed: dict[str, Item],
    progress: Progress,
    staging_dir: Path,
) -> Iterator[Path]:
    """Every item hashed against the manifest; the needed ones staged. All or nothing."""
    try:
        staging_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".bundle-load-", dir=staging_dir))
    except OSError as error:
        raise LabError(
            f"cannot stage the bundle under {staging_dir}: {error.strerror}",
            hint="check that directory's permissions and free space",
        ) from error
    try:
        _check_members(path, manifest, needed, progress, staging)
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_members(
    path: Path, manifest: Manifest, needed: dict[str, Item], progress: Progress, staging: Path
) -> None:
    expected = {item.member: item for item in manifest.items}
    seen: set[str] = set()
    done = 0
    try:
        with tarfile.open(path, "r:") as archive:
            for member in archive:
                item = expected.get(member.name)
                if item is None:
                    continue  # the manifest, or a member this lab does not know
                handle = archive.extractfile(member)
                if handle is None:
                    raise corrupt(path, ValueError(f"{member.name} is not a file"))
                target = staging / member.name if member.name in needed else None
                shown = item.name if item.member != "images/docker.tar" else "the Docker images"
                report = functools.partial(
                    _seen, progress, f"checking {shown}", done, manifest.size
                )
                digest, size = _copy_hashing(handle, target, report)
                if size != item.size or digest != item.sha256:
                    raise LabError(
                        f"{path}: {member.name} ({item.name}) does not match the manifest "
                        f"(SHA-256 {digest[:12]}…, expected {item.sha256[:12]}…); nothing "
                        "of the bundle was loaded",
                        hint="the file was altered or damaged in transit: copy it again",
                    )
                done += size
                seen.add(member.name)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise LabError(
                f"no space left to stage the bundle under {staging.parent}",
                hint=f"free about {describe_size(manifest.size)} there, then load again",
            ) from error
        raise corrupt(path, error) from error
    except tarfile.TarError as error:
        raise corrupt(path, error) from error
    missing = sorted(set(expected) - seen)
    if missing:
        raise corrupt(path, ValueError(f"{len(missing)} item(s) missing: {missing[0]} …"))


def _seen(progress: Progress, what: str, before: int, total: int, now: int) -> None:
    progress(what, before + now, total)


def _copy_hashing(
    source: IO[bytes], target: Path | None, seen: Callable[[int], None]
) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
    out = open(target, "wb") if target is not None else None  # noqa: SIM115
    try:
        for chunk in iter(lambda: source.read(CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
            if out is not None:
                out.write(chunk)
            seen(size)
    finally:
        if out is not None:
            out.close()
    return digest.hexdigest(), size


def _present(client: Any, config: Config, item: Item) -> bool:
    if item.kind == "image":
        if not engine.has_image(client, item.image_id):
            return False
        return item.role == "docker" or _in_registry(config, item)
    if item.kind == "tool":
        target = config.state_path / "bin" / item.name
        return target.is_file() and file_sha256(target) == item.sha256
    if item.kind == "file":
        target = _install_manifest_path(config)
        return target.is_file() and file_sha256(target) == item.sha256
    return False  # the Trivy database: always refreshed from the bundle


def _apply(client: Any, config: Config, item: Item, staged: Path | None) -> None:
    """Put one verified item in place; `staged` is its bytes (None: Docker has the image)."""
    if item.kind == "image":
        if staged is not None:
            with open(staged, "rb") as handle, engine.doing(f"load {item.name}"):
                client.images.load(handle)
        if not engine.has_image(client, item.image_id):
            raise LabError(f"loading {item.name} gave no image {item.image_id[:19]}")
        if "@" not in item.name:  # a digest reference cannot be a tag; recorded by ID
            tag_as(client, item.image_id, item.name)
        if item.role == "mirror":
            distribution.mirror_images(client, config, [item.name])
        elif item.role == "registry":
            repository, tag = engine.split_tag(item.name)
            distribution.push_one(client, item.name, repository, str(tag))
        return
    assert staged is not None
    if item.kind == "tool":
        bin_dir = config.state_path / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(staged, bin_dir / item.name)
        (bin_dir / item.name).chmod(0o755)
        records = tools.read_versions(bin_dir)
        version = next(s.pinned(config) for s in doctor.TOOLS if s.name == item.name)
        records[item.name] = tools.Installed(version, item.sha256, "bundle", item.sha256)
        tools.write_versions(bin_dir, records)
    elif item.kind == "file":
        target = _install_manifest_path(config)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(staged, target)
    elif item.kind == "trivy-db":
        _load_trivy_db(client, config, staged)


def tag_as(client: Any, image_id: str, reference: str) -> None:
    repository, tag = engine.split_tag(reference)
    client.api.tag(image_id, repository, tag=tag)


def _load_trivy_db(client: Any, config: Config, staged: Path) -> None:
    scan.ensure_cache_volume(client, config)  # labelled: lab.down removes it
    with engine.doing("write Trivy's database"):
        _put_trivy_db(client, config, staged)


def _put_trivy_db(client: Any, config: Config, staged: Path) -> None:
    container = client.containers.create(
        config.trivy_image,
        entrypoint=["sh", "-c", "true"],
        volumes={scan.CACHE_VOLUME: {"bind": "/cache", "mode": "rw"}},
        labels={engine.LAB_LABEL: config.cluster_name},
    )
    try:
        with open(staged, "rb") as handle:
            container.put_archive("/cache", handle)
    finally:
        container.remove(force=True)


def _record(config: Config, path: Path, manifest: Manifest) -> None:
    record = {
        "bundle": str(path.resolve()),
        "created": manifest.created,
        "loaded": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "images": {i.name: i.image_id for i in manifest.items if i.kind == "image"},
        "trivy_db": any(i.kind == "trivy-db" for i in manifest.items),
    }
    config.state_path.mkdir(parents=True, exist_ok=True)
    (config.state_path / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def loaded_record(config: Config) -> dict[str, Any]:
    try:
        return dict(json.loads((config.state_path / RECORD).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


# -- what `lab.up --offline` needs -------------------------------------------------------


def node_image(config: Config) -> str:
    """The node image for kind: the pinned reference, or (loaded from a bundle, which
    drops registry digests) the image ID the bundle recorded for it."""
    image_id = loaded_record(config).get("images", {}).get(config.kind_node_image)
    if not image_id:
        return config.kind_node_image
    client = engine.client()
    if engine.has_image(client, config.kind_node_image) or not engine.has_image(client, image_id):
        return config.kind_node_image
    return str(image_id)


def missing_offline(config: Config) -> list[str]:
    """What `lab.up --offline` would have to download: empty when a bundle covers it."""
    record = loaded_record(config)
    if not record:
        return ["no bundle is loaded here (`invoke lab.bundle.load FILE`)"]
    client = engine.client()
    missing = []
    for reference, image_id in record.get("images", {}).items():
        if not engine.has_image(client, image_id):
            missing.append(f"image {reference}")
    if not registry.registry_status(client, config).running:
        missing.append(f"the lab registry {config.registry_name} with the mirrored images")
    for spec in doctor.TOOLS:
        if proc.which(spec.name) is None:
            missing.append(f"tool {spec.name}")
    if not _install_manifest_path(config).is_file():
        missing.append(f"Argo CD's install.yaml ({_install_manifest_path(config)})")
    return missing


def _install_manifest_path(config: Config) -> Path:
    return config.state_path / "cache" / f"argocd-{config.argocd_version}-install.yaml"


def _in_registry(config: Config, item: Item) -> bool:
    """Whether the lab registry holds the item: under its mirror path, or its own name."""
    target = registry.mirror_reference(config, item.name) if item.role == "mirror" else item.name
    repository, tag = target.removeprefix(f"{config.registry_host}/").rsplit(":", 1)
    host = f"{config.bind_address}:{config.registry_port}"
    return distribution.registry_has(host, repository, tag)
