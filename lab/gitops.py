"""Edits to the GitOps repository: seed it, bump an environment's tags, promote to prod.

The repository's content is the project's `gitops/` tree; what changes over time are
the `newTag` and `digest` values in `environments/<env>/kustomization.yaml` (a deploy
pins each image to the digest the registry gave its tag, so a tag pushed again later
cannot change what runs), edited structurally
(ruamel.yaml round-trip: comments, key order and quoting kept), committed by a bot
identity and pushed. A push that loses a race re-fetches, re-applies the edit and
pushes again, so concurrent deploys all land.

A/B semantics: a deploy sets v1 ← the tag currently live as v2 and v2 ← the new commit
(both new on the first deploy, when the tags are still seed values like `main`).

Git runs through `lab.proc.run`; credentials reach git through a GIT_ASKPASS script in a
private temporary directory, so no token is ever in an argv, an environment overlay, a
log line or an error.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shlex
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import ScalarString

from lab.errors import LabError
from lab.gitserver import GitServer, PullRequest
from lab.gitserver import Remote as Remote  # re-exported: callers name it gitops.Remote
from lab.proc import Result, run

log = logging.getLogger("lab.gitops")

BOT_NAME = "lab-bot"
BOT_EMAIL = "lab-bot@lab.local"
MAIN = "main"
PROMOTE_PREFIX = "promote-"  # promotion branches: promote-<commit>

# The image placeholders every environment maps (docs/CONTRACTS.md, "Kubernetes").
VARIANT_SERVICES = ("backend", "monitor")  # deployed as v1 and v2, A/B
SINGLE_IMAGES = ("frontend", "smoke")  # one image each, always the newest commit
IMAGE_NAMES = (
    *(f"{service}-{variant}" for service in VARIANT_SERVICES for variant in ("v1", "v2")),
    *SINGLE_IMAGES,
)

# The environments lab deploys to (namespaces demo-dev and demo-prod).
ENVIRONMENTS = ("dev", "prod")

# What the smoke test expects each backend variant to report: literals of the
# environment's configMapGenerator `smoke-test` (gitops/README.md).
SMOKE_CONFIG = "smoke-test"
EXPECTED_COMMITS = {"EXPECTED_V1_COMMIT": "backend-v1", "EXPECTED_V2_COMMIT": "backend-v2"}

# Tags the seed content may carry before anything was deployed (the branch name).
SEED_TAGS = frozenset({"main"})
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
# A build of a dirty working tree: <commit>-dirty-<its tree, 12 hex> (dirty_tag).
DIRTY = "-dirty-"
_DIRTY_TAG = re.compile(r"^[0-9a-f]{40}-dirty-[0-9a-f]{12}$")

GIT_TIMEOUT = 60.0
PUSH_ATTEMPTS = 6


# -- values ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageChange:
    """One `images:` entry whose `newTag` changes."""

    name: str  # the placeholder, e.g. backend-v2
    image: str  # its newName, e.g. localhost:5001/lab/backend
    old: str
    new: str


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


# -- pure core ---------------------------------------------------------------------------


def validate_commit(commit: str) -> str:
    """`commit` as a tag: 7 to 40 hex characters, lower-cased; anything else is refused."""
    value = commit.strip().lower()
    if _DIRTY_TAG.match(value):
        raise LabError(
            f"{value} is a build of a dirty working tree: only dev runs those, and they "
            "are never promoted",
            hint="commit the changes and run the pipeline again",
        )
    if not _COMMIT.match(value):
        seed = (
            " (branch tags like 'main' are only allowed as seed values)"
            if value in SEED_TAGS
            else ""
        )
        raise LabError(
            f"{commit!r} is not a commit SHA: expected 7 to 40 hex characters{seed}",
            hint="pass the commit the images were built from, e.g. `git rev-parse HEAD`",
        )
    return value


def dirty_tag(commit: str, tree: str) -> str:
    """The tag of images built from `commit` plus uncommitted changes making `tree`."""
    return f"{commit}{DIRTY}{tree[:12]}"


def validate_tag(tag: str) -> str:
    """A tag deploy may write: a commit SHA, or a dirty build's tag (dirty_tag)."""
    value = tag.strip().lower()
    return value if _DIRTY_TAG.match(value) else validate_commit(value)


def commit_of(tag: str) -> str:
    """The commit a tag's images were built from (what the backend reports)."""
    return tag_of(tag).partition(DIRTY)[0]


# An image an environment runs is a "pin": its tag, and the digest that tag had when it
# was deployed (`<tag>@sha256:<hex>`), or the tag alone (the seed's `main`).
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def pin(tag: str, digest: str | None) -> str:
    """`<tag>@<digest>`, or `tag` when no digest is known."""
    if digest is None:
        return tag
    if not _DIGEST.match(digest):
        raise LabError(
            f"{digest!r} is not an image digest (sha256:<64 hex>)",
            hint="deploys pin the digest the registry reports for the pushed tag",
        )
    return f"{tag}@{digest}"


def tag_of(pinned: str) -> str:
    """The tag of a pin (`<tag>@<digest>` or `<tag>`)."""
    return pinned.partition("@")[0]


def digest_of(pinned: str) -> str | None:
    """The digest of a pin, when it has one."""
    return pinned.partition("@")[2] or None


def service_of(name: str) -> str:
    """The service an image placeholder runs: `backend-v2` → backend."""
    return name.removesuffix("-v1").removesuffix("-v2")


def kustomization_path(environment: str) -> PurePosixPath:
    return PurePosixPath("environments") / environment / "kustomization.yaml"


def plan_update(
    current: Mapping[str, str], commit: str, digests: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The pins an environment gets when `commit` is deployed to it.

    v1 ← the pin live as v2, v2 ← `commit`; when v2 is still a seed value (nothing
    deployed yet) both become `commit`; a service whose v2 already runs `commit` keeps
    its v1. Single images always get `commit`. `digests` (by service) pins the new
    commit's images; without one, an image already at `commit` keeps its own pin.
    """
    digests = digests or {}

    def new(service: str, live: str) -> str:
        if service in digests:
            return pin(commit, digests[service])
        return live if tag_of(live) == commit else commit

    pins = dict(current)
    for service in VARIANT_SERVICES:
        v1, v2 = f"{service}-v1", f"{service}-v2"
        live = current[v2]
        if tag_of(live) != commit:
            pins[v1] = new(service, commit) if tag_of(live) in SEED_TAGS else live
        elif tag_of(current[v1]) == commit:  # both ran it: both get its new pin
            pins[v1] = new(service, current[v1])
        pins[v2] = new(service, live)
    for name in SINGLE_IMAGES:
        pins[name] = new(name, current[name])
    return pins


def commit_digests(pins: Mapping[str, str], commit: str) -> dict[str, str]:
    """By service, the digests an environment's pins give `commit`'s images."""
    return {
        service_of(name): digest
        for name, pinned in pins.items()
        if tag_of(pinned) == commit and (digest := digest_of(pinned))
    }


class Kustomization:
    """An environment's kustomization.yaml, loaded for a structural round-trip edit."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self._yaml = _round_trip_yaml(text)
        try:
            self._document: Any = self._yaml.load(text)
        except YAMLError as error:
            raise LabError(
                f"{source} is not valid YAML: {error}",
                hint=f"fix {source} in gitops/ (and in the GitOps repository)",
            ) from error
        self._entries = self._image_entries()
        self._smoke_literals()
        self.modified = False

    def _image_entries(self) -> dict[str, Any]:
        expected = ", ".join(IMAGE_NAMES)
        images = self._document.get("images") if isinstance(self._document, dict) else None
        if not isinstance(images, list):
            raise LabError(
                f"{self.source} has no `images:` list; expected entries named {expected}",
                hint="each environment maps the image placeholders with "
                "`images: [{name, newName, newTag}]` (docs/CONTRACTS.md)",
            )
        entries = {
            str(entry["name"]): entry
            for entry in images
            if isinstance(entry, dict) and "name" in entry
        }
        missing = [name for name in IMAGE_NAMES if name not in entries]
        if missing:
            raise LabError(
                f"{self.source} lacks `images:` entries named {', '.join(missing)} "
                f"(expected {expected})",
                hint="each environment maps every placeholder with {name, newName, newTag}",
            )
        return entries

    def _smoke_literals(self) -> Any:
        expected = ", ".join(f"{key}=" for key in EXPECTED_COMMITS)
        generators = self._document.get("configMapGenerator")
        for generator in generators if isinstance(generators, list) else ():
            if isinstance(generator, dict) and generator.get("name") == SMOKE_CONFIG:
                literals = generator.get("literals")
                present = {str(item).split("=", 1)[0] for item in literals or ()}
                if isinstance(literals, list) and present >= EXPECTED_COMMITS.keys():
                    return literals
        raise LabError(
            f"{self.source} lacks a configMapGenerator `{SMOKE_CONFIG}` with the literals "
            f"{expected} (the commits the smoke test expects)",
            hint="see gitops/README.md for the fields lab edits in each environment",
        )

    def tags(self) -> dict[str, str]:
        """The pin of each expected image placeholder: its `newTag`, `@digest` if set."""
        tags: dict[str, str] = {}
        for name in IMAGE_NAMES:
            entry = self._entries[name]
            tag = entry.get("newTag")
            if tag is None or str(tag) == "":
                raise LabError(
                    f"{self.source}: image {name} has no newTag",
                    hint="give every `images:` entry a newTag (the seed uses 'main')",
                )
            digest = entry.get("digest")
            try:
                tags[name] = pin(str(tag), str(digest) if digest else None)
            except LabError as error:
                raise LabError(
                    f"{self.source}: image {name}: {error.message}", hint=error.hint
                ) from None
        return tags

    def image(self, name: str) -> str:
        return str(self._entries[name].get("newName") or name)

    def set_tags(self, tags: Mapping[str, str]) -> tuple[ImageChange, ...]:
        """Set the pin (`newTag`, and `digest` or none) of each named placeholder.

        Returns the changes, in IMAGE_NAMES order.

        The smoke test's expected commits follow the backend variants' tags (empty
        while a variant still runs a seed tag).
        """
        changes = []
        current = self.tags()
        for name in IMAGE_NAMES:
            if name not in tags or tags[name] == current[name]:
                continue
            entry = self._entries[name]
            old = entry.get("newTag")
            tag, digest = tag_of(tags[name]), digest_of(tags[name])
            # Keep the author's quoting; a plain scalar that would read as a number
            # (a short SHA like 1234567) is quoted by ruamel's representer.
            entry["newTag"] = type(old)(tag) if isinstance(old, ScalarString) else tag
            if digest:
                entry["digest"] = digest  # kustomize renders <newName>:<newTag>@<digest>
            else:
                entry.pop("digest", None)  # a digest of another tag must not stay
            self.modified = True
            changes.append(ImageChange(name, self.image(name), current[name], tags[name]))
        self._set_expected_commits({**current, **tags})
        return tuple(changes)

    def expected_commits(self) -> dict[str, str]:
        """The smoke test's EXPECTED_* literals, by key."""
        return {
            key: value
            for key, _, value in (str(item).partition("=") for item in self._smoke_literals())
            if key in EXPECTED_COMMITS
        }

    def _set_expected_commits(self, tags: Mapping[str, str]) -> None:
        literals = self._smoke_literals()
        for index, item in enumerate(literals):
            key = str(item).split("=", 1)[0]
            if key in EXPECTED_COMMITS:
                tag = tags[EXPECTED_COMMITS[key]]
                value = f"{key}={'' if tag_of(tag) in SEED_TAGS else commit_of(tag)}"
                if str(item) != value:
                    literals[index] = type(item)(value) if isinstance(item, ScalarString) else value
                    self.modified = True

    def dump(self) -> str:
        stream = io.StringIO()
        self._yaml.dump(self._document, stream)
        return stream.getvalue()


def read_tags(text: str, source: str) -> dict[str, str]:
    """The tags a kustomization maps its image placeholders to."""
    return Kustomization(text, source).tags()


def edit_tags(
    text: str, tags: Mapping[str, str], source: str
) -> tuple[str, tuple[ImageChange, ...]]:
    """`text` with the given `newTag`s set, and what changed (pure)."""
    document = Kustomization(text, source)
    changes = document.set_tags(tags)
    return (document.dump() if document.modified else text), changes


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


def retarget_images(text: str, old_registry: str, new_registry: str) -> str:
    """The kustomization `text` with each `images[].newName` moved to `new_registry`.

    For a cluster that pulls from its own registry (`lab.up --registry`); a round trip,
    so comments, order and indentation stay.
    """
    yaml = _round_trip_yaml(text)
    document = yaml.load(text)
    prefix = f"{old_registry}/"
    for image in document.get("images") or []:
        name = str(image.get("newName", ""))
        if name.startswith(prefix):
            image["newName"] = f"{new_registry}/{name[len(prefix) :]}"
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _round_trip_yaml(text: str) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines
    offset = _sequence_offset(text)
    yaml.indent(mapping=2, sequence=offset + 2, offset=offset)
    return yaml


def _sequence_offset(text: str) -> int:
    """How far the author indents `- ` under its key (0 or 2, by the first list)."""
    lines = text.splitlines()
    for index, line in enumerate(lines[:-1]):
        key = re.match(r"^(\s*)[\w.-]+:\s*(#.*)?$", line)
        item = re.match(r"^(\s*)- ", lines[index + 1])
        if key and item:
            return max(0, len(item.group(1)) - len(key.group(1)))
    return 0


# -- git, through lab.proc ---------------------------------------------------------------


class Checkout:
    """A private clone of a remote in a temporary directory, with credentials for git."""

    def __init__(self, remote: Remote, root: Path, timeout: float) -> None:
        self.remote = remote
        self.root = root
        self.path = root / "repo"
        self.timeout = timeout
        self._env = {"GIT_ASKPASS": str(root / "askpass"), "GIT_TERMINAL_PROMPT": "0"}

    def git(self, *args: str, check: bool = True) -> Result:
        argv = (
            "git",
            "-c", f"user.name={BOT_NAME}",
            "-c", f"user.email={BOT_EMAIL}",
            "-c", "commit.gpgsign=false",
            "-c", "tag.gpgSign=false",
            "-c", "core.hooksPath=/dev/null",
            "-c", "credential.helper=",
            *args,
        )  # fmt: skip
        result = run(argv, timeout=self.timeout, cwd=self.path, env=self._env, check=False)
        if check and not result.ok:
            raise _git_error(result, self.remote.url)
        return result

    def fetch(self, branch: str) -> str | None:
        """Fetch `branch` into origin/<branch>; its commit, or None if there is none."""
        listed = self.git("ls-remote", "--heads", "origin", f"refs/heads/{branch}")
        if not listed.stdout.strip():
            return None
        self.git(
            "fetch",
            "-q",
            "--no-tags",
            "origin",
            f"+refs/heads/{branch}:refs/remotes/origin/{branch}",
        )
        return self.git("rev-parse", f"refs/remotes/origin/{branch}").stdout.strip()

    def checkout(self, branch: str, start: str) -> None:
        self.git("checkout", "-q", "-f", "-B", branch, start)
        self.git("clean", "-q", "-fdx")

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def commit_all(self, message: str) -> bool:
        """Stage everything and commit; False (no commit) when nothing changed."""
        self.git("add", "-A")
        if not self.git("status", "--porcelain").stdout.strip():
            return False
        self.git("commit", "-q", "-m", message)
        return True

    def push(self, ref: str, *, lease: str | None = None) -> bool:
        """Push HEAD to `ref`; False when the remote moved meanwhile (retry), else raise."""
        args = ["push", "--porcelain", "origin", f"HEAD:refs/heads/{ref}"]
        if lease is not None:
            args.insert(1, f"--force-with-lease=refs/heads/{ref}:{lease}")
        result = self.git(*args, check=False)
        if result.ok:
            return True
        if _lost_race(result.stdout + result.stderr):
            log.info("push to %s lost a race; re-fetching", self.remote.url)
            return False
        raise _git_error(result, self.remote.url)


@contextmanager
def open_checkout(remote: Remote, timeout: float = GIT_TIMEOUT) -> Iterator[Checkout]:
    root = Path(tempfile.mkdtemp(prefix="lab-gitops-"))  # mode 0700
    try:
        token_file = root / "token"
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(remote.token)
        askpass = root / "askpass"
        askpass.write_text(
            "#!/bin/sh\n"
            "# git asks for the user name, then the password; answer from private files.\n"
            'case "$1" in\n'
            f"  Username*) printf '%s\\n' {shlex.quote(remote.username)} ;;\n"
            f"  *) cat {shlex.quote(str(token_file))}; echo ;;\n"
            "esac\n",
            encoding="utf-8",
        )
        askpass.chmod(stat.S_IRWXU)
        checkout = Checkout(remote, root, timeout)
        checkout.path.mkdir()
        run(("git", "init", "-q", "-b", MAIN, str(checkout.path)), timeout=timeout)
        checkout.git("remote", "add", "origin", remote.url)
        yield checkout
    finally:
        shutil.rmtree(root, ignore_errors=True)


_RACE_MARKERS = (
    "[rejected]",
    "non-fast-forward",
    "fetch first",
    "stale info",
    "cannot lock ref",
    "failed to update ref",
    "incorrect old value",
)


def _lost_race(output: str) -> bool:
    return any(marker in output for marker in _RACE_MARKERS)


def _git_error(result: Result, url: str) -> LabError:
    """A LabError for a failed git command against `url`, saying what to do."""
    output = result.stderr or result.stdout
    lowered = output.lower()
    what = f"git {_subcommand(result.argv)}"
    if any(marker in lowered for marker in _AUTH_MARKERS):
        message = f"Gitea at {url} refused lab's credentials ({what})"
        hint = "the Gitea token in .lab/state.json is not valid; run `invoke lab.up` to renew it"
    elif any(marker in lowered for marker in _UNREACHABLE_MARKERS):
        message = f"cannot reach the git server at {url} ({what})"
        hint = (
            "is the lab up? (`invoke lab.up`; Gitea listens on 127.0.0.1 via kind's port mapping)"
        )
    elif "not found" in lowered and "repository" in lowered:
        message = f"the GitOps repository {url} does not exist ({what})"
        hint = "run `invoke lab.up`, which creates and seeds it"
    else:
        message = f"{what} failed against {url} (exit {result.returncode})"
        hint = "see the output below; `-vv` shows every git command"
    return LabError(message, hint=hint, command=shlex.join(result.argv), output_tail=_tail(output))


_AUTH_MARKERS = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "the requested url returned error: 401",
    "the requested url returned error: 403",
)
_UNREACHABLE_MARKERS = (
    "failed to connect",
    "could not resolve host",
    "couldn't connect",
    "connection refused",
    "connection timed out",
    "empty reply from server",
    "connection reset",
)


def _subcommand(argv: Sequence[str]) -> str:
    """The git subcommand in `argv` (after the `-c key=value` options)."""
    index = 1
    while index < len(argv) and argv[index] == "-c":
        index += 2
    return argv[index] if index < len(argv) else ""


def _tail(text: str, lines: int = 12) -> str:
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


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
