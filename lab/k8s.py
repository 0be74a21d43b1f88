"""The Kubernetes API, through the kubernetes client: apply, read, wait, events, logs.

The decisions (apply order, rollout status, CRD readiness) are pure functions over the
objects' dicts, tested on captured real objects; the API calls are thin.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import urllib3.exceptions
import yaml
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from lab.changes import Changes
from lab.errors import LabError, NotMadeYet
from lab.wait import Observation

FIELD_MANAGER = "lab"

# -- pure decisions -----------------------------------------------------------------------

# Objects others depend on go first: a namespace before what lives in it, a CRD before its
# custom resources, service accounts and RBAC before the workloads that use them.
_APPLY_RANK = {
    "Namespace": 0,
    "CustomResourceDefinition": 1,
    "ServiceAccount": 2,
    "ClusterRole": 2,
    "Role": 2,
    "ClusterRoleBinding": 3,
    "RoleBinding": 3,
    "ConfigMap": 4,
    "Secret": 4,
    "PersistentVolumeClaim": 4,
    "Service": 5,
}


def apply_order(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects in a safe apply order (stable within each rank)."""
    return sorted(objects, key=lambda obj: _APPLY_RANK.get(str(obj.get("kind")), 6))


def split_crds(
    objects: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    crds = [obj for obj in objects if obj.get("kind") == "CustomResourceDefinition"]
    rest = [obj for obj in objects if obj.get("kind") != "CustomResourceDefinition"]
    return crds, rest


def crd_established(crd: dict[str, Any]) -> Observation:
    conditions = crd.get("status", {}).get("conditions") or []
    for condition in conditions:
        if condition.get("type") == "Established" and condition.get("status") == "True":
            return Observation(True, "established")
    return Observation(False, f"{crd.get('metadata', {}).get('name')} not established yet")


def rollout_status(deployment: dict[str, Any]) -> Observation:
    """kubectl's rollout-status rules for a Deployment."""
    name = deployment.get("metadata", {}).get("name", "?")
    spec = deployment.get("spec", {})
    status = deployment.get("status", {})
    generation = deployment.get("metadata", {}).get("generation", 0)
    if status.get("observedGeneration", 0) < generation:
        return Observation(False, f"{name}: waiting for the controller to observe the update")
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "Progressing"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return Observation(
                False,
                f"{name}: progress deadline exceeded ({condition.get('message')})",
                failed=True,
            )
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    total = status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < wanted:
        return Observation(False, f"{name}: {updated} of {wanted} new replicas updated")
    if total > updated:
        return Observation(False, f"{name}: {total - updated} old replicas pending termination")
    if available < updated:
        return Observation(False, f"{name}: {available} of {updated} updated replicas available")
    return Observation(True, f"{name}: {available}/{wanted} available")


def statefulset_status(statefulset: dict[str, Any]) -> Observation:
    name = statefulset.get("metadata", {}).get("name", "?")
    wanted = statefulset.get("spec", {}).get("replicas", 1)
    ready = statefulset.get("status", {}).get("readyReplicas", 0)
    return Observation(ready >= wanted, f"{name}: {ready}/{wanted} ready")


# -- the API ------------------------------------------------------------------------------


@dataclass
class Cluster:
    """An API connection to one kube context; its changes go through `changes`."""

    context: str
    api: kclient.ApiClient | None  # None: a plan's cluster that does not exist yet
    dynamic: DynamicClient | None
    changes: Changes

    @classmethod
    def absent(cls, context: str, changes: Changes) -> Cluster:
        """The cluster a plan will make: changes are planned, reading it is an error."""
        return cls(context, None, None, changes)

    def _api(self) -> kclient.ApiClient:
        if self.api is None:
            raise NotMadeYet(f"there is no cluster at context {self.context} yet")
        return self.api

    def resource(self, api_version: str, kind: str) -> Any:
        if self.dynamic is None:
            raise NotMadeYet(f"there is no cluster at context {self.context} yet")
        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            # CRDs applied a moment ago are not in the cached discovery yet.
            self.dynamic.resources.invalidate_cache()
            try:
                return self.dynamic.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError as error:
                raise LabError(
                    f"the cluster does not know {kind} ({api_version})",
                    hint="is the CRD installed? re-run `invoke lab.up`",
                ) from error

    def apply(self, obj: dict[str, Any]) -> None:
        """Server-side apply with force-conflicts: lab owns the fields it sets."""
        meta = obj["metadata"]
        what = f"{obj['kind']}/{meta['name']}" + (
            f" in {meta['namespace']}" if meta.get("namespace") else ""
        )
        self.changes.make(
            f"apply {what} (server-side)", lambda: self._apply(obj, what), planned=None
        )

    def _apply(self, obj: dict[str, Any], what: str) -> None:
        meta = obj["metadata"]
        resource = self.resource(obj["apiVersion"], obj["kind"])
        try:
            resource.server_side_apply(
                body=obj,
                name=meta["name"],
                namespace=meta.get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
        except ApiException as error:
            raise LabError(
                f"the API server refused {what}: {error.reason}",
                output_tail=str(error.body)[:2000],
                hint="re-run with -vv; the full response is in the log",
            ) from error

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        with _answers(f"cannot read {kind}/{name}", self.context):
            resource = self.resource(api_version, kind)
            try:
                found = resource.get(name=name, namespace=namespace)
            except (NotFoundError, ApiException) as error:
                if error.status != 404:
                    raise
                return None
        result: dict[str, Any] = found.to_dict()
        return result

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete one object; False when it was not there."""
        where = f" in {namespace}" if namespace else ""
        return self.changes.make(
            f"delete {kind}/{name}{where}",
            lambda: self._delete(api_version, kind, name, namespace),
            planned=True,
        )

    def _delete(self, api_version: str, kind: str, name: str, namespace: str | None) -> bool:
        resource = self.resource(api_version, kind)
        try:
            resource.delete(name=name, namespace=namespace, propagation_policy="Background")
        except (NotFoundError, ApiException) as error:
            if isinstance(error, ApiException) and error.status != 404:
                raise LabError(f"cannot delete {kind}/{name}: {error.reason}") from error
            return False
        return True

    def list_objects(
        self, api_version: str, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        where = f" in {namespace}" if namespace else ""
        with _answers(f"cannot list {kind}{where}", self.context):
            resource = self.resource(api_version, kind)
            found = resource.get(namespace=namespace, label_selector=selector)
        items: list[dict[str, Any]] = found.to_dict().get("items", [])
        return items

    def deployment_observation(self, namespace: str, name: str) -> Observation:
        deployment = self.get("apps/v1", "Deployment", name, namespace)
        if deployment is None:
            return Observation(False, f"deployment {namespace}/{name} does not exist yet")
        seen = rollout_status(deployment)
        if seen.failed:
            try:
                why = self.last_probe_failure(namespace, name)
            except LabError:  # events we may not read: the rollout has failed all the same
                why = None
            if why:
                return Observation(False, f"{seen.seen}; {why}", failed=True)
        return seen

    def last_probe_failure(self, namespace: str, deployment: str) -> str | None:
        """The newest probe failure Kubernetes recorded for the deployment's pods."""
        core = kclient.CoreV1Api(self._api())
        with _answers(f"cannot list the events in {namespace}", self.context):
            found = core.list_namespaced_event(namespace, field_selector="reason=Unhealthy").items
        mine = [
            e
            for e in found
            if e.involved_object.kind == "Pod"
            and (e.involved_object.name or "").startswith(f"{deployment}-")
        ]
        if not mine:
            return None
        newest = max(mine, key=lambda e: str(e.last_timestamp or e.event_time or ""))
        return f"pod {newest.involved_object.name}: {newest.message}"

    def events(self, namespace: str | None = None) -> list[str]:
        core = kclient.CoreV1Api(self._api())
        found = (
            core.list_namespaced_event(namespace)
            if namespace
            else core.list_event_for_all_namespaces()
        )
        return [
            f"{e.last_timestamp or e.event_time} {e.type} {e.involved_object.kind}/"
            f"{e.involved_object.name}: {e.reason}: {e.message}"
            for e in found.items
        ]

    def pod_log(
        self, namespace: str, pod: str, container: str | None = None, tail: int = 200
    ) -> str:
        """The pod's log, or a line saying why there is none (a container that has not
        started answers 400, a pod that has gone 404): never an exception."""
        core = kclient.CoreV1Api(self._api())
        try:
            text: str = core.read_namespaced_pod_log(
                pod, namespace, container=container, tail_lines=tail
            )
        except ApiException as error:
            return f"(no log of {namespace}/{pod}: HTTP {error.status} {error.reason})\n"
        return text

    def job_pod(self, namespace: str, job: dict[str, Any]) -> str | None:
        """The newest pod of this very Job (by its controller uid, not by name)."""
        uid = (job.get("metadata") or {}).get("uid")
        if not uid:
            return None
        pods = self.list_objects(
            "v1", "Pod", namespace, selector=f"batch.kubernetes.io/controller-uid={uid}"
        )
        return newest_pod(pods)


def newest_pod(pods: Iterable[dict[str, Any]]) -> str | None:
    """The name of the most recently created pod (pure)."""
    ordered = sorted(
        pods,
        key=lambda pod: str(
            (pod.get("metadata") or {}).get("creation_timestamp")
            or (pod.get("metadata") or {}).get("creationTimestamp")
            or ""
        ),
    )
    return str(ordered[-1]["metadata"]["name"]) if ordered else None


@contextmanager
def _answers(what: str, context: str) -> Iterator[None]:
    """The API's refusals and a server gone away inside the block as one LabError."""
    try:
        yield
    except ApiException as error:
        raise LabError(
            f"{what}: {error.reason}",
            hint="the context's user lacks the right (`kubectl auth can-i`)"
            if error.status == 403
            else None,
        ) from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise LabError(
            f"{what}: the Kubernetes API of context {context} does not answer",
            hint="is the cluster running? (`docker ps`, `invoke lab.status`)",
            output_tail=str(error)[:500],
        ) from error


def connect(context: str, changes: Changes | None = None) -> Cluster:
    """An API connection to `context` from the user's kubeconfig, verified to answer."""
    try:
        # $KUBECONFIG as it is now: the library reads it once, when first imported.
        where = os.environ.get("KUBECONFIG") or None
        api = kconfig.new_client_from_config(config_file=where, context=context)  # type: ignore[no-untyped-call]
    except FileNotFoundError as error:  # no kubeconfig at all: no context either
        raise LabError(
            f"no kube context named {context}",
            hint="run `invoke lab.up`, or pass --context for your own cluster",
            output_tail=str(error),
        ) from error
    except (OSError, yaml.YAMLError) as error:  # unreadable, or not YAML
        raise LabError(
            f"cannot read the kubeconfig for context {context}: {str(error).splitlines()[0]}",
            hint="check $KUBECONFIG (or ~/.kube/config): `kubectl config view` reads it too",
            output_tail=str(error),
        ) from error
    except ConfigException as error:
        raise LabError(
            f"no kube context named {context}",
            hint="run `invoke lab.up`, or pass --context for your own cluster "
            "(`kubectl config get-contexts` lists them)",
            output_tail=str(error),
        ) from error
    try:
        kclient.VersionApi(api).get_code(_request_timeout=10)
        dynamic = DynamicClient(api)  # type: ignore[no-untyped-call]
    except (urllib3.exceptions.HTTPError, ApiException, OSError) as error:
        raise LabError(
            f"the Kubernetes API of context {context} does not answer",
            hint="is the cluster running? (`docker ps`, `invoke lab.status`)",
            output_tail=str(error)[:500],
        ) from error
    return Cluster(context, api, dynamic, changes or Changes())
