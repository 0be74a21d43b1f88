"""Workshop bundles: everything `lab.up` and `pipeline.run` download, in one file.

This module is the format both sides share: the manifest and its items, the pins a bundle
fits, checksums, and the few Docker calls both sides make. `lab.bundle_maker` writes a
bundle; `lab.bundle_loader` verifies and loads one, and answers what `lab.up --offline`
needs.

A bundle is an uncompressed tar. Its first member is `manifest.json`: the pins it was
made for and, per item, its member, size and SHA-256. Then, one member per item:

    images/<n>.tar   `docker save` of one image (its ID survives save and load)
    tools/<name>     kind, kubectl, istioctl, kustomize at the pinned versions
    files/<name>     Argo CD's install.yaml
    trivy/db.tar     Trivy's database directory, when the maker's machine had one

Images have a role. `docker` ones are loaded into the local engine: the kind node, the
registry, Trivy, the Dockerfiles' bases, the quality toolchains, and each Dockerfile's
dependency stage (`images.dependency_plans`), from which offline builds start. `mirror` ones are
pushed into the lab registry under their mirror paths (`registry.mirror_reference`),
where the nodes' containerd pulls them: Istio, Argo CD and its redis, Gitea, the
demo's redis. `registry` ones, the apps' `:main` images when the maker had them, are
pushed under their own names, so `lab.up` has nothing to build.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lab import doctor, engine
from lab.config import Config
from lab.errors import LabError

FORMAT = 1
MANIFEST = "manifest.json"
RECORD = "bundle.json"  # under the state directory: what the last load put where
CHUNK = 1 << 20
# docker save and load of a GB image answer only when done: the engine client's
# connect-sized read timeout is far too short for them.
TRANSFER_TIMEOUT = 3600


def transfer_client() -> Any:
    return engine.client(read_timeout=TRANSFER_TIMEOUT)


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


# -- what a bundle fits (pure but for the engine's platform) -----------------------------


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
    with engine.doing("say its platform"):
        version = client.version()
    return f"{version.get('Os', '?')}/{version.get('Arch', '?')}"


def mismatches(made_for: dict[str, str], ours: dict[str, str]) -> list[str]:
    """`key: bundle X, this lab Y` for each pin that differs (pure)."""
    return [
        f"{key}: bundle {made_for.get(key, '(none)')}, this lab {ours.get(key, '(none)')}"
        for key in sorted(set(made_for) | set(ours))
        if made_for.get(key) != ours.get(key)
    ]


# -- shared by making and loading --------------------------------------------------------


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
