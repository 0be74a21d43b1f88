"""Making a workshop bundle (`invoke lab.bundle.create`), on a machine with the internet.

What goes in, by default: every image the lab and the pipeline run (`wanted_images`),
and, when this machine has them, the quality toolchains and the apps' `:main` images;
each Dockerfile's dependency stage is built here (`dependency_caches`). Images come from
the local engine, and are pulled when missing (never with `--from-docker`: a missing one
is an error). The tools are the pinned binaries `lab.tools` fetched; Trivy's database
comes from the scan cache volume when there is one, else the manifest notes its absence.

The `docker` images go into one `docker save`, since they share base layers; the others
one member each. The bundle is written as `<name>.part`, then renamed: a partial file
never has the bundle's name.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from lab import __version__, argocd, doctor, engine, images, proc, scan
from lab.bundle import (
    CHUNK,
    MANIFEST,
    TRANSFER_TIMEOUT,
    Item,
    Manifest,
    Progress,
    dockerfile_bases,
    engine_platform,
    file_sha256,
    pins,
    transfer_client,
)
from lab.config import Config
from lab.errors import LabError

DEMO_REDIS = (
    Path(__file__).resolve().parent.parent / "gitops" / "redis" / "base" / "deployment.yaml"
)


# -- what goes in (pure) -----------------------------------------------------------------


def wanted_images(config: Config, install_manifest: str) -> list[tuple[str, str]]:
    """(reference, role) of every image the lab and the pipeline run (pure but for files)."""
    docker_side = [config.kind_node_image, config.registry_image, config.trivy_image]
    docker_side += dockerfile_bases(config)
    mirrored = [f"{config.istio_hub}/pilot:{config.istio_version}"]
    if config.istio_data_plane == "sidecars":
        mirrored.append(f"{config.istio_hub}/proxyv2:{config.istio_version}")
    mirrored += sorted(
        {
            str(container["image"])
            for obj in argocd.install_objects(install_manifest)
            for container in _containers(obj)
        }
    )
    mirrored += [config.gitea_image, *_images_in(DEMO_REDIS)]
    wanted = [(reference, "docker") for reference in docker_side]
    wanted += [(reference, "mirror") for reference in dict.fromkeys(mirrored)]
    return wanted


def seed_images(config: Config) -> list[tuple[str, str]]:
    """The apps' images as lab.up builds them (`:main`): a participant need not build."""
    return [(f"{images.image_repository(s, config.registry_host)}:main", "registry")
            for s in images.SERVICES]  # fmt: skip


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return list(spec.get("containers") or []) + list(spec.get("initContainers") or [])


def _images_in(path: Path) -> list[str]:
    found = []
    for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        found += [str(c["image"]) for c in _containers(document or {}) if "image" in c]
    return found


# -- create ------------------------------------------------------------------------------


def create(
    config: Config,
    output: Path,
    *,
    from_docker: bool,
    progress: Progress,
    install_manifest: str,
    wanted: Sequence[tuple[str, str]] | None = None,
    tool_specs: Sequence[doctor.ToolSpec] = doctor.TOOLS,
) -> Manifest:
    """Write the bundle to `output` (atomically: a partial file never has that name).

    `wanted` (reference, role) defaults to everything the lab runs (`wanted_images`),
    plus the toolchains and `:main` app images this machine has.
    """
    client = transfer_client()
    toolchains: list[tuple[str, str]] = []
    if wanted is None:
        wanted = wanted_images(config, install_manifest)
        toolchains = _toolchain_images(client, config)
        toolchains += [(r, role) for r, role in seed_images(config) if engine.has_image(client, r)]
        toolchains += dependency_caches(client, config)
    staging = Path(tempfile.mkdtemp(prefix=".bundle-", dir=output.parent))
    cleanup: list[Path] = []
    try:
        everything = [*wanted, *toolchains]
        found = {
            ref: _local_or_pulled(client, ref, from_docker=from_docker) for ref, _ in everything
        }
        items = _save_images(everything, found, staging, progress)
        for spec in tool_specs:
            items.append(_tool_item(spec, config, staging))
        install = staging / "files" / "argocd-install.yaml"
        install.parent.mkdir(parents=True, exist_ok=True)
        install.write_text(install_manifest, encoding="utf-8")
        items.append(Item("file", "argocd-install.yaml", "files/argocd-install.yaml",
                          file_sha256(install), install.stat().st_size))  # fmt: skip
        notes = []
        db = _save_trivy_db(client, config, staging)
        if db is None:
            notes.append(
                "no Trivy database: the machine that made this bundle had none (it downloads "
                "on the first online scan); offline scans report UNVERIFIED"
            )
        else:
            items.append(db)
        manifest = Manifest(
            __version__,
            datetime.now(UTC).replace(microsecond=0).isoformat(),
            {**pins(config), "images_platform": engine_platform(client)},
            tuple(items),
            tuple(notes),
        )
        partial = output.with_name(output.name + ".part")
        cleanup.append(partial)
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
            _add_bytes(archive, MANIFEST, manifest.to_json().encode())
            for member in manifest.members():
                archive.add(staging / member, arcname=member, recursive=False)
        os.replace(partial, output)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        for leftover in cleanup:
            leftover.unlink(missing_ok=True)


def _save_images(
    wanted: Sequence[tuple[str, str]], found: dict[str, Any], staging: Path, progress: Progress
) -> list[Item]:
    """The images saved into `staging`: the `docker` ones in one `docker save` (they share
    base layers, which a save per image would store again each time), the others one
    member each (each is pushed on its own when loaded)."""
    (staging / "images").mkdir(parents=True, exist_ok=True)
    shared = [ref for ref, role in wanted if role == "docker"]
    items: list[Item] = []
    if shared:
        member = "images/docker.tar"
        names = [str(_saveable_name(found[ref], ref) or found[ref].id) for ref in shared]
        proc.run(("docker", "save", "-o", str(staging / member), *dict.fromkeys(names)),
                 timeout=TRANSFER_TIMEOUT)  # fmt: skip
        digest, size = file_sha256(staging / member), (staging / member).stat().st_size
        items += [Item("image", ref, member, digest, size, "docker", str(found[ref].id))
                  for ref in shared]  # fmt: skip
        progress(f"saved {len(shared)} images in one", len(shared), len(wanted))
    for number, (reference, role) in enumerate(wanted, start=1):
        if role == "docker":
            continue
        image = found[reference]
        member = f"images/{number:02d}.tar"
        path = staging / member
        with open(path, "wb") as out, engine.doing(f"save {reference}"):
            for chunk in image.save(chunk_size=CHUNK, named=_saveable_name(image, reference)):
                out.write(chunk)
        items.append(Item("image", reference, member, file_sha256(path), path.stat().st_size,
                          role, str(image.id)))  # fmt: skip
        progress(f"saved {reference}", number, len(wanted))
    return items


def dependency_caches(client: Any, config: Config) -> list[tuple[str, str]]:
    """Each Dockerfile's dependency stage, built here (from BuildKit's cache when it
    has them) as `lab-build-cache/<service>`: offline builds start from it."""
    plans = images.plan_builds(
        sha="0" * 40,
        branch="bundle",
        version="bundle",
        created=datetime(2026, 1, 1, tzinfo=UTC),
        base_images=config.base_images,
        registry=config.registry_host,
    )
    stages = images.dependency_plans(plans, config.build_cache_repository)
    images.build_images(client, stages)
    return [(plan.tags[0], "docker") for plan in stages]


def _toolchain_images(client: Any, config: Config) -> list[tuple[str, str]]:
    """The quality stage's derived toolchains present here (they need apt to build)."""
    return sorted(
        (tag, "docker")
        for image in client.images.list()
        for tag in image.tags
        if tag.startswith(f"{config.toolchain_repository}/")
    )


def _local_or_pulled(client: Any, reference: str, *, from_docker: bool) -> Any:
    image = engine.find_image(client, reference)
    if image is not None:
        return image
    if from_docker:
        raise LabError(
            f"{reference} is not in the local Docker engine (--from-docker)",
            hint="pull it, run `invoke lab.up` once on this machine, or leave out "
            "--from-docker to pull what is missing",
        )
    return engine.pull(client, reference)


def _saveable_name(image: Any, reference: str) -> str | bool:
    """The tag docker save names the image by: the reference as Docker spells it
    (`istio/pilot:1.30.0` for `docker.io/istio/pilot:1.30.0`), or for a digest
    reference, which is no tag, the image's first tag."""
    short = reference.removeprefix("docker.io/").removeprefix("library/")
    for tag in image.tags:
        if tag in (reference, short):
            return str(tag)
    return next(iter(image.tags), False)


def _tool_item(spec: doctor.ToolSpec, config: Config, staging: Path) -> Item:
    check = doctor.check_tool(spec, config)
    found = proc.which(spec.name)
    if check.status is not doctor.Status.OK or found is None:
        raise LabError(
            f"cannot bundle {spec.name}: {check.detail}",
            hint=f"run `invoke lab.tools` to fetch {spec.name} {spec.pinned(config)}",
        )
    member = f"tools/{spec.name}"
    target = staging / member
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(found, target)
    return Item("tool", spec.name, member, file_sha256(target), target.stat().st_size)


def _save_trivy_db(client: Any, config: Config, staging: Path) -> Item | None:
    """Trivy's database from the scan cache volume, as a tar; None when there is none."""
    if engine.find_volume(client, scan.CACHE_VOLUME) is None:
        return None
    target = staging / "trivy" / "db.tar"
    target.parent.mkdir(parents=True, exist_ok=True)
    with engine.doing("read Trivy's database"):
        return _copy_trivy_db(client, config, target)


def _copy_trivy_db(client: Any, config: Config, target: Path) -> Item | None:
    container = client.containers.create(
        config.trivy_image,
        entrypoint=["sh", "-c", "test -s /cache/db/trivy.db"],
        volumes={scan.CACHE_VOLUME: {"bind": "/cache", "mode": "ro"}},
        labels={engine.LAB_LABEL: config.cluster_name},
    )
    try:
        container.start()
        if container.wait(timeout=600).get("StatusCode") != 0:
            return None
        stream, _ = container.get_archive("/cache/db")  # a tar of the directory
        with open(target, "wb") as out:
            for chunk in stream:
                out.write(chunk)
    finally:
        container.remove(force=True)
    return Item("trivy-db", "trivy-db", "trivy/db.tar", file_sha256(target), target.stat().st_size)


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))
