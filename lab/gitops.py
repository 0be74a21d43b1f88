"""Edits to the GitOps repository: seed it, bump an environment's tags, promote to prod.

The repository's content is the project's `gitops/` tree; what changes over time are
the image pins of each environment (`lab.tags` reads and writes them). Each operation
works in a private clone (`lab.checkout`), commits and pushes; a push that loses a race
re-fetches, re-applies the edit and pushes again, so concurrent deploys all land.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab.checkout import BOT_NAME, GIT_TIMEOUT, MAIN, Checkout, open_checkout
from lab.errors import LabError
from lab.gitserver import GitServer, PullRequest, Remote
from lab.tags import (
    ENVIRONMENTS,
    SEED_TAGS,
    ImageChange,
    Kustomization,
    commit_digests,
    edit_tags,
    kustomization_path,
    plan_update,
    read_tags,
    tag_of,
    validate_commit,
    validate_tag,
)

log = logging.getLogger("lab.gitops")

PROMOTE_PREFIX = "promote-"  # promotion branches: promote-<commit>
PUSH_ATTEMPTS = 6


@dataclass(frozen=True)
class Deployment:
    """What a deploy did to an environment."""

    environment: str
    commit: str
    changes: tuple[ImageChange, ...]
    revision: str  # the GitOps repository's main after the deploy
    pushed: bool  # False when the environment already ran `commit`


@dataclass(frozen=True)
class SeedResult:
    revision: str  # main after seeding
    pushed: bool  # False when the repository already held the content


@dataclass(frozen=True)
class PromotionSummary:
    """What the pull request tells the reviewer besides the tag changes."""

    scan: str = "not run"
    smoke: str = "not run"


@dataclass(frozen=True)
class Promotion:
    """A promotion branch and its pull request (None when prod already runs the commit)."""

    commit: str
    environment: str
    branch: str
    changes: tuple[ImageChange, ...]
    head: str | None = None  # the branch's commit
    pull_request: PullRequest | None = None
    created: bool = False  # whether the pull request was opened now
    superseded: tuple[int, ...] = ()  # older promotion pull requests closed for this one


def render_promotion_body(
    promotion_commit: str,
    environment: str,
    changes: Sequence[ImageChange],
    summary: PromotionSummary,
) -> str:
    """The pull request's description: what changes, the scan and the smoke verdict."""
    lines = [
        f"Promote commit `{promotion_commit}` to **{environment}**.",
        "",
        "| image | from | to |",
        "|---|---|---|",
        *(f"| `{c.name}` ({c.image}) | `{c.old}` | `{c.new}` |" for c in changes),
        "",
        "Images:",
        *sorted({f"- `{c.image}:{c.new}`" for c in changes}),  # <tag>@<digest>: pulled
        "",
        f"**Scan:** {summary.scan}",
        "",
        f"**Smoke test (dev):** {summary.smoke}",
        "",
        f"Merging lets Argo CD sync `{environment}` (opened by {BOT_NAME}).",
    ]
    return "\n".join(lines) + "\n"


# -- operations --------------------------------------------------------------------------


def validate_environment(environment: str) -> str:
    if environment not in ENVIRONMENTS:
        raise LabError(
            f"unknown environment {environment!r}: there is no {kustomization_path(environment)} "
            f"to edit (expected one of: {', '.join(ENVIRONMENTS)})",
            hint=f"deploy to {' or '.join(ENVIRONMENTS)}",
        )
    return environment


def _environment_text(checkout: Checkout, environment: str) -> tuple[Path, str, str]:
    """The environment's kustomization: its path, its name in errors, its text."""
    relative = kustomization_path(validate_environment(environment))
    source = f"{relative} in {checkout.remote.url}"
    path = checkout.path / relative
    if not path.is_file():
        raise LabError(
            f"{source} is missing (expected the {environment} environment's kustomization)",
            hint="run `invoke lab.up` to seed the repository from gitops/ again",
        )
    return path, source, path.read_text(encoding="utf-8")


def fetch_main(checkout: Checkout) -> str:
    main = checkout.fetch(MAIN)
    if main is None:
        raise LabError(
            f"the GitOps repository {checkout.remote.url} has no {MAIN} branch (not seeded)",
            hint="run `invoke lab.up`, which seeds it from gitops/",
        )
    checkout.checkout(MAIN, f"refs/remotes/origin/{MAIN}")
    return main


@contextmanager
def repository_tree(remote: Remote, *, timeout: float = GIT_TIMEOUT) -> Iterator[Path]:
    """A private clone of the repository's main branch, removed afterwards (for rendering)."""
    with open_checkout(remote, timeout) as checkout:
        fetch_main(checkout)
        yield checkout.path


def deployed_tags(
    remote: Remote, environment: str, *, timeout: float = GIT_TIMEOUT
) -> dict[str, str]:
    """The tags `environment` runs now, read from the repository's main branch."""
    validate_environment(environment)
    with open_checkout(remote, timeout) as checkout:
        fetch_main(checkout)
        _, source, text = _environment_text(checkout, environment)
        return read_tags(text, source)


def seed(remote: Remote, tree: Path, *, timeout: float = GIT_TIMEOUT) -> SeedResult:
    """Make the repository's main hold `tree` (the project's gitops/).

    Tags already deployed in the repository are kept (re-running `lab.up` must not roll
    environments back); no commit is made when the content is already there.
    """
    if not tree.is_dir():
        raise LabError(f"{tree} is not a directory", hint="seed from the project's gitops/ folder")
    for environment in ENVIRONMENTS:  # refuse a tree deploys could not edit, before any push
        path = tree / kustomization_path(environment)
        if not path.is_file():
            raise LabError(
                f"{path} is missing (expected the {environment} environment's kustomization)",
                hint="seed from the project's gitops/ folder",
            )
        Kustomization(path.read_text(encoding="utf-8"), str(path)).tags()
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        with open_checkout(remote, timeout) as checkout:
            main = checkout.fetch(MAIN)
            deployed: dict[str, dict[str, str]] = {}
            if main is not None:
                checkout.checkout(MAIN, f"refs/remotes/origin/{MAIN}")
                deployed = all_deployed_tags(checkout.path)
            _replace_content(checkout.path, tree)
            for environment, tags in deployed.items():
                path = checkout.path / kustomization_path(environment)
                if path.is_file():
                    source = str(kustomization_path(environment))
                    text, changes = edit_tags(path.read_text(encoding="utf-8"), tags, source)
                    if changes:
                        path.write_text(text, encoding="utf-8")
            if not checkout.commit_all("seed: GitOps repository content from gitops/"):
                return SeedResult(revision=main or "", pushed=False)
            if checkout.push(MAIN, lease=main or ""):
                return SeedResult(revision=checkout.head(), pushed=True)
        log.info("seed attempt %d lost a race, retrying", attempt)
    raise _too_many_races(remote.url, "seed")


def all_deployed_tags(root: Path) -> dict[str, dict[str, str]]:
    """Each environment's tags in a checkout, skipping environments not deployed yet."""
    deployed = {}
    for environment in ENVIRONMENTS:
        path = root / kustomization_path(environment)
        try:
            tags = read_tags(path.read_text(encoding="utf-8"), str(kustomization_path(environment)))
        except (LabError, OSError):
            continue  # content the new tree replaces
        if any(tag_of(tag) not in SEED_TAGS for tag in tags.values()):
            deployed[environment] = tags
    return deployed


def _replace_content(root: Path, tree: Path) -> None:
    for entry in root.iterdir():
        if entry.name == ".git":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    shutil.copytree(
        tree,
        root,
        dirs_exist_ok=True,
        symlinks=True,
        ignore=shutil.ignore_patterns(".git", "__pycache__", "*.pyc"),
    )


def deploy(
    remote: Remote,
    environment: str,
    commit: str,
    *,
    digests: Mapping[str, str] | None = None,
    timeout: float = GIT_TIMEOUT,
) -> Deployment:
    """Deploy `commit` to `environment`: A/B tag bump on main, committed and pushed.

    `digests` (by service: what the registry holds for `commit`'s tag) pins the images.
    Converges: when the environment already runs `commit`, nothing is committed. A push
    that loses a race is redone on the new main (re-fetch, re-apply, push). `commit`
    may be a dirty build's tag (`dirty_tag`) for dev only.
    """
    commit = validate_tag(commit) if environment == "dev" else validate_commit(commit)
    validate_environment(environment)
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        with open_checkout(remote, timeout) as checkout:
            main = fetch_main(checkout)
            path, source, text = _environment_text(checkout, environment)
            planned = plan_update(read_tags(text, source), commit, digests)
            edited, changes = edit_tags(text, planned, source)
            if edited == text:
                return Deployment(environment, commit, (), main, pushed=False)
            path.write_text(edited, encoding="utf-8")
            checkout.commit_all(f"{environment}: deploy {commit}")
            if checkout.push(MAIN):
                log.info("%s: deployed %s (%d images)", environment, commit, len(changes))
                return Deployment(environment, commit, changes, checkout.head(), pushed=True)
        log.info("deploy attempt %d lost a race, retrying", attempt)
    raise _too_many_races(remote.url, f"deploy of {commit} to {environment}")


def promote(
    remote: Remote,
    server: GitServer,
    org: str,
    repo: str,
    commit: str,
    *,
    environment: str = "prod",
    summary: PromotionSummary = PromotionSummary(),
    digests: Mapping[str, str] | None = None,
    timeout: float = GIT_TIMEOUT,
) -> Promotion:
    """Branch `promote-<commit>` from main with `environment`'s tag bump, and its pull request.

    The images keep the digests dev runs `commit` with: prod gets the bytes dev tested;
    `digests` (by service: the registry's) pins those dev no longer runs `commit` with.
    Converges: an open pull request for the branch is reused (its branch is rebuilt on
    the current main when main moved); when `environment` already runs `commit`
    nothing is pushed and no pull request is opened.
    """
    commit = validate_commit(commit)
    validate_environment(environment)
    branch = f"{PROMOTE_PREFIX}{commit}"
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        with open_checkout(remote, timeout) as checkout:
            fetch_main(checkout)
            _, dev_source, dev_text = _environment_text(checkout, "dev")
            tested = commit_digests(read_tags(dev_text, dev_source), commit)
            path, source, text = _environment_text(checkout, environment)
            planned = plan_update(read_tags(text, source), commit, {**(digests or {}), **tested})
            edited, changes = edit_tags(text, planned, source)
            if edited == text:
                return Promotion(commit, environment, branch, ())
            existing = checkout.fetch(branch)
            path.write_text(edited, encoding="utf-8")
            checkout.commit_all(f"{environment}: promote {commit}")
            head = checkout.head()
            same = (
                existing is not None
                and not checkout.git("diff", "--quiet", existing, "HEAD", check=False).returncode
            )
            if same and existing is not None and _is_ancestor(checkout, f"origin/{MAIN}", existing):
                head = existing  # the branch already holds this promotion on this main
            elif not checkout.push(branch, lease=existing or ""):
                log.info("promotion attempt %d lost a race, retrying", attempt)
                continue
        server.wait_for_branch(org, repo, branch, head)
        pull, created = server.ensure_pull_request(
            org,
            repo,
            head=branch,
            base=MAIN,
            title=f"{environment}: promote {commit[:12]}",
            body=render_promotion_body(commit, environment, changes, summary),
        )
        superseded = close_superseded(server, org, repo, pull)
        return Promotion(commit, environment, branch, changes, head, pull, created, superseded)
    raise _too_many_races(remote.url, f"promotion of {commit}")


def close_superseded(
    server: GitServer, org: str, repo: str, newest: PullRequest
) -> tuple[int, ...]:
    """Close the other open promotion pull requests into the same base: merging one of
    them now would roll prod back behind `newest`. Each says which one superseded it."""
    closed = []
    for pull in server.list_pull_requests(org, repo, state="open"):
        if pull.number == newest.number or pull.base != newest.base:
            continue
        if not pull.head.startswith(PROMOTE_PREFIX):
            continue  # a person's own pull request: not ours to close
        server.close_pull_request(
            pull, org, repo, why=f"Closed by lab: superseded by #{newest.number} ({newest.title})."
        )
        closed.append(pull.number)
    return tuple(closed)


def _is_ancestor(checkout: Checkout, ancestor: str, descendant: str) -> bool:
    return checkout.git("merge-base", "--is-ancestor", ancestor, descendant, check=False).ok


def _too_many_races(url: str, what: str) -> LabError:
    return LabError(
        f"the {what} lost {PUSH_ATTEMPTS} push races in a row at {url}",
        hint="something else keeps pushing to the GitOps repository; try again",
    )
