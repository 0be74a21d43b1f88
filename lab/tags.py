"""The image pins of the GitOps repository, read and written (pure).

What changes over time in the repository is the `newTag` and `digest` of each image
placeholder in `environments/<env>/kustomization.yaml`. A deploy pins each image to the
digest the registry gave its tag (`<tag>@sha256:…`), so a tag pushed again later cannot
change what runs. Edits are structural (a ruamel.yaml round trip: comments, key order
and quoting kept).

A/B semantics: a deploy sets v1 ← the tag currently live as v2 and v2 ← the new commit
(both new on the first deploy, when the tags are still seed values like `main`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import ScalarString

from lab.errors import LabError

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


@dataclass(frozen=True)
class ImageChange:
    """One `images:` entry whose `newTag` changes."""

    name: str  # the placeholder, e.g. backend-v2
    image: str  # its newName, e.g. localhost:5001/lab/backend
    old: str
    new: str


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
