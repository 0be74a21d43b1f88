"""`lab.down`: delete the lab and prove nothing of it is left; on a cluster the user
brought (`lab.up --context`), leave that cluster as lab found it (`lab.your_cluster`).

On the lab's own kind cluster, `lab.down` deletes the cluster, the registry, the lab's
volumes, networks, kube context and state, then looks for each of them again
(`leftovers`), and says what it keeps on purpose, and why (`kept`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from lab import bundle, changes, cluster, engine, images, k8s, proc, scan, steps, your_cluster
from lab.changes import Changes
from lab.cli import Context
from lab.config import Config
from lab.errors import LabError
from lab.state import State
from lab.steps import Step


@dataclass(frozen=True)
class Leftovers:
    """What of the lab still exists on this machine."""

    containers: tuple[str, ...]
    networks: tuple[str, ...]
    volumes: tuple[str, ...]
    contexts: tuple[str, ...]
    images: tuple[str, ...] = ()  # the app and toolchain images lab built
    files: tuple[str, ...] = ()  # .lab/cache: downloads lab.up keeps for its next run

    def __bool__(self) -> bool:
        return any(
            (self.containers, self.networks, self.volumes, self.contexts, self.images, self.files)
        )

    def describe(self) -> str:
        parts = [
            f"{what}: {', '.join(names)}"
            for what, names in (
                ("containers", self.containers),
                ("networks", self.networks),
                ("volumes", self.volumes),
                ("kube contexts", self.contexts),
                ("images", self.images),
                ("files", self.files),
            )
            if names
        ]
        return "; ".join(parts) or "nothing"


def leftovers(
    config: Config,
    *,
    keep_registry: bool = False,
    kind_network: bool = False,
    keep_images: bool = False,
) -> Leftovers:
    """Everything of the lab that exists: labelled objects, kind's node containers,
    contexts, and (unless kept) the images lab built and its download cache."""
    client = engine.client()
    label = f"{engine.LAB_LABEL}={config.cluster_name}"
    kind_label = f"io.x-k8s.kind.cluster={config.cluster_name}"
    containers = {c.name for c in client.containers.list(all=True, filters={"label": label})}
    containers |= {c.name for c in client.containers.list(all=True, filters={"label": kind_label})}
    volumes = {v.name for v in client.volumes.list(filters={"label": label})}
    if keep_registry:
        containers.discard(config.registry_name)
        volumes.discard(f"{config.registry_name}-data")
    else:
        volumes |= {
            v.name for v in client.volumes.list() if v.name == f"{config.registry_name}-data"
        }
    if keep_images:
        volumes.discard(scan.CACHE_VOLUME)  # Trivy's database: a download, kept with them
    networks = {n.name for n in client.networks.list(filters={"label": label})}
    # kind's own network, when kind made it for the lab: ours once nothing else is
    # attached to it (kind makes it again on demand); kept while anything else uses it.
    for network in client.networks.list(names=[cluster.KIND_NETWORK]) if kind_network else []:
        network.reload()
        attached = (network.attrs.get("Containers") or {}).values()
        others = {c.get("Name") for c in attached} - containers
        if network.name == cluster.KIND_NETWORK and not others:
            networks.add(network.name)
    cache = config.state_path / "cache"
    return Leftovers(
        tuple(sorted(containers)),
        tuple(sorted(networks)),
        tuple(sorted(volumes)),
        tuple(_kube_contexts(config)),
        () if keep_images else tuple(sorted(built_images(client, config))),
        () if keep_images or not cache.exists() else (str(cache),),
    )


def built_images(client: Any, config: Config) -> set[str]:
    """The tags of the images lab built: the apps' under the lab registry's `lab/`
    (they carry lab's service label), the quality stage's derived toolchains, and the
    apps' dependency stages a bundle made or brought (`lab-build-cache/`)."""
    ours = [f"{images.image_repository(s, config.registry_host)}:" for s in images.SERVICES]
    tags = {
        tag
        for image in client.images.list(filters={"label": images.SERVICE_LABEL})
        for tag in image.tags
        if tag.startswith(tuple(ours))
    }
    tags |= {
        tag
        for image in client.images.list()
        for tag in image.tags
        if tag.startswith((f"{config.toolchain_repository}/", f"{config.build_cache_repository}/"))
    }
    return tags


def _kube_contexts(config: Config) -> list[str]:
    from kubernetes import config as kconfig
    from kubernetes.config.config_exception import ConfigException

    try:
        contexts, _ = kconfig.list_kube_config_contexts()  # type: ignore[no-untyped-call]
    except (ConfigException, FileNotFoundError, TypeError):
        return []
    return [c["name"] for c in contexts or [] if c["name"] == config.kube_context]


@dataclass
class Teardown:
    """One `lab.down` in progress."""

    ctx: Context
    keep_registry: bool
    changes: Changes  # makes the removals, or plans them
    state: State
    keep_images: bool = False

    @property
    def made_network(self) -> bool:
        return bool(self.state.kind_network_ours)


def remove_from_your_cluster(down: Teardown) -> str:
    byo = down.state.byo
    if not (byo and "last_up" in byo):
        return "no cluster of yours was used"
    return down.changes.make(
        f"remove the lab's namespaces and installs from {byo['context']}",
        lambda: _uninstall_from(down, byo),
        planned="planned",
    )


def _uninstall_from(down: Teardown, byo: dict[str, Any]) -> str:
    removed = your_cluster.uninstall(
        k8s.connect(byo["context"]), down.ctx.config, byo, byo["last_up"], down.ctx.ui.progress
    )
    shown = ", ".join(removed[:8]) + (", …" if len(removed) > 8 else "")
    return f"removed {len(removed)} objects from {byo['context']}: {shown}"


def delete_kind_cluster(down: Teardown) -> str:
    config = down.ctx.config
    if not (proc.which("kind") and cluster.cluster_exists(config)):
        return "no kind cluster"
    cluster.delete_cluster(config, down.changes)
    return down.changes.note(f"deleted {config.cluster_name}")


def remove_containers(down: Teardown) -> str:
    config = down.ctx.config
    client = engine.client()
    found = leftovers(
        config,
        keep_registry=down.keep_registry,
        kind_network=down.made_network,
        keep_images=down.keep_images,
    )
    remove = partial(_remove, down.changes)
    for name in found.containers:
        remove(name, partial(_remove_container, client, name))
    for name in found.volumes:
        remove(name, partial(_remove_volume, client, name))
    for name in found.networks:
        remove(name, partial(_remove_network, client, name))
    if found.contexts:
        down.changes.run(
            ("kubectl", "config", "delete-context", config.kube_context), timeout=30, check=False
        )
    for tag in found.images:  # a tag at a time: an image another tag still names stays
        remove(tag, partial(engine.remove_image, client, tag))
    for path in found.files:
        down.changes.make(
            f"remove {path}", partial(shutil.rmtree, path, ignore_errors=True), planned=None
        )
    return found.describe() if found else "nothing found"


def forget_state(down: Teardown) -> str:
    paths = [down.ctx.config.state_path / "state.json"]
    if not (down.keep_registry and down.keep_images):  # what a loaded bundle put in place
        paths.append(down.ctx.config.state_path / bundle.RECORD)

    def remove() -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    down.changes.make(f"remove {' and '.join(map(str, paths))}", remove, planned=None)
    return down.changes.note(f"removed {paths[0]}")


def verify_nothing_remains(down: Teardown) -> str:
    """Prove the removals took: nothing of the lab is found again; then say what
    lab.down keeps on purpose. (After a plan they did not happen: nothing to verify.)"""
    return down.changes.make(
        "verify that nothing of the lab remains", lambda: _verify(down), planned="planned"
    )


def _verify(down: Teardown) -> str:
    config = down.ctx.config
    remaining = leftovers(
        config,
        keep_registry=down.keep_registry,
        kind_network=down.made_network,
        keep_images=down.keep_images,
    )
    if remaining:
        raise LabError(
            f"some of the lab is still here: {remaining.describe()}",
            hint="run `invoke lab.down` again; if it persists, use docker rm / volume rm",
        )
    down.ctx.ui.info("Nothing of the lab remains on this machine, except:")
    for line in kept(config, keep_registry=down.keep_registry, keep_images=down.keep_images):
        down.ctx.ui.info(f"  kept: {line}")
    return "nothing left"


DOWN: tuple[Step[Teardown], ...] = (
    Step("Removing the lab from your cluster", remove_from_your_cluster),  # lab.up --context
    Step("Deleting the kind cluster", delete_kind_cluster),
    Step("Removing the lab's containers, volumes, networks and images", remove_containers),
    Step("Forgetting the lab's state", forget_state),  # .lab/state.json
    Step("Verifying nothing of the lab remains", verify_nothing_remains),
)


def down(
    ctx: Context, *, keep_registry: bool = False, keep_images: bool = False, dry_run: bool = False
) -> None:
    """Delete the cluster, the registry, the lab's volumes, networks, context, images,
    cache and state, then prove nothing is left; say what is kept, and why."""
    engine.client()  # Docker must answer: said once, before anything changes
    state = State.load(ctx.config.state_path)
    wanted = DOWN if (state.byo or {}).get("last_up") else DOWN[1:]
    teardown = Teardown(ctx, keep_registry, changes.for_options(dry_run), state, keep_images)
    teardown.changes.start(ctx.ui)
    steps.raise_first_failure(steps.run(wanted, teardown, ctx.ui), context=False)
    teardown.changes.finish(ctx.ui)


def kept(config: Config, *, keep_registry: bool, keep_images: bool) -> list[str]:
    """What `lab.down` leaves on purpose, each with its reason (pure)."""
    lines = []
    if keep_registry:
        lines.append(f"the registry {config.registry_name} and its images (--keep-registry)")
    if keep_images:
        lines.append(
            f"the images lab built ({config.registry_host}/lab/*, "
            f"{config.toolchain_repository}/*), Trivy's database and "
            f"{config.state_path / 'cache'} (--keep-images)"
        )
    lines.append(
        "the base images the Dockerfiles build from, and kind's node image: Docker's, "
        "shared with your other builds (`docker image prune` removes unused ones)"
    )
    lines.append(
        "BuildKit's build cache: one for every build on this Docker, which cannot tell "
        "lab's steps from others (`docker builder prune` empties it)"
    )
    if (config.state_path / "bin").is_dir():
        lines.append(
            f"{config.state_path / 'bin'} (the pinned tools `lab.tools` or a bundle "
            "installed; the next lab.up needs them)"
        )
    lines.append(f"{config.state_path / 'logs'} (the runs' logs, this one's too)")
    return lines


def _remove(changes: Changes, name: str, action: Callable[[], object]) -> None:
    # Each action takes an object gone since `leftovers` listed it as removed: what
    # matters is that it is not there (`_verify` looks again).
    changes.make(f"remove {name}", action, planned=None)


def _remove_container(client: Any, name: str) -> None:
    container = engine.find_container(client, name)
    if container is not None:
        engine.remove_container(container)


def _remove_volume(client: Any, name: str) -> None:
    volume = engine.find_volume(client, name)
    if volume is not None:
        engine.remove_volume(volume)


def _remove_network(client: Any, name: str) -> None:
    network = engine.find_network(client, name)
    if network is not None:
        engine.remove_network(network)
