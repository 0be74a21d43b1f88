"""Whether what the GitOps repository renders fits together: pure checks of rendered
objects (`check_structure`), each problem a readable sentence.

What kustomize cannot see: Services select pods; routes lead to Services and subsets
that exist, with weights that add up; authorization policies name known principals and
select workloads; pods refer to ConfigMaps, Secrets and service accounts that are
there; every container has an image the `images:` entries set, requests and limits,
probes, and runs as non-root on a read-only root filesystem. The quality stage's
`gitops` row runs them (`lab.gitops_lint`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from lab.manifests import Manifest

# Principals from outside an environment's namespace that its policies may name.
INGRESS_PRINCIPAL = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
EXTERNAL_PRINCIPALS = frozenset({INGRESS_PRINCIPAL})

# Secrets that lab code creates in each environment; the repository only names them.
EXTERNAL_SECRETS = frozenset({"demo-secrets"})

_WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job"})


def describe(obj: Mapping[str, Any]) -> str:
    """`Kind/name` (and `in namespace`), for messages."""
    meta = obj.get("metadata") or {}
    text = f"{obj.get('kind', '?')}/{meta.get('name', '?')}"
    return f"{text} in {meta['namespace']}" if meta.get("namespace") else text


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


def object_name(obj: Mapping[str, Any]) -> str:
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
        if object_name(service) == short and _ns(service) == namespace:
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
                == object_name(service)
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
                    f"DestinationRule {object_name(matching[0])} does not define "
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
    accounts = {(_ns(sa), object_name(sa)) for sa in _of_kind(objects, "ServiceAccount")}
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
    have = {(o.get("kind"), _ns(o), object_name(o)) for o in objects}
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
