"""A workshop bundle made from the local Docker engine and loaded into a fresh lab
registry: images into Docker, mirrors and app images into the registry (issue #18)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import secrets
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from lab import bundle_loader, bundle_maker, config, distribution, engine, registry
from lab.changes import MAKE
from lab.config import Config
from lab.errors import LabError

pytestmark = pytest.mark.container


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tiny_image(client: docker.DockerClient, tag: str, word: str) -> str:
    """A one-file image of its own content (so each has its own ID), built by the daemon."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as archive:
        for name, data in (("Dockerfile", b"FROM scratch\nCOPY word /word\n"),
                           ("word", word.encode())):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    image, _ = client.images.build(fileobj=io.BytesIO(context.getvalue()), custom_context=True,
                                   tag=tag, rm=True)  # fmt: skip
    return str(image.id)


@pytest.fixture
def lab_config(tmp_path: Path) -> Iterator[Config]:
    name = f"labbundle{secrets.token_hex(3)}"
    cfg = config.load(
        {"cluster_name": name, "registry_name": f"{name}-registry",
         "registry_port": _free_port(), "state_dir": str(tmp_path / "state")},
        {},
    )  # fmt: skip
    yield cfg
    client = engine.client()
    for container in client.containers.list(all=True, filters={"name": cfg.registry_name}):
        container.remove(force=True, v=True)
    for volume in client.volumes.list(filters={"name": cfg.registry_name}):
        volume.remove(force=True)


def _registry_has(cfg: Config, repository: str, tag: str) -> bool:
    return distribution.registry_has(f"127.0.0.1:{cfg.registry_port}", repository, tag)


def test_a_bundle_made_from_docker_loads_into_a_fresh_registry_once(
    client: docker.DockerClient, lab_config: Config, tmp_path: Path
) -> None:
    token = secrets.token_hex(4)
    # The registry's own image travels in the bundle too: a participant has none, so the
    # registry can start only once the bundle's Docker images are loaded.
    registry_image = f"lab-bundle-test/registry:{token}"  # an ID of its own
    recipe = f"FROM {lab_config.registry_image}\nLABEL lab.test.token={token}\n"
    client.images.build(fileobj=io.BytesIO(recipe.encode()), tag=registry_image, rm=True)
    cfg = dataclasses.replace(lab_config, registry_image=registry_image)
    wanted = [
        (f"lab-bundle-test/scanner:{token}", "docker"),
        (f"quay.io/lab-bundle-test/app:{token}", "mirror"),
        (f"{cfg.registry_host}/lab/backend:main", "registry"),
    ]
    ids = {ref: _tiny_image(client, ref, f"{ref} {token}") for ref, _ in wanted}
    wanted.insert(1, (registry_image, "docker"))
    ids[registry_image] = client.images.get(registry_image).id
    output = tmp_path / "workshop.tar"
    try:
        manifest = bundle_maker.create(cfg, output, from_docker=True, install_manifest="kind: List\n",
                                 progress=lambda *_: None, wanted=wanted, tool_specs=())  # fmt: skip
        assert output.is_file() and not output.with_name("workshop.tar.part").exists()
        assert [(i.kind, i.name, i.role) for i in manifest.items] == [
            *(("image", ref, role) for ref, role in wanted if role == "docker"),
            *(("image", ref, role) for ref, role in wanted if role != "docker"),
            ("file", "argocd-install.yaml", ""),
        ]
        assert {i.name: i.image_id for i in manifest.items if i.kind == "image"} == ids
        assert "no Trivy database" in manifest.notes[0]
        for ref in ids:  # a participant's machine: none of it here
            client.images.remove(ref)
        assert not client.containers.list(all=True, filters={"name": cfg.registry_name})

        seen: list[tuple[str, int, int]] = []
        first = bundle_loader.load(cfg, output, progress=lambda *args: seen.append(args))

        assert sorted(first.loaded) == sorted([*ids, "argocd-install.yaml"]) and not first.present
        assert seen[-1][1] == seen[-1][2] == manifest.size  # the bar reached the whole size
        for ref, image_id in ids.items():
            assert client.images.get(ref).id == image_id
        assert _registry_has(cfg, "quay.io/lab-bundle-test/app", token)  # the mirror path
        assert _registry_has(cfg, "lab/backend", "main")
        cached = cfg.state_path / "cache" / f"argocd-{cfg.argocd_version}-install.yaml"
        assert cached.read_text() == "kind: List\n"
        assert bundle_loader.loaded_record(cfg)["images"] == ids

        again = bundle_loader.load(cfg, output, progress=lambda *_: None)  # nothing loaded twice
        assert again.loaded == [] and sorted(again.present) == sorted(first.loaded)

        # A damaged copy is refused whole: the image it would have loaded stays absent.
        scanner = wanted[0][0]
        client.images.remove(scanner)
        damaged = tmp_path / "damaged.tar"
        data = bytearray(output.read_bytes())
        with tarfile.open(output) as archive:
            middle = archive.getmember("images/docker.tar")
            data[middle.offset_data + middle.size // 2] ^= 0xFF
        damaged.write_bytes(bytes(data))
        with pytest.raises(LabError, match=r"images/docker\.tar .* does not match the manifest"):
            bundle_loader.load(cfg, damaged, progress=lambda *_: None)
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(scanner)
    finally:
        for ref in ids:
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(ref, force=True)
        for image in client.images.list(name=f"{cfg.registry_host}/quay.io/lab-bundle-test/app"):
            client.images.remove(image.id, force=True)


def test_a_node_image_pinned_by_digest_is_found_by_id_after_loading(
    client: docker.DockerClient, lab_config: Config, tmp_path: Path
) -> None:
    # A node image pinned as name:tag@digest, as lab pins kindest/node. The digest comes
    # from a registry; `docker load` cannot restore it, so kind gets the image by ID.
    base = lab_config
    registry.ensure_registry(base, MAKE)
    name = f"{base.registry_host}/lab-bundle-test/node"
    token = secrets.token_hex(4)
    image_id = _tiny_image(client, f"{name}:{token}", token)
    distribution.push_one(client, "node", name, token)
    digest = next(d for d in client.images.get(image_id).attrs["RepoDigests"] if d.startswith(name))
    pinned = f"{name}:{token}@{digest.split('@')[1]}"
    cfg = config.load({**{k: getattr(base, k) for k in ("cluster_name", "registry_name",
                       "registry_port", "state_dir")}, "kind_node_image": pinned}, {})  # fmt: skip
    output = tmp_path / "node.tar"
    try:
        bundle_maker.create(cfg, output, from_docker=True, install_manifest="", progress=lambda *_: None,
                      wanted=[(pinned, "docker")], tool_specs=())  # fmt: skip
        assert bundle_loader.node_image(cfg) == pinned  # nothing loaded yet: the pin as it is
        client.images.remove(image_id, force=True)

        bundle_loader.load(cfg, output, progress=lambda *_: None)

        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(pinned)  # the digest is gone, as on a participant's laptop
        assert bundle_loader.node_image(cfg) == image_id
        assert client.images.get(bundle_loader.node_image(cfg)).id == image_id
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(image_id, force=True)
