"""Checkpoints: named states of the GitOps repository to come back to (workshop mode).

A checkpoint is an annotated tag `checkpoint/<name>` in the lab's Gitea, on a commit of
main. Its message holds what each environment ran at that moment (JSON), so `list`
says it without checking anything out.

Restoring makes a new commit on main whose tree is the checkpoint's. History is kept
and nothing is force-pushed: Argo CD syncs the new revision like any other, and a
restore can itself be undone by restoring a later checkpoint. Open promotion pull
requests are left alone; the next `pipeline.run` supersedes them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lab import argocd, gitops, k8s, tags, wait
from lab.checkout import GIT_TIMEOUT, MAIN, Checkout, open_checkout
from lab.errors import LabError
from lab.gitserver import Remote

PREFIX = "checkpoint/"
SEED = "seed"  # saved by lab.up once the repository is first seeded
APPLICATIONS = ("demo-dev", "demo-prod")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class Checkpoint:
    name: str
    revision: str  # main's commit when it was saved
    created: str  # ISO 8601, UTC
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # environment → images

    def describe(self, environment: str) -> str:
        """`backend v1 abc1234 / v2 def5678, frontend …`: the tags, short (pure)."""
        tags = self.tags.get(environment, {})
        shown = sorted({_short(tag) for tag in tags.values()})
        return ", ".join(shown) or "?"


@dataclass(frozen=True)
class Restored:
    checkpoint: Checkpoint
    revision: str  # main after the restore
    changed: bool  # False when main already had the checkpoint's content


def validate_name(name: str) -> str:
    value = name.strip().lower()
    if not _NAME.match(value):
        raise LabError(
            f"{name!r} is not a checkpoint name: use lower-case letters, digits, '.', '_' "
            "and '-', starting with a letter or digit (at most 63)",
            hint="for example `step-3`",
        )
    return value


def save(
    remote: Remote, name: str, *, replace: bool = True, timeout: float = GIT_TIMEOUT
) -> tuple[Checkpoint, bool]:
    """Tag main as checkpoint `name`; (it, whether one of that name existed).

    An existing checkpoint of that name is replaced, or with `replace=False` kept and
    returned as it is (lab.up's `seed`, saved once).
    """
    name = validate_name(name)
    with open_checkout(remote, timeout) as checkout:
        ref = f"refs/tags/{PREFIX}{name}"
        if not replace and checkout.git("ls-remote", "origin", ref).stdout.strip():
            return next(p for p in _read(checkout) if p.name == name), True
        main = gitops.fetch_main(checkout)  # and checked out
        point = Checkpoint(
            name,
            main,
            datetime.now(UTC).replace(microsecond=0).isoformat(),
            {
                environment: tags.read_tags(
                    (checkout.path / path).read_text(encoding="utf-8"), str(path)
                )
                for environment in tags.ENVIRONMENTS
                for path in [tags.kustomization_path(environment)]
            },
        )
        existed = bool(checkout.git("ls-remote", "origin", ref).stdout.strip())
        message = json.dumps({"created": point.created, "tags": point.tags}, sort_keys=True)
        checkout.git("tag", "-a", "-f", f"{PREFIX}{name}", "-m", message, main)
        checkout.git("push", "--force", "origin", f"{ref}:{ref}")
    return point, existed


def list_checkpoints(remote: Remote, *, timeout: float = GIT_TIMEOUT) -> list[Checkpoint]:
    """Every checkpoint in the repository, oldest first."""
    with open_checkout(remote, timeout) as checkout:
        return _read(checkout)


def restore(remote: Remote, name: str, *, timeout: float = GIT_TIMEOUT) -> Restored:
    """Make main's content the checkpoint's, as a new commit; retried when main moves."""
    name = validate_name(name)
    for _ in range(gitops.PUSH_ATTEMPTS):
        with open_checkout(remote, timeout) as checkout:
            known = {point.name: point for point in _read(checkout)}
            if name not in known:
                raise LabError(
                    f"there is no checkpoint {name!r} in the GitOps repository",
                    hint=(f"saved: {', '.join(known)}" if known else "none is saved yet")
                    + "; `invoke lab.checkpoint.save NAME` saves one",
                )
            point = known[name]
            main = gitops.fetch_main(checkout)  # and checked out
            # The index and the files become the checkpoint's tree; files it lacks go.
            checkout.git("read-tree", "-u", "--reset", f"refs/tags/{PREFIX}{name}^{{tree}}")
            if not checkout.commit_all(f"restore checkpoint {name} ({point.revision[:12]})"):
                return Restored(point, main, changed=False)
            if checkout.push(MAIN):
                return Restored(point, checkout.head(), changed=True)
    raise LabError(
        f"could not restore {name!r}: main kept moving ({gitops.PUSH_ATTEMPTS} attempts)",
        hint="is a pipeline run deploying meanwhile? wait for it, then restore again",
    )


def wait_healthy(
    cluster: k8s.Cluster,
    revision: str,
    *,
    timeout: float,
    report: Callable[[str], None],
) -> list[str]:
    """Wait until each demo application is Synced at `revision` and Healthy."""
    seen = []
    for app in APPLICATIONS:
        argocd.refresh(cluster, app)

        def look(app: str = app) -> wait.Observation:
            obj = cluster.get(*argocd.APPLICATION, app, argocd.NAMESPACE)
            if obj is None:
                return wait.Observation(False, f"application {app} not found")
            if stuck := argocd.unsyncable(app, obj, revision):
                return stuck
            sync, health, _ = argocd.application_status(obj)
            at = argocd.synced_revision(obj)
            done = at == revision and sync == "Synced" and health == "Healthy"
            return wait.Observation(done, f"{app}: {sync}, {health} at {at[:12] or '?'}")

        seen.append(
            wait.until(f"{app} to be Synced and Healthy", look, timeout=timeout, report=report).seen
        )
    return seen


def _read(checkout: Checkout) -> list[Checkpoint]:
    checkout.git(
        "fetch", "--quiet", "--force", "origin", f"+refs/tags/{PREFIX}*:refs/tags/{PREFIX}*"
    )
    listing = checkout.git(
        "for-each-ref",
        "--sort=creatordate",
        "--format=%(refname:strip=2)%00%(*objectname)%00%(objectname)%00%(contents)%1e",
        f"refs/tags/{PREFIX}",
    ).stdout
    points = []
    for record in filter(None, (r.strip("\n") for r in listing.split("\x1e"))):
        ref, peeled, target, message = [*record.split("\0"), "", "", ""][:4]
        try:
            data = json.loads(message)
        except ValueError:
            data = {}  # a tag someone made by hand: still a checkpoint, without details
        points.append(
            Checkpoint(
                ref.removeprefix(PREFIX),
                peeled or target,  # a lightweight tag has no peeled commit of its own
                str(data.get("created", "")),
                dict(data.get("tags") or {}),
            )
        )
    return points


def _short(pinned: str) -> str:
    """`abc1234`, `abc1234-dirty` or a seed tag: a pin's commit, without its digest."""
    tag = tags.tag_of(pinned)
    commit = tags.commit_of(tag)
    return tag if tag in tags.SEED_TAGS else commit[:7] + ("-dirty" if commit != tag else "")
