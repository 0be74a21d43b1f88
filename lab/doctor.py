"""Preflight checks: can this machine run the lab?

Each check returns a `Check`; blocking failures stop `lab.up`, warnings only inform.
Parsers of tool output are pure functions, tested on captured real output.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from lab import buildkit, engine, proc
from lab.config import Config
from lab.errors import LabError

GIB = 1024**3


class Status(Enum):
    """A machine check's verdict; its value is the mark `lab.ui` shows (a warning is not
    a step's UNVERIFIED, so it is not `lab.report.Status`)."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    hint: str = ""
    blocking: bool = True

    @property
    def blocks(self) -> bool:
        return self.status is Status.FAIL and self.blocking


# -- parsers of real tool output ----------------------------------------------------------


def parse_kind_version(output: str) -> str | None:
    """`kind version` prints e.g. 'kind v0.32.0 go1.25.4 linux/amd64'."""
    match = re.search(r"\bkind (v\d+\.\d+\.\d+\S*)", output)
    return match.group(1) if match else None


def parse_istioctl_version(output: str) -> str | None:
    """`istioctl version --remote=false` prints e.g. '1.30.0' or 'client version: 1.30.0'."""
    match = re.search(r"(\d+\.\d+\.\d+(?:-[\w.]+)?)", output)
    return match.group(1) if match else None


def parse_kubectl_version(output: str) -> str | None:
    """`kubectl version --client -o json` → clientVersion.gitVersion."""
    try:
        data = json.loads(output)
        version = data["clientVersion"]["gitVersion"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return None
    return str(version)


def parse_kustomize_version(output: str) -> str | None:
    """`kustomize version` prints 'v5.8.1' (older: '{Version:kustomize/v5.8.1 ...}')."""
    match = re.search(r"\b(v\d+\.\d+\.\d+)\b", output)
    return match.group(1) if match else None


def same_release(found: str, pinned: str) -> bool:
    """True when `found` is the pinned version (ignoring a leading v and build suffixes)."""

    def core(version: str) -> str:
        return re.sub(r"[-+].*$", "", version.lstrip("v"))

    return core(found) == core(pinned)


# -- the checks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolSpec:
    name: str
    argv: tuple[str, ...]
    parse: Callable[[str], str | None]
    pinned: Callable[[Config], str]
    blocking: bool


TOOLS = (
    ToolSpec("kind", ("kind", "version"), parse_kind_version, lambda c: c.kind_version, True),
    ToolSpec(
        "istioctl",
        ("istioctl", "version", "--remote=false"),
        parse_istioctl_version,
        lambda c: c.istio_version,
        True,
    ),
    ToolSpec(
        "kubectl",
        ("kubectl", "version", "--client", "-o", "json"),
        parse_kubectl_version,
        lambda c: c.kubectl_version,
        False,
    ),
    # The pipeline renders the GitOps repository with it (the smoke Job).
    ToolSpec(
        "kustomize",
        ("kustomize", "version"),
        parse_kustomize_version,
        lambda c: c.kustomize_version,
        False,
    ),
)


def check_tool(spec: ToolSpec, config: Config) -> Check:
    pinned = spec.pinned(config)
    path = proc.which(spec.name)
    if path is None:
        return Check(
            spec.name,
            Status.FAIL,
            "not found in .lab/bin/ or on PATH",
            f"run `invoke lab.tools` to fetch {spec.name} {pinned}",
            spec.blocking,
        )
    try:
        result = proc.run(spec.argv, timeout=30, check=False)
    except LabError as error:
        return Check(spec.name, Status.FAIL, error.message, f"reinstall {spec.name}", spec.blocking)
    found = spec.parse(result.stdout + result.stderr)
    if found is None:
        return Check(
            spec.name,
            Status.WARN,
            f"{path}: cannot read its version",
            f"run `invoke lab.tools` to fetch {spec.name} {pinned}",
            False,
        )
    if not same_release(found, pinned):
        return Check(
            spec.name,
            Status.WARN,
            f"{found} at {path}, pinned {pinned}",
            f"run `invoke lab.tools` to use the pinned {spec.name} from .lab/bin/",
            False,
        )
    return Check(spec.name, Status.OK, f"{found} ({path})")


def check_docker(config: Config) -> list[Check]:
    """Reachability, memory and CPUs of the daemon; free disk where it keeps images."""
    try:
        client = engine.client()
        info = engine.info(client)
    except LabError as error:
        return [Check("Docker daemon", Status.FAIL, error.message, error.hint or "")]
    where = engine.endpoint()
    checks = [Check("Docker daemon", Status.OK, f"Docker {info.server_version} at {where}")]
    memory = info.memory_bytes / GIB
    if memory < config.docker_min_memory_gib:
        status, hint = (
            Status.FAIL,
            ("give Docker at least 8 GB (Docker Desktop: Settings → Resources)"),
        )
    elif memory < config.docker_warn_memory_gib:
        status, hint = (
            Status.WARN,
            (f"{config.docker_warn_memory_gib:g} GiB or more avoids evictions during builds"),
        )
    else:
        status, hint = Status.OK, ""
    checks.append(Check("Docker memory", status, f"{memory:.1f} GiB, {info.cpus} CPUs", hint))
    checks.append(check_disk(Path(info.root_dir or "/"), config))
    checks.append(check_buildx())
    return checks


def check_buildx() -> Check:
    """The buildx plugin every image build goes through (BuildKit)."""
    try:
        found = buildkit.version()
    except LabError as error:
        return Check("docker buildx", Status.FAIL, error.message, error.hint or "")
    return Check("docker buildx", Status.OK, found)


def check_disk(where: Path, config: Config) -> Check:
    probe = where if where.exists() else Path.cwd()
    free = shutil.disk_usage(probe).free / GIB
    if free < config.min_free_disk_gib:
        return Check(
            "free disk",
            Status.FAIL,
            f"{free:.1f} GiB free at {probe}",
            f"free at least {config.min_free_disk_gib:g} GiB (`docker system prune` helps)",
        )
    return Check("free disk", Status.OK, f"{free:.1f} GiB free at {probe}")


def port_is_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def lab_published_ports(config: Config) -> dict[int, str]:
    """Host ports that the lab's own containers publish, asked of Docker: port → container.

    The lab's registry and kind node publish its ports; a busy port held by one of them
    is the lab's, whatever state.json says (a failed `lab.up`, `lab.down --keep-registry`).
    """
    try:
        with engine.doing("list the running containers"):
            containers = engine.client().containers.list(all=False)
    except LabError:
        return {}
    owned: dict[int, str] = {}
    for container in containers:
        labels = container.labels or {}
        ours = container.name == config.registry_name or (
            labels.get("io.x-k8s.kind.cluster") == config.cluster_name
        )
        if not ours:
            continue
        ports = container.attrs.get("NetworkSettings", {}).get("Ports") or {}
        for bindings in ports.values():
            for binding in bindings or []:
                if binding.get("HostIp") in (config.bind_address, "0.0.0.0", "", "::"):
                    owned[int(binding["HostPort"])] = container.name
    return owned


def check_ports(config: Config, *, owners: dict[int, str] | None = None) -> list[Check]:
    """Each host port: free, held by the lab's own container (`owners`), or busy."""
    owners = owners or {}
    checks = []
    for what, port in config.host_ports().items():
        name = f"port {port} ({what})"
        if port_is_free(config.bind_address, port):
            checks.append(Check(name, Status.OK, f"free on {config.bind_address}"))
        elif port in owners:
            checks.append(Check(name, Status.OK, f"in use by the lab ({owners[port]})"))
        else:
            key = {
                "registry": "registry_port",
                "ingress (app)": "ingress_http_port",
                "Gitea": "gitea_http_port",
                "Argo CD UI": "argocd_http_port",
            }[what]
            checks.append(
                Check(
                    name,
                    Status.FAIL,
                    f"already in use on {config.bind_address}",
                    f"stop what listens there (`ss -ltnp 'sport = :{port}'`), or set "
                    f"`{key}` in invoke.yaml (lab:) or LAB_{key.upper()}",
                )
            )
    return checks


INOTIFY = Path("/proc/sys/fs/inotify")


def check_inotify(config: Config, root: Path = INOTIFY) -> list[Check]:
    if not root.is_dir():
        return [Check("inotify limits", Status.SKIP, "not Linux: Docker's VM sets them", "", False)]
    checks = []
    for key, minimum in (
        ("max_user_watches", config.min_inotify_watches),
        ("max_user_instances", config.min_inotify_instances),
    ):
        try:
            value = int((root / key).read_text().strip())
        except (OSError, ValueError):
            checks.append(Check(f"inotify {key}", Status.WARN, "unreadable", "", False))
            continue
        if value < minimum:
            # Ubuntu ships 128 instances: about 30 sidecar-injected pods on one node then
            # fail with "too many open files". Block, with the one-line fix.
            checks.append(
                Check(
                    f"inotify {key}",
                    Status.FAIL,
                    f"{value} < {minimum}: pods would fail with 'too many open files'",
                    f"sudo sysctl fs.inotify.{key}={minimum} "
                    f"(lasting: echo fs.inotify.{key}={minimum} | "
                    "sudo tee /etc/sysctl.d/99-lab.conf)",
                )
            )
        else:
            checks.append(Check(f"inotify {key}", Status.OK, str(value), "", False))
    return checks


def run_checks(config: Config) -> list[Check]:
    """Every preflight check, in the order the table shows them."""
    return [
        *check_docker(config),
        *(check_tool(spec, config) for spec in TOOLS),
        *check_ports(config, owners=lab_published_ports(config)),
        *check_inotify(config),
    ]


def blocking_failures(checks: Sequence[Check]) -> list[Check]:
    return [check for check in checks if check.blocks]
