"""Render the GitOps repository (`gitops/`) with kustomize, and explain its failures.

`render` builds a kustomization through `lab.proc.run` and turns kustomize's error
chains into a `LabError` naming the kustomization file and the patch target at fault;
the smoke stage renders an environment to take its smoke-test Job (`smoke_job`).
The quality stage lints what it renders (`lab.gitops_lint`); the checks that need the
CRD schemas and istioctl analyze run in the test suites (tests/support/manifest_checks).
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab.errors import LabError, ToolNotFound
from lab.proc import pasteable, run, which

Manifest = dict[str, Any]

CACHE_DIR = Path.home() / ".cache" / "lab"

KUSTOMIZE_SCRIPT = ".ci/tools/kustomize.sh"

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


# --------------------------------------------------------------------------- tools


def kustomize_binary(environ: Mapping[str, str] | None = None, *, version: str) -> str:
    """The kustomize to use: $LAB_KUSTOMIZE, the build of `version` (the lab config's
    kustomize_version) in ~/.cache/lab, the one `invoke lab.tools` put in .lab/bin/, or
    PATH."""
    return find_tool(
        "kustomize",
        "LAB_KUSTOMIZE",
        CACHE_DIR / f"kustomize-{version}" / "kustomize",
        KUSTOMIZE_SCRIPT,
        os.environ if environ is None else environ,
    )


def find_tool(
    name: str, variable: str, cached: Path, script: str, environ: Mapping[str, str]
) -> str:
    """`name` from $`variable`, else the `cached` build, else .lab/bin or PATH.

    `lab.proc.which` does the last two, so `invoke lab.tools` downloads win over PATH.
    A missing tool is a ToolNotFound whose hint names both ways to get it.
    """
    explicit = environ.get(variable, "").strip()
    if explicit:
        if Path(explicit).is_file() and os.access(explicit, os.X_OK):
            return explicit
        raise ToolNotFound(
            f"{variable} is set to {explicit}, which is not an executable file",
            hint=f"unset {variable}, or point it at a {name} binary (`bash {script}` builds one)",
        )
    if cached.is_file() and os.access(cached, os.X_OK):
        return str(cached)
    found = which(name)
    if found:
        return found
    raise ToolNotFound(
        f"{name} is not installed (not in ${variable}, {cached}, .lab/bin/ nor on PATH)",
        hint=f"run `invoke lab.tools --only {name}` to fetch the pinned release into "
        f".lab/bin/, or `bash {script}` to build it into {cached.parent}",
    )


# --------------------------------------------------------------------------- render


@dataclass(frozen=True)
class Rendering:
    """What `kustomize build` made of one directory."""

    directory: Path
    text: str
    objects: tuple[Manifest, ...]

    def find(self, kind: str, name: str) -> Manifest:
        """The object of `kind` named `name`; KeyError when there is none."""
        for obj in self.objects:
            if obj.get("kind") == kind and obj.get("metadata", {}).get("name") == name:
                return obj
        raise KeyError(f"{kind}/{name}")


def render(directory: Path, *, kustomize: str, timeout: float = 120.0) -> Rendering:
    """`kustomize build directory` with the `kustomize` binary (`kustomize_binary`),
    parsed; a failed build raises a LabError that says why."""
    directory = Path(directory)
    result = run((kustomize, "build", str(directory)), timeout=timeout, check=False)
    if not result.ok:
        raise explain_kustomize_failure(
            directory, result.stderr or result.stdout, command=pasteable(result.argv)
        )
    objects = tuple(parse_objects(result.stdout))
    return Rendering(directory, result.stdout, objects)


def smoke_job(rendering: Rendering) -> Manifest:
    """A copy of the environment's smoke-test Job, for lab code to create.

    Argo CD never applies it (`argocd.argoproj.io/hook: Skip`); lab code deletes the
    previous run and creates this one after each deploy (gitops/README.md).
    """
    try:
        return copy.deepcopy(rendering.find("Job", "smoke-test"))
    except KeyError:
        raise LabError(
            f"{rendering.directory} renders no Job smoke-test",
            hint="restore gitops/smoke-test/base and its entry in environments/base",
        ) from None


def parse_objects(text: str) -> Iterator[Manifest]:
    """The objects of a multi-document YAML stream, skipping empty documents."""
    # libyaml's loader, when PyYAML has it, reads the big CRD files ten times faster.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for document in yaml.load_all(text, Loader=loader):  # a safe loader
        if isinstance(document, dict) and document:
            yield document


_RECURSED = re.compile(r"recursed accumulation of path '([^']+)'")
_NO_MATCH = re.compile(r"no matches for (?:Id|OriginalId) ([^;\s]+)")
_UNIQUE_TARGET = re.compile(r"failed to find unique target for patch ([^;\s]+)")
_RESID = re.compile(
    r"^(?P<kind>[^.]+)\.(?P<version>[^./]+)(?:\.(?P<group>[^/]*))?/(?P<name>[^.]+(?:\.[^.[]+)*)\.\[(?P<ns>[^\]]*)\]$"
)


def explain_kustomize_failure(root: Path, output: str, *, command: str | None = None) -> LabError:
    """A LabError for kustomize's `output`, naming the kustomization file at fault.

    kustomize reports a chain of "recursed accumulation of path '<dir>'" clauses; the
    last one is the kustomization that failed. For a patch whose target does not exist
    it names the target as a resource id (`Deployment.v1.apps/backend-v3.[noNs]`),
    which we turn back into "Deployment backend-v3" and the patch entry that asked for it.
    """
    built = Path(root)
    repository = repository_root(built)
    dirs = _RECURSED.findall(output)
    failing_dir = Path(dirs[-1]) if dirs else built
    kustomization = find_kustomization(failing_dir) or failing_dir / "kustomization.yaml"
    shown = _relative(kustomization, repository)
    target_id = _first(_NO_MATCH, output) or _first(_UNIQUE_TARGET, output)
    if target_id:
        kind, name = _parse_resid(target_id)
        patch = _patch_naming(kustomization, kind, name)
        where = f" (patch {patch})" if patch else ""
        return LabError(
            f"{shown}: patch target {kind} {name!r} matches no resource{where}",
            hint=(
                f"fix the patch target in {shown}: name a {kind} that its resources define "
                "(by the name the base gives it, before any name suffix), or remove the patch"
            ),
            command=command,
            output_tail=_last_clause(output),
        )
    return LabError(
        f"kustomize cannot build {_relative(built, repository)}: the error is in {shown}",
        hint=f"fix {shown}; run the command to see kustomize's full message",
        command=command,
        output_tail=_last_clause(output),
    )


def repository_root(directory: Path) -> Path:
    """The GitOps repository `directory` belongs to: the nearest ancestor with an
    `environments/` folder (the layout of gitops/), for naming files in messages."""
    directory = Path(directory).resolve()
    for candidate in (directory, *directory.parents):
        if (candidate / "environments").is_dir():
            return candidate
    return directory.parent


def find_kustomization(directory: Path) -> Path | None:
    """The kustomization file of `directory`, if it has one."""
    for name in KUSTOMIZATION_FILES:
        candidate = Path(directory) / name
        if candidate.is_file():
            return candidate
    return None


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match.group(1) if match else None


def _parse_resid(resid: str) -> tuple[str, str]:
    match = _RESID.match(resid.strip().strip('"'))
    if not match:
        return ("resource", resid)
    return (match.group("kind"), match.group("name"))


def _last_clause(output: str) -> str:
    # kustomize prints one long line of nested causes; the innermost one is the news.
    text = output.strip().splitlines()[-1] if output.strip() else ""
    return text.rsplit("': ", 1)[-1] if "recursed accumulation" in text else text


def _relative(path: Path, root: Path) -> str:
    path, root = Path(path).resolve(), Path(root).resolve()
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _patch_naming(kustomization: Path, kind: str, name: str) -> str | None:
    """The patches entry of `kustomization` that targets `kind`/`name`, described."""
    try:
        data = yaml.safe_load(kustomization.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    entries = list(data.get("patches") or []) + [
        {"path": p} for p in data.get("patchesStrategicMerge") or [] if isinstance(p, str)
    ]
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        target = entry.get("target") or {}
        if target.get("name") == name and target.get("kind", kind) == kind:
            return f"target {kind}/{name}"
        path = entry.get("path")
        if path:
            try:
                docs = list(parse_objects((kustomization.parent / path).read_text()))
            except (OSError, yaml.YAMLError):
                continue
            for doc in docs:
                if doc.get("kind") == kind and doc.get("metadata", {}).get("name") == name:
                    return f"file {path}"
    return None
