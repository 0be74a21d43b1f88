"""The quality stage's `gitops` row: the GitOps repository linted as lab deploys it.

Each environment lab deploys (`lab.tags.ENVIRONMENTS`) is rendered by the pinned
kustomize (`lab.manifests.render`, whose errors name the kustomization at fault); then
the patches that change nothing (`unmatched_patch_targets`), the objects that do not
fit together (`lab.gitops_structure.check_structure`) and what Istio's own analyzers
find (`istioctl analyze --use-kube=false`, with a stand-in for the ingress gateway)
fail the row. It runs on this machine with lab's own tools whatever the runner, needs
no network, and takes seconds: a change to gitops/ that would sync into a broken
environment fails the quality stage before any image is built.
"""

from __future__ import annotations

import copy
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from lab import proc
from lab.checks import LINT, Check, report, skipped
from lab.config import Config
from lab.errors import CommandError, LabError
from lab.gitops_structure import check_structure
from lab.manifests import KUSTOMIZATION_FILES, Rendering, kustomize_binary, render
from lab.mesh import ISTIO_NAMESPACE, ingress_ports
from lab.report import CheckResult, Status
from lab.tags import ENVIRONMENTS
from lab.ui import UI

SERVICE = "gitops"
RENDER, PATCHES, STRUCTURE = "kustomize build", "patch targets", "structure"
ANALYZE = "istioctl analyze"
CHECKS: tuple[Check, ...] = (
    Check(RENDER, ("kustomize", "build", "environments/<each>"), LINT),
    Check(PATCHES, (), LINT),
    Check(STRUCTURE, (), LINT),
    Check(ANALYZE, ("istioctl", "analyze", "--use-kube=false", "<each render>"), LINT),
)


def run_checks(
    ui: UI,
    config: Config,
    gitops_dir: Path,
    checks: Sequence[Check] = CHECKS,
    cancelled: threading.Event | None = None,
) -> list[CheckResult]:
    """The row's checks in order, one line each. Without a render (no kustomize, or an
    environment that does not build) there is nothing to check: the rest are skipped."""
    lint = _Lint(config, gitops_dir)
    looks = {
        RENDER: lint.render,
        PATCHES: lint.patch_targets,
        STRUCTURE: lint.structure,
        ANALYZE: lint.analyze,
    }
    results: list[CheckResult] = []
    for index, check in enumerate(checks):
        if cancelled is not None and cancelled.is_set():
            return results + _skip(ui, checks[index:], "cancelled")
        result = _timed(check.name, looks[check.name])
        report(ui, result, "")  # its problems are in the detail and the evidence
        results.append(result)
        if lint.blocked:
            return results + _skip(ui, checks[index + 1 :], lint.blocked)
    return results


class _Lint:
    """The checks of one gitops/ tree; each environment is rendered once, when needed."""

    def __init__(self, config: Config, gitops_dir: Path) -> None:
        self.config = config
        self.gitops_dir = gitops_dir
        self.blocked = ""  # why the checks after this one cannot run
        self._renders: dict[str, Rendering] | None = None

    def _kustomize(self) -> str:
        try:
            return kustomize_binary(version=self.config.kustomize_version)
        except LabError:
            self.blocked = "kustomize is not here"
            raise

    def _rendered(self) -> dict[str, Rendering]:
        if self._renders is None:
            kustomize = self._kustomize()
            try:
                self._renders = {
                    env: render(self.gitops_dir / "environments" / env, kustomize=kustomize)
                    for env in ENVIRONMENTS
                }
            except LabError:
                self.blocked = "the render failed"
                raise
        return self._renders

    def render(self) -> tuple[list[str], str]:
        renders = self._rendered()
        objects = sum(len(r.objects) for r in renders.values())
        return [], f"{', '.join(ENVIRONMENTS)}: {objects} objects"

    def patch_targets(self) -> tuple[list[str], str]:
        return unmatched_patch_targets(self.gitops_dir, kustomize=self._kustomize()), ""

    def structure(self) -> tuple[list[str], str]:
        problems = [
            f"{env}: {problem}"
            for env, rendering in self._rendered().items()
            for problem in check_structure(rendering.objects)
        ]
        return problems, ""

    def analyze(self) -> tuple[list[str], str]:
        """Istio's own analyzers on each render, offline, with a stand-in for the ingress
        gateway `istioctl install` makes (`gateway_context`)."""
        istioctl = proc.which("istioctl")
        if istioctl is None:
            raise _Unavailable("istioctl is not here (`invoke lab.tools --only istioctl`)")
        renders = self._rendered()
        with tempfile.TemporaryDirectory(prefix="lab-gateway-") as scratch:
            context = Path(scratch) / "gateway.yaml"
            context.write_text(gateway_context(self.config), encoding="utf-8")
            found = {
                env: analyze(rendering.text, istioctl=istioctl, context=[context])
                for env, rendering in renders.items()
            }
        problems = [f"{env}: {m}" for env, ms in found.items() for m in ms if _serious(m)]
        notes = sum(1 for ms in found.values() for m in ms if not _serious(m))
        return problems, f"{notes} info message(s)" if notes else ""


class _Unavailable(Exception):
    """A check that cannot run here; it is SKIPPED, saying why."""


def _serious(message: str) -> bool:
    return message.startswith(("Error", "Warning"))


def gateway_context(config: Config) -> str:
    """What the cluster has before Argo CD syncs an environment, as far as istioctl
    analyze needs to know: the ingress gateway `istioctl install` makes (lab.mesh), as
    a Service and a Pod in istio-system. Only for offline analysis; never applied."""
    labels = {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    account = "istio-ingressgateway-service-account"
    ports = ingress_ports(config)  # as lab.mesh installs it
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ISTIO_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": account, "namespace": ISTIO_NAMESPACE},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "istio-ingressgateway",
                "namespace": ISTIO_NAMESPACE,
                "labels": labels,
            },
            "spec": {
                "type": "NodePort",
                "selector": labels,
                "ports": ports,
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "istio-ingressgateway-0",
                "namespace": ISTIO_NAMESPACE,
                "labels": {**labels, "sidecar.istio.io/inject": "false"},
            },
            "spec": {
                "serviceAccountName": account,
                "containers": [
                    {
                        "name": "istio-proxy",
                        "image": f"docker.io/istio/proxyv2:{config.istio_version}",
                        "ports": [
                            {"containerPort": port["targetPort"], "protocol": "TCP"}
                            for port in ports
                        ],
                    }
                ],
            },
        },
    ]
    return yaml.safe_dump_all(objects, sort_keys=False)


def _timed(name: str, look: Callable[[], tuple[list[str], str]]) -> CheckResult:
    started = time.monotonic()
    try:
        problems, note = look()
    except _Unavailable as why:
        return CheckResult(f"{SERVICE}: {name}", Status.SKIPPED, 0.0, str(why))
    except LabError as error:
        return CheckResult(
            f"{SERVICE}: {name}",
            Status.FAILED,
            time.monotonic() - started,
            error.message,
            error.render(),
        )
    duration = time.monotonic() - started
    if not problems:
        return CheckResult(f"{SERVICE}: {name}", Status.PASSED, duration, note)
    first = problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
    return CheckResult(f"{SERVICE}: {name}", Status.FAILED, duration, first, "\n".join(problems))


def _skip(ui: UI, rest: Sequence[Check], reason: str) -> list[CheckResult]:
    results = skipped(SERVICE, rest, reason)
    for result in results:
        report(ui, result, "")
    return results


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
        data = _read_kustomization(kustomization, root)
        patches = data.get("patches") or []
        targeted = [i for i, p in enumerate(patches) if isinstance(p, dict) and p.get("target")]
        if not targeted:
            continue
        relative = kustomization.relative_to(root)
        with tempfile.TemporaryDirectory(prefix="lab-patches-") as scratch:
            copy_root = Path(scratch) / root.name
            try:
                shutil.copytree(root, copy_root)
            except (OSError, shutil.Error) as error:
                raise LabError(f"cannot copy {root} to try its patches: {error}") from error
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


def _read_kustomization(path: Path, root: Path) -> dict[str, Any]:
    where = path.relative_to(root)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise LabError(f"{where} is not readable YAML: {error}", hint=f"fix {path}") from error
    if not isinstance(data, dict):
        raise LabError(f"{where} is not a kustomization (a mapping)", hint=f"fix {path}")
    return data


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


def analyze(
    rendering_text: str,
    *,
    istioctl: str | None = None,
    context: Sequence[Path] = (),
    timeout: float = 180.0,
) -> list[str]:
    """`istioctl analyze --use-kube=false` on a render (plus `context` files that stand in
    for what the cluster already has, such as the ingress gateway); its messages."""
    binary = istioctl or "istioctl"
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
        result = proc.run(argv, timeout=timeout, check=False)
    messages = parse_analyze_output(result.stdout + "\n" + result.stderr)
    if result.returncode != 0 and not messages:
        raise CommandError(
            f"istioctl analyze failed with exit code {result.returncode}",
            argv=result.argv,
            returncode=result.returncode,
            command=proc.pasteable(result.argv),
            output_tail=(result.stderr or result.stdout)[-2000:],
        )
    return messages


_ANALYZE_MESSAGE = re.compile(r"^(Error|Warning|Info)\s+\[IST\d+\]")


def parse_analyze_output(output: str) -> list[str]:
    """The messages (`Warning [IST0101] (Gateway ...) ...`) in istioctl analyze's output."""
    return [line.strip() for line in output.splitlines() if _ANALYZE_MESSAGE.match(line.strip())]
