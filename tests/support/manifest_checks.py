"""Offline checks of what the GitOps repository renders, for the test suites.

Pure functions of rendered objects and tool output, except `analyze`, which runs
istioctl through `lab.proc.run`:

- `SchemaSet.validate` checks objects against the Kubernetes OpenAPI schemas (from the
  kubernetes-validate package) and against the real Istio and Argo CD CRD schemas
  (cached by `.ci/tools/istioctl.sh` in ~/.cache/lab/crds/);
- `check_structure` checks that the parts fit together (subsets, principals, selectors,
  probes, ...) and returns human-readable problems;
- `unmatched_patch_targets` finds patches whose target selector matches nothing, which
  kustomize silently ignores;
- `environment_diff` lists where two environments' renders differ;
- `analyze` runs `istioctl analyze --use-kube=false` on a render.

lab itself only renders (`lab.manifests`); these lint the project's own gitops/ tree.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import yaml

from lab.config import Config
from lab.errors import CommandError, LabError
from lab.manifests import (
    CACHE_DIR,
    KUSTOMIZATION_FILES,
    Manifest,
    find_tool,
    kustomize_binary,
    parse_objects,
    render,
)
from lab.proc import pasteable, run

ISTIOCTL_SCRIPT = ".ci/tools/istioctl.sh"

# The Istio build that .ci/tools/istioctl.sh fetches (istioctl and the CRDs): a commit on
# Istio's release-1.30 branch. Istio's tags lack the "v" Go wants, so the module proxy
# serves its commits only as pseudo-versions. Keep in step with the script (a unit test
# checks it).
ISTIO_MODULE_VERSION = "v0.0.0-20260826214018-9739e10eb9d7"

# Principals from outside an environment's namespace that its policies may name.
INGRESS_PRINCIPAL = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
EXTERNAL_PRINCIPALS = frozenset({INGRESS_PRINCIPAL})

# Secrets that lab code creates in each environment; the repository only names them.
EXTERNAL_SECRETS = frozenset({"demo-secrets"})

_WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job"})


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


def unmatched_patch_targets(
    root: Path, *, kustomize: str | None = None, timeout: float = 120.0
) -> list[str]:
    """Patches under `root` with a `target:` selector that change nothing.

    kustomize applies a patch to every resource its target selects and says nothing when
    that is none, so a typo in a target (or a renamed Deployment) silently undoes an
    environment's intent. For each such patch we build its kustomization with and without
    it (in a temporary copy of `root`): identical output means the patch matched nothing.
    """
    root = Path(root).resolve()
    binary = kustomize or kustomize_binary(version=Config().kustomize_version)
    problems: list[str] = []
    for kustomization in sorted(_kustomization_files(root)):
        data = yaml.safe_load(kustomization.read_text()) or {}
        patches = data.get("patches") or []
        targeted = [i for i, p in enumerate(patches) if isinstance(p, dict) and p.get("target")]
        if not targeted:
            continue
        relative = kustomization.relative_to(root)
        with tempfile.TemporaryDirectory(prefix="lab-patches-") as scratch:
            copy_root = Path(scratch) / root.name
            shutil.copytree(root, copy_root)
            copy_file = copy_root / relative
            with_all = render(copy_file.parent, kustomize=binary, timeout=timeout).text
            for index in targeted:
                without = copy.deepcopy(data)
                del without["patches"][index]
                copy_file.write_text(yaml.safe_dump(without, sort_keys=False))
                try:
                    text = render(copy_file.parent, kustomize=binary, timeout=timeout).text
                finally:
                    copy_file.write_text(kustomization.read_text())
                if text == with_all:
                    target = patches[index]["target"]
                    problems.append(
                        f"{relative}: patches[{index}] target {_describe_target(target)} "
                        "changes nothing: it matches no resource, or a later field such as "
                        "replicas: overrides it (kustomize says nothing)"
                    )
    return problems


def _kustomization_files(root: Path) -> Iterator[Path]:
    for name in KUSTOMIZATION_FILES:
        yield from root.rglob(name)


def _describe_target(target: Mapping[str, Any]) -> str:
    parts = [
        f"{key}={target[key]}"
        for key in ("group", "version", "kind", "name", "namespace")
        if key in target
    ]
    for key in ("labelSelector", "annotationSelector"):
        if key in target:
            parts.append(f"{key}={target[key]}")
    return "{" + ", ".join(parts) + "}"


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


def describe(obj: Mapping[str, Any]) -> str:
    """`Kind/name` (and `in namespace`), for messages."""
    meta = obj.get("metadata") or {}
    text = f"{obj.get('kind', '?')}/{meta.get('name', '?')}"
    return f"{text} in {meta['namespace']}" if meta.get("namespace") else text


# --------------------------------------------------------------------------- structure


def check_structure(
    objects: Sequence[Manifest],
    *,
    external_principals: frozenset[str] = EXTERNAL_PRINCIPALS,
    external_secrets: frozenset[str] = EXTERNAL_SECRETS,
) -> list[str]:
    """Ways in which the rendered objects do not fit together, as readable sentences."""
    problems: list[str] = []
    problems += _check_services(objects)
    problems += _check_subsets(objects)
    problems += _check_weights(objects)
    problems += _check_principals(objects, external_principals)
    problems += _check_policy_selectors(objects)
    problems += _check_references(objects, external_secrets)
    problems += _check_workloads(objects)
    return problems


def _of_kind(objects: Iterable[Manifest], *kinds: str) -> list[Manifest]:
    return [o for o in objects if o.get("kind") in kinds]


def _ns(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _pod_template(workload: Mapping[str, Any]) -> Mapping[str, Any]:
    template: Mapping[str, Any] = (workload.get("spec") or {}).get("template") or {}
    return template


def _pod_labels(workload: Mapping[str, Any]) -> dict[str, str]:
    return dict((_pod_template(workload).get("metadata") or {}).get("labels") or {})


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _deployments_selected(
    objects: Sequence[Manifest], namespace: str, selector: Mapping[str, str]
) -> list[Manifest]:
    return [
        d
        for d in _of_kind(objects, "Deployment", "StatefulSet")
        if _ns(d) == namespace and _selects(selector, _pod_labels(d))
    ]


def _check_services(objects: Sequence[Manifest]) -> list[str]:
    problems = []
    for service in _of_kind(objects, "Service"):
        selector = (service.get("spec") or {}).get("selector") or {}
        if not selector:
            problems.append(f"{describe(service)} has no selector")
            continue
        selected = _deployments_selected(objects, _ns(service), selector)
        if not selected:
            problems.append(f"{describe(service)} selects no Deployment (selector {selector})")
            continue
        for port in (service.get("spec") or {}).get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            if isinstance(target, str):
                for workload in selected:
                    names = {
                        p.get("name")
                        for c in (_pod_template(workload).get("spec") or {}).get("containers") or []
                        for p in c.get("ports") or []
                    }
                    if target not in names:
                        problems.append(
                            f"{describe(service)} port {port.get('name')!r} targets container port "
                            f"{target!r}, which {describe(workload)} does not declare"
                        )
    return problems


def _short_host(host: str, namespace: str) -> str:
    """`backend`, `backend.demo-dev`, `backend.demo-dev.svc.cluster.local` -> `backend`."""
    parts = host.split(".")
    if len(parts) == 1:
        return host
    if len(parts) >= 2 and parts[1] == namespace:
        return parts[0]
    return host  # another namespace or an external host


def _service(objects: Sequence[Manifest], host: str, namespace: str) -> Manifest | None:
    short = _short_host(host, namespace)
    for service in _of_kind(objects, "Service"):
        if _name(service) == short and _ns(service) == namespace:
            return service
    return None


def _route_destinations(vs: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    spec = vs.get("spec") or {}
    for protocol in ("http", "tcp", "tls"):
        for index, route in enumerate(spec.get(protocol) or []):
            label = route.get("name") or f"{protocol}[{index}]"
            for destination in route.get("route") or []:
                yield label, destination.get("destination") or {}
            mirror = route.get("mirror")
            if mirror:
                yield label, mirror


def _check_subsets(objects: Sequence[Manifest]) -> list[str]:
    problems = []
    rules = _of_kind(objects, "DestinationRule")
    for vs in _of_kind(objects, "VirtualService"):
        namespace = _ns(vs)
        for label, destination in _route_destinations(vs):
            host = str(destination.get("host", ""))
            service = _service(objects, host, namespace)
            if service is None:
                problems.append(
                    f"{describe(vs)} route {label!r} sends to {host!r}, which is no Service here"
                )
                continue
            subset = destination.get("subset")
            if not subset:
                continue
            matching = [
                r
                for r in rules
                if _ns(r) == namespace
                and _short_host(str((r.get("spec") or {}).get("host", "")), namespace)
                == _name(service)
            ]
            if not matching:
                problems.append(
                    f"{describe(vs)} route {label!r} uses subset {subset!r} of {host!r}, "
                    "which has no DestinationRule"
                )
                continue
            subsets = {
                s.get("name"): s
                for r in matching
                for s in (r.get("spec") or {}).get("subsets") or []
            }
            if subset not in subsets:
                problems.append(
                    f"{describe(vs)} route {label!r} uses subset {subset!r}, which "
                    f"DestinationRule {_name(matching[0])} does not define "
                    f"(it has {sorted(subsets)})"
                )
                continue
            labels = dict(subsets[subset].get("labels") or {})
            selector = {**((service.get("spec") or {}).get("selector") or {}), **labels}
            pods = _deployments_selected(objects, namespace, selector)
            if not pods:
                problems.append(
                    f"subset {subset!r} of {host!r} (labels {labels}) "
                    f"selects no pods in {namespace}"
                )
            for workload in pods:
                version = _pod_labels(workload).get("version")
                if version != subset:
                    problems.append(
                        f"subset {subset!r} of {host!r} selects {describe(workload)}, "
                        "whose pods are "
                        f"version {version!r}, not {subset!r}"
                    )
    return problems


def _check_weights(objects: Sequence[Manifest]) -> list[str]:
    problems = []
    for vs in _of_kind(objects, "VirtualService"):
        for index, route in enumerate((vs.get("spec") or {}).get("http") or []):
            destinations = route.get("route") or []
            if len(destinations) > 1:
                weights = [d.get("weight", 0) for d in destinations]
                if sum(weights) != 100:
                    label = route.get("name") or f"http[{index}]"
                    problems.append(
                        f"{describe(vs)} route {label!r} weights {weights} do not add up to 100"
                    )
    return problems


_PRINCIPAL = re.compile(r"^(?P<domain>[^/]+)/ns/(?P<ns>[^/]+)/sa/(?P<sa>[^/]+)$")


def _principals(policy: Mapping[str, Any]) -> Iterator[str]:
    for rule in (policy.get("spec") or {}).get("rules") or []:
        for source in rule.get("from") or []:
            yield from (source.get("source") or {}).get("principals") or []


def _check_principals(objects: Sequence[Manifest], external: frozenset[str]) -> list[str]:
    problems = []
    accounts = {(_ns(sa), _name(sa)) for sa in _of_kind(objects, "ServiceAccount")}
    for policy in _of_kind(objects, "AuthorizationPolicy"):
        namespace = _ns(policy)
        for principal in _principals(policy):
            if principal in external:
                continue
            match = _PRINCIPAL.match(principal)
            if not match:
                problems.append(
                    f"{describe(policy)} names principal {principal!r}, "
                    "not <domain>/ns/<ns>/sa/<name>"
                )
            elif match.group("ns") != namespace:
                problems.append(
                    f"{describe(policy)} names principal {principal!r} from namespace "
                    f"{match.group('ns')!r}, not its own {namespace!r}"
                )
            elif (namespace, match.group("sa")) not in accounts:
                problems.append(
                    f"{describe(policy)} names principal {principal!r}, but there is no "
                    f"ServiceAccount {match.group('sa')!r} in {namespace}"
                )
    return problems


def _check_policy_selectors(objects: Sequence[Manifest]) -> list[str]:
    problems = []
    for policy in _of_kind(objects, "AuthorizationPolicy", "PeerAuthentication"):
        selector = ((policy.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if selector and not _deployments_selected(objects, _ns(policy), selector):
            problems.append(f"{describe(policy)} selects no workload (matchLabels {selector})")
    return problems


def _check_references(objects: Sequence[Manifest], external_secrets: frozenset[str]) -> list[str]:
    problems = []
    have = {(o.get("kind"), _ns(o), _name(o)) for o in objects}
    for workload in _of_kind(objects, *_WORKLOAD_KINDS):
        namespace = _ns(workload)
        spec = _pod_template(workload).get("spec") or {}
        account = spec.get("serviceAccountName")
        if account and ("ServiceAccount", namespace, account) not in have:
            problems.append(
                f"{describe(workload)} runs as ServiceAccount {account!r}, which does not exist"
            )
        for kind, name in _pod_references(spec):
            if kind == "Secret" and name in external_secrets:
                continue
            if (kind, namespace, name) not in have:
                problems.append(
                    f"{describe(workload)} refers to {kind} {name!r}, which does not exist"
                )
    return problems


def _pod_references(spec: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    for container in containers:
        for source in container.get("envFrom") or []:
            if "configMapRef" in source and not source["configMapRef"].get("optional"):
                yield "ConfigMap", source["configMapRef"]["name"]
            if "secretRef" in source and not source["secretRef"].get("optional"):
                yield "Secret", source["secretRef"]["name"]
        for variable in container.get("env") or []:
            ref = variable.get("valueFrom") or {}
            if "configMapKeyRef" in ref and not ref["configMapKeyRef"].get("optional"):
                yield "ConfigMap", ref["configMapKeyRef"]["name"]
            if "secretKeyRef" in ref and not ref["secretKeyRef"].get("optional"):
                yield "Secret", ref["secretKeyRef"]["name"]
    for volume in spec.get("volumes") or []:
        if "configMap" in volume:
            yield "ConfigMap", volume["configMap"]["name"]
        if "secret" in volume:
            yield "Secret", volume["secret"]["secretName"]
        if "persistentVolumeClaim" in volume:
            yield "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]


def _check_workloads(objects: Sequence[Manifest]) -> list[str]:
    """Resources, probes and a non-root, read-only container for every workload."""
    problems = []
    for workload in _of_kind(objects, *_WORKLOAD_KINDS):
        label = describe(workload)
        spec = _pod_template(workload).get("spec") or {}
        pod_security = spec.get("securityContext") or {}
        for container in spec.get("containers") or []:
            who = f"{label} container {container.get('name')!r}"
            security = container.get("securityContext") or {}
            image = str(container.get("image", ""))
            if "/" not in image and ":" not in image:
                problems.append(f"{who} has image {image!r}, a placeholder no images: entry mapped")
            resources = container.get("resources") or {}
            for part in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in (resources.get(part) or {}):
                        problems.append(f"{who} sets no {part}.{resource}")
            if workload.get("kind") != "Job":
                for probe in ("readinessProbe", "livenessProbe"):
                    if probe not in container:
                        problems.append(f"{who} has no {probe}")
            if not (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")):
                problems.append(f"{who} may run as root (set runAsNonRoot)")
            if not security.get("readOnlyRootFilesystem"):
                problems.append(f"{who} has a writable root filesystem")
            if security.get("allowPrivilegeEscalation", True):
                problems.append(f"{who} allows privilege escalation")
    return problems


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
        _name(o): _HASH_SUFFIX.sub("", _name(o))
        for o in objects
        if o.get("kind") in ("ConfigMap", "Secret") and _HASH_SUFFIX.search(_name(o))
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

    return {(str(o.get("kind")), str(clean(_name(o)))): clean(o) for o in objects}


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


# --------------------------------------------------------------------------- istioctl


def analyze(
    rendering_text: str,
    *,
    istioctl: str | None = None,
    context: Sequence[Path] = (),
    timeout: float = 180.0,
) -> list[str]:
    """`istioctl analyze --use-kube=false` on a render (plus `context` files that stand in
    for what the cluster already has, such as the ingress gateway); its messages."""
    binary = istioctl or istioctl_binary()
    with tempfile.TemporaryDirectory(prefix="lab-analyze-") as scratch:
        rendered = Path(scratch) / "rendered.yaml"
        rendered.write_text(rendering_text)
        argv = [
            binary,
            "analyze",
            "--use-kube=false",
            "--all-namespaces",
            "--output-threshold=Info",
            "--failure-threshold=Error",
            str(rendered),
            *map(str, context),
        ]
        result = run(argv, timeout=timeout, check=False)
    messages = parse_analyze_output(result.stdout + "\n" + result.stderr)
    if result.returncode != 0 and not messages:
        raise CommandError(
            f"istioctl analyze failed with exit code {result.returncode}",
            argv=result.argv,
            returncode=result.returncode,
            command=pasteable(result.argv),
            output_tail=(result.stderr or result.stdout)[-2000:],
        )
    return messages


_ANALYZE_MESSAGE = re.compile(r"^(Error|Warning|Info)\s+\[IST\d+\]")


def parse_analyze_output(output: str) -> list[str]:
    """The messages (`Warning [IST0101] (Gateway ...) ...`) in istioctl analyze's output."""
    return [line.strip() for line in output.splitlines() if _ANALYZE_MESSAGE.match(line.strip())]
