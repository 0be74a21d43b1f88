"""Offline checks of what the GitOps repository renders, for the test suites only.

The structure checks, the patch targets and `istioctl analyze` are lab's own (the
quality stage's `gitops` row: `lab.gitops_structure`, `lab.gitops_lint`); these need
what a user's machine lacks, the CRD schemas and the Istio build `.ci/tools/istioctl.sh`
caches:

- `SchemaSet.validate` checks objects against the Kubernetes OpenAPI schemas (from the
  kubernetes-validate package) and against the real Istio and Argo CD CRD schemas
  (cached by `.ci/tools/istioctl.sh` in ~/.cache/lab/crds/);
- `environment_diff` lists where two environments' renders differ;
- `istioctl_binary` finds the pinned istioctl build.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from lab.config import Config
from lab.errors import LabError
from lab.gitops_structure import (
    describe,
    object_name,
)
from lab.manifests import (
    CACHE_DIR,
    Manifest,
    find_tool,
    parse_objects,
)

ISTIOCTL_SCRIPT = ".ci/tools/istioctl.sh"

# The Istio build that .ci/tools/istioctl.sh fetches (istioctl and the CRDs): a commit on
# Istio's release-1.30 branch. Istio's tags lack the "v" Go wants, so the module proxy
# serves its commits only as pseudo-versions. Keep in step with the script (a unit test
# checks it).
ISTIO_MODULE_VERSION = "v0.0.0-20260826214018-9739e10eb9d7"


def istioctl_binary(environ: Mapping[str, str] | None = None) -> str:
    """The istioctl to use: $LAB_ISTIOCTL, the pinned build in ~/.cache/lab, the one
    `invoke lab.tools` put in .lab/bin/, or PATH."""
    return find_tool(
        "istioctl",
        "LAB_ISTIOCTL",
        CACHE_DIR / f"istioctl-{ISTIO_MODULE_VERSION}" / "istioctl",
        ISTIOCTL_SCRIPT,
        os.environ if environ is None else environ,
    )


# --------------------------------------------------------------------------- schemas


def kubernetes_version(config: Config | None = None) -> str:
    """The cluster's Kubernetes minor version ("1.36"), from the pinned kind node image."""
    image = (config or Config()).kind_node_image
    match = re.search(r":v(\d+\.\d+)", image)
    if not match:
        raise LabError(
            f"cannot read a Kubernetes version from {image!r}", hint="fix kind_node_image"
        )
    return match.group(1)


def crd_files(cache: Path | None = None, *, argocd_version: str | None = None) -> list[Path]:
    """The Istio and Argo CD CRD files that `.ci/tools/istioctl.sh` caches."""
    base = (cache or CACHE_DIR) / "crds"
    argocd = argocd_version or Config().argocd_version
    files = [
        base / f"istio-{ISTIO_MODULE_VERSION}" / "crd-all.gen.yaml",
        base / f"argocd-{argocd}" / "application-crd.yaml",
        base / f"argocd-{argocd}" / "appproject-crd.yaml",
    ]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise LabError(
            f"CRD schemas are not cached: {', '.join(missing)}",
            hint=f"run `bash {ISTIOCTL_SCRIPT}`: it caches them (and builds istioctl)",
        )
    return files


@dataclass(frozen=True)
class _Validator:
    validator: _SchemaValidator
    source: str


@dataclass
class SchemaSet:
    """Schemas for every kind the lab deploys, loaded once and reused.

    Built-in kinds use kubernetes-validate's strict JSON schemas (unknown fields are
    errors). Custom resources use their CRD's openAPIV3Schema, made strict the same way.
    """

    kubernetes: str
    crds: Sequence[Path]
    _crd_schemas: dict[tuple[str, str], Manifest] = field(default_factory=dict, init=False)
    _cache: dict[tuple[str, str], _Validator | None] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for path in self.crds:
            for crd in parse_objects(Path(path).read_text()):
                if crd.get("kind") != "CustomResourceDefinition":
                    continue
                spec = crd["spec"]
                for version in spec.get("versions", []):
                    schema = (version.get("schema") or {}).get("openAPIV3Schema")
                    if schema:
                        key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                        self._crd_schemas[key] = schema

    def validate(self, obj: Manifest) -> list[str]:
        """Schema problems of one object, each naming the object and the field."""
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        label = describe(obj)
        if not api_version or not kind:
            return [f"{label}: apiVersion and kind are required"]
        checker = self._validator(api_version, kind)
        if checker is None:
            return [
                f"{label}: no schema for {kind} in {api_version} "
                f"(Kubernetes {self.kubernetes}, cached CRDs)"
            ]
        problems = []
        for error in sorted(
            checker.validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))
        ):
            where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
            message = error.message if len(error.message) < 300 else error.message[:297] + "..."
            problems.append(f"{label}: {where}: {message} [{checker.source}]")
        if not obj.get("metadata", {}).get("name"):
            problems.append(f"{label}: metadata.name is required")
        return problems

    def _validator(self, api_version: str, kind: str) -> _Validator | None:
        key = (api_version, kind)
        if key not in self._cache:
            self._cache[key] = self._load(api_version, kind)
        return self._cache[key]

    def _load(self, api_version: str, kind: str) -> _Validator | None:
        jsonschema, referencing = _schema_libraries()
        crd_schema = self._crd_schemas.get((api_version, kind))
        if crd_schema is not None:
            strict = strict_openapi(crd_schema)
            return _Validator(jsonschema.Draft4Validator(strict), f"CRD {kind}.{api_version}")
        schema_dir = _kubernetes_schema_dir(self.kubernetes)
        # kubernetes-validate names files <kind>-<group prefix>-<version>.json
        short = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        path = schema_dir / f"{kind.lower()}-{short}.json"
        if not path.is_file():
            return None
        schema = json.loads(path.read_text())
        registry = referencing.Resource.from_contents(schema) @ referencing.Registry()
        registry = _definitions(schema_dir) @ registry
        validator = jsonschema.Draft202012Validator(schema, registry=registry)
        return _Validator(validator, f"Kubernetes {schema_dir.name}")

    def validate_all(self, objects: Iterable[Manifest]) -> list[str]:
        return [problem for obj in objects for problem in self.validate(obj)]


@lru_cache(maxsize=4)
def _definitions(schema_dir: Path) -> Any:
    _, referencing = _schema_libraries()
    contents = json.loads((schema_dir / "_definitions.json").read_text())
    return referencing.Resource.from_contents(contents)


def _schema_libraries() -> tuple[Any, Any]:
    """jsonschema and referencing, imported when validation runs: they are test
    dependencies, and lab code that only renders must not need them."""
    modules = []
    for name in ("jsonschema", "referencing"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            raise LabError(
                f"schema validation needs the Python package {name}",
                hint="install the project's test dependencies (jsonschema, kubernetes-validate)",
            ) from None
    return modules[0], modules[1]


class _SchemaError(Protocol):
    @property
    def message(self) -> str: ...

    @property
    def absolute_path(self) -> Iterable[str | int]: ...


class _SchemaValidator(Protocol):
    def iter_errors(self, instance: Any) -> Iterable[_SchemaError]: ...


def _kubernetes_schema_dir(version: str) -> Path:
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or spec.origin is None:
        raise LabError(
            "the Python package kubernetes-validate is not installed",
            hint="install the project's test dependencies (it ships Kubernetes' JSON schemas)",
        )
    base = Path(spec.origin).parent / "kubernetes-json-schema"

    def minor(name: str) -> tuple[int, int]:
        major, minor_, *_ = name.lstrip("v").split("-")[0].split(".")
        return (int(major), int(minor_))

    wanted = minor(version)
    candidates = sorted(
        (d for d in base.iterdir() if d.name.endswith("-local-strict") and minor(d.name) <= wanted),
        key=lambda d: minor(d.name),
    )
    if not candidates:
        raise LabError(
            f"kubernetes-validate has no schemas for Kubernetes {version}",
            hint="upgrade kubernetes-validate",
        )
    return candidates[-1]


def strict_openapi(schema: Manifest) -> Manifest:
    """A JSON-schema copy of a CRD's OpenAPI v3 schema that rejects unknown fields.

    The API server prunes unknown fields silently; for validation we want a typo in a
    VirtualService to be an error, so objects with declared properties get
    `additionalProperties: false` (unless they preserve unknown fields), and OpenAPI's
    `nullable` becomes a JSON-schema null type.
    """

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: convert(value) for key, value in node.items()}
        if out.pop("nullable", False) and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out

    strict: Manifest = convert(schema)
    # CRDs leave out the fields every object has; ObjectMeta is the API server's business.
    properties = strict.setdefault("properties", {})
    properties.setdefault("apiVersion", {"type": "string"})
    properties.setdefault("kind", {"type": "string"})
    properties["metadata"] = {"type": "object"}
    return strict


# --------------------------------------------------------------------------- environments


@dataclass(frozen=True)
class Difference:
    """One field that differs between two renders of the same repository."""

    object: str  # Kind/name
    path: str  # dotted path inside the object
    left: Any
    right: Any

    def __str__(self) -> str:
        return f"{self.object} {self.path}: {self.left!r} -> {self.right!r}"


_HASH_SUFFIX = re.compile(r"-[a-z0-9]{10}$")


def environment_diff(
    left: Sequence[Manifest], right: Sequence[Manifest], *, left_ns: str, right_ns: str
) -> list[Difference]:
    """Where two environments differ, once their namespaces and generated-name hashes
    are set aside (those always differ, and say nothing about intent)."""
    a = _normalise(left, left_ns)
    b = _normalise(right, right_ns)
    differences: list[Difference] = []
    for key in sorted(set(a) | set(b)):
        label = "/".join(key)
        if key not in a or key not in b:
            differences.append(Difference(label, "", key in a, key in b))
            continue
        differences.extend(
            Difference(label, path, x, y) for path, x, y in _diff_values(a[key], b[key], "")
        )
    return differences


def _normalise(objects: Sequence[Manifest], namespace: str) -> dict[tuple[str, str], Any]:
    hashed = {
        object_name(o): _HASH_SUFFIX.sub("", object_name(o))
        for o in objects
        if o.get("kind") in ("ConfigMap", "Secret") and _HASH_SUFFIX.search(object_name(o))
    }

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str):
            if value in hashed:
                return hashed[value]
            return value.replace(namespace, "<namespace>")
        return value

    return {(str(o.get("kind")), str(clean(object_name(o)))): clean(o) for o in objects}


def _diff_values(x: Any, y: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    if isinstance(x, dict) and isinstance(y, dict):
        for key in sorted(set(x) | set(y), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in x or key not in y:
                yield sub, x.get(key), y.get(key)
            else:
                yield from _diff_values(x[key], y[key], sub)
    elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        for index, (i, j) in enumerate(zip(x, y, strict=True)):
            yield from _diff_values(i, j, f"{path}[{index}]")
    elif x != y:
        yield path, x, y
