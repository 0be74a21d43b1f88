"""Workshop bundles: everything `lab.up` and `pipeline.run` download, in one file.

A bundle is an uncompressed tar. Its first member is `manifest.json`: the pins it was
made for and, per item, its member, size and SHA-256. Then, one member per item:

    images/<n>.tar   `docker save` of one image (its ID survives save and load)
    tools/<name>     kind, kubectl, istioctl, kustomize at the pinned versions
    files/<name>     Argo CD's install.yaml
    trivy/db.tar     Trivy's database directory, when the maker's machine had one

Images have a role. `docker` ones are loaded into the local engine: the kind node, the
registry, Trivy, the Dockerfiles' bases, the quality toolchains, and each Dockerfile's
dependency stage (`images.dependency_plans`), from which offline builds start. `mirror` ones are
pushed into the lab registry under their mirror paths (`cluster.mirror_reference`),
where the nodes' containerd pulls them: Istio, Argo CD and its redis, Gitea, the
demo's redis. `registry` ones, the apps' `:main` images when the maker had them, are
pushed under their own names, so `lab.up` has nothing to build.

Loading verifies every member against the manifest before anything is used: a
truncated or altered file is refused whole, and nothing of it is loaded. What is
already present (an image ID in Docker, a mirror in the registry, a tool with the same
SHA-256) is not loaded again. `.lab/bundle.json` records what was loaded; `lab.up
--offline` reads it (the node image by ID, since `docker load` drops registry digests).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import io
import json
import os
import platform
import re
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import docker.errors
import yaml

from lab import __version__, argocd, cluster, distribution, doctor, engine, images, proc, tools
from lab.config import Config
from lab.errors import LabError

FORMAT = 1
MANIFEST = "manifest.json"
RECORD = "bundle.json"  # under the state directory: what the last load put where
CHUNK = 1 << 20
# docker save and load of a GB image answer only when done: the engine client's
# connect-sized read timeout is far too short for them.
TRANSFER_TIMEOUT = 3600


def _client() -> Any:
    client = engine.client()
    client.api.timeout = TRANSFER_TIMEOUT
    return client


@contextmanager
def _docker(what: str) -> Iterator[None]:
    """Docker's errors while saving or loading, as one clear error."""
    try:
        yield
    except engine.ERRORS as error:
        raise LabError(
            f"Docker could not {what}: {str(error).splitlines()[0] if str(error) else error!r}",
            hint="is Docker Engine up and its disk not full? (`docker system df`)",
        ) from error


DEMO_REDIS = (
    Path(__file__).resolve().parent.parent / "gitops" / "redis" / "base" / "deployment.yaml"
)

Progress = Callable[[str, int, int], None]  # (what, bytes done, bytes in all)


@dataclass(frozen=True)
class Item:
    kind: str  # "image", "tool", "file" or "trivy-db"
    name: str  # an image reference, a tool's or file's name
    member: str  # its path in the bundle
    sha256: str
    size: int
    role: str = ""  # images: "docker" or "mirror"
    image_id: str = ""  # images: Docker's ID (the config's digest)


@dataclass(frozen=True)
class Manifest:
    lab_version: str
    created: str
    pins: dict[str, str]
    items: tuple[Item, ...]
    notes: tuple[str, ...] = ()  # what the maker could not include, and why
    format: int = FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @property
    def size(self) -> int:
        return sum(self.members().values())

    def members(self) -> dict[str, int]:
        """Each member once, with its size (the `docker` images share one)."""
        return {item.member: item.size for item in self.items}

    @staticmethod
    def from_json(text: str, source: str) -> Manifest:
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise LabError(
                    f"{source} is a bundle of format {data.get('format')!r}; this lab reads "
                    f"format {FORMAT}",
                    hint="make the bundle with this version of lab (`invoke lab.bundle.create`)",
                )
            manifest = Manifest(
                lab_version=str(data["lab_version"]),
                created=str(data["created"]),
                pins={str(k): str(v) for k, v in data["pins"].items()},
                items=tuple(Item(**item) for item in data["items"]),
                notes=tuple(str(n) for n in data.get("notes", ())),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise LabError(
                f"{source} has no readable bundle manifest: {error}",
                hint="is it a bundle made by `invoke lab.bundle.create`?",
            ) from error
        for item in manifest.items:  # names become paths: nothing may point elsewhere
            if not _safe(item):
                raise LabError(
                    f"{source} lists an item this lab will not load: {item.kind} "
                    f"{item.name!r} at {item.member!r}",
                    hint="use a bundle made by `invoke lab.bundle.create`",
                )
        return manifest


_MEMBER = re.compile(r"^(images|tools|files|trivy)/[A-Za-z0-9._-]+$")


def _safe(item: Item) -> bool:
    """Whether an item's member and name stay where lab puts them (pure)."""
    if not _MEMBER.match(item.member) or ".." in item.member:
        return False
    if item.kind == "tool":
        return item.name in {spec.name for spec in doctor.TOOLS}
    if item.kind == "file":
        return item.name == "argocd-install.yaml"
    if item.kind == "image":
        return item.role in ("docker", "mirror", "registry")
    return item.kind == "trivy-db"


# -- what goes in (pure) ------------------------------------------------------------------


def dockerfile_bases(config: Config) -> tuple[str, ...]:
    """The images the Dockerfiles build FROM, which the quality toolchains run in too."""
    return tuple(sorted(set(config.base_images.values())))


def pins(config: Config) -> dict[str, str]:
    """The settings a bundle's content depends on; a bundle fits a lab with the same."""
    return {
        "kind_version": config.kind_version,
        "kind_node_image": config.kind_node_image,
        "kubectl_version": config.kubectl_version,
        "kustomize_version": config.kustomize_version,
        "istio_version": config.istio_version,
        "istio_hub": config.istio_hub,
        "argocd_version": config.argocd_version,
        "gitea_image": config.gitea_image,
        "registry_image": config.registry_image,
        "trivy_image": config.trivy_image,
        "bases": " ".join(dockerfile_bases(config)),
        # The app images' names hold the registry's port, and the tools are binaries.
        "registry_port": str(config.registry_port),
        "tools_platform": host_platform(),
    }


def host_platform() -> str:
    """This machine's OS and CPU as Go names them (`linux/amd64`): the tools' platform."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    return f"{sys.platform.replace('linux2', 'linux')}/{arch.get(machine, machine)}"


def engine_platform(client: Any) -> str:
    """The Docker engine's OS and CPU (`linux/arm64` on Docker Desktop for Apple
    silicon): the images' platform."""
    with _docker("say its platform"):
        version = client.version()
    return f"{version.get('Os', '?')}/{version.get('Arch', '?')}"


def mismatches(made_for: dict[str, str], ours: dict[str, str]) -> list[str]:
    """`key: bundle X, this lab Y` for each pin that differs (pure)."""
    return [
        f"{key}: bundle {made_for.get(key, '(none)')}, this lab {ours.get(key, '(none)')}"
        for key in sorted(set(made_for) | set(ours))
        if made_for.get(key) != ours.get(key)
    ]


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
    client = _client()
    toolchains: list[tuple[str, str]] = []
    if wanted is None:
        wanted = wanted_images(config, install_manifest)
        toolchains = _toolchain_images(client, config)
        toolchains += [(r, role) for r, role in seed_images(config) if _has_image(client, r)]
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
                          _sha256(install), install.stat().st_size))  # fmt: skip
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
        digest, size = _sha256(staging / member), (staging / member).stat().st_size
        items += [Item("image", ref, member, digest, size, "docker", str(found[ref].id))
                  for ref in shared]  # fmt: skip
        progress(f"saved {len(shared)} images in one", len(shared), len(wanted))
    for number, (reference, role) in enumerate(wanted, start=1):
        if role == "docker":
            continue
        image = found[reference]
        member = f"images/{number:02d}.tar"
        path = staging / member
        with open(path, "wb") as out, _docker(f"save {reference}"):
            for chunk in image.save(chunk_size=CHUNK, named=_saveable_name(image, reference)):
                out.write(chunk)
        items.append(Item("image", reference, member, _sha256(path), path.stat().st_size,
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
    try:
        return client.images.get(reference)
    except docker.errors.ImageNotFound:
        if from_docker:
            raise LabError(
                f"{reference} is not in the local Docker engine (--from-docker)",
                hint="pull it, run `invoke lab.up` once on this machine, or leave out "
                "--from-docker to pull what is missing",
            ) from None
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
    return Item("tool", spec.name, member, _sha256(target), target.stat().st_size)


def _save_trivy_db(client: Any, config: Config, staging: Path) -> Item | None:
    """Trivy's database from the scan cache volume, as a tar; None when there is none."""
    try:
        client.volumes.get(scan_volume())
    except docker.errors.NotFound:
        return None
    target = staging / "trivy" / "db.tar"
    target.parent.mkdir(parents=True, exist_ok=True)
    with _docker("read Trivy's database"):
        return _copy_trivy_db(client, config, target)


def _copy_trivy_db(client: Any, config: Config, target: Path) -> Item | None:
    container = client.containers.create(
        config.trivy_image,
        entrypoint=["sh", "-c", "test -s /cache/db/trivy.db"],
        volumes={scan_volume(): {"bind": "/cache", "mode": "ro"}},
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
    return Item("trivy-db", "trivy-db", "trivy/db.tar", _sha256(target), target.stat().st_size)


def scan_volume() -> str:
    from lab import scan

    return scan.CACHE_VOLUME


# -- load --------------------------------------------------------------------------------


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
    client = _client()
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
        i.member: i for i in needed if not (i.kind == "image" and _has_image(client, i.image_id))
    }
    staging_dir = config.state_path / "bundle-staging"  # not beside a bundle on a USB stick
    with _verified(path, manifest, read_out, progress, staging_dir) as staged:
        loaded: set[str] = set()  # the shared member of the `docker` images loads once
        registry = False
        for item in needed:  # the `docker` images first: the registry's image is one
            if item.role in ("mirror", "registry") and not registry:
                cluster.ensure_registry(config)
                registry = True
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


def _present(client: Any, config: Config, item: Item) -> bool:
    if item.kind == "image":
        if not _has_image(client, item.image_id):
            return False
        return item.role == "docker" or _in_registry(config, item)
    if item.kind == "tool":
        target = config.state_path / "bin" / item.name
        return target.is_file() and _sha256(target) == item.sha256
    if item.kind == "file":
        target = _install_manifest_path(config)
        return target.is_file() and _sha256(target) == item.sha256
    return False  # the Trivy database: always refreshed from the bundle


def _apply(client: Any, config: Config, item: Item, staged: Path | None) -> None:
    """Put one verified item in place; `staged` is its bytes (None: Docker has the image)."""
    if item.kind == "image":
        if staged is not None:
            with open(staged, "rb") as handle, _docker(f"load {item.name}"):
                client.images.load(handle)
        if not _has_image(client, item.image_id):
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
    from lab import scan

    scan.ensure_cache_volume(client, config)  # labelled: lab.down removes it
    with _docker("write Trivy's database"):
        _put_trivy_db(client, config, staged)


def _put_trivy_db(client: Any, config: Config, staged: Path) -> None:
    container = client.containers.create(
        config.trivy_image,
        entrypoint=["sh", "-c", "true"],
        volumes={scan_volume(): {"bind": "/cache", "mode": "rw"}},
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


# -- what `lab.up --offline` needs ----------------------------------------------------------


def node_image(config: Config) -> str:
    """The node image for kind: the pinned reference, or (loaded from a bundle, which
    drops registry digests) the image ID the bundle recorded for it."""
    image_id = loaded_record(config).get("images", {}).get(config.kind_node_image)
    if not image_id:
        return config.kind_node_image
    client = engine.client()
    if _has_image(client, config.kind_node_image) or not _has_image(client, image_id):
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
        if not _has_image(client, image_id):
            missing.append(f"image {reference}")
    registry = cluster.registry_status(client, config)
    if not registry.running:
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
    target = cluster.mirror_reference(config, item.name) if item.role == "mirror" else item.name
    repository, tag = target.removeprefix(f"{config.registry_host}/").rsplit(":", 1)
    host = f"{config.bind_address}:{config.registry_port}"
    return distribution.registry_has(host, repository, tag)


def _has_image(client: Any, reference: str) -> bool:
    try:
        client.images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    return True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


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


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def describe_size(size: int) -> str:
    return f"{size / 1024**3:.2f} GiB" if size >= 1024**3 else f"{size / 1024**2:.1f} MiB"


def summary_lines(manifest: Manifest) -> Sequence[str]:
    kinds: dict[str, int] = {}
    for item in manifest.items:
        kinds[item.kind] = kinds.get(item.kind, 0) + 1
    return [
        f"{describe_size(manifest.size)}: "
        + ", ".join(f"{count} {kind}(s)" for kind, count in sorted(kinds.items())),
        *manifest.notes,
    ]
