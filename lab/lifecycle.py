"""Bringing the lab up and tearing it down.

`UP` is the whole bring-up, in order: read it as the table of contents. Every step
converges — it inspects, acts on the difference, and verifies — so re-running `lab.up`
after a failure or Ctrl-C resumes, and re-running it on an up lab changes nothing.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import yaml

from lab import (
    argocd,
    cluster,
    diagnostics,
    doctor,
    engine,
    gitops,
    gitserver,
    images,
    k8s,
    mesh,
    proc,
    teardown,
    wait,
)
from lab.cli import Context
from lab.config import Config
from lab.errors import LabError
from lab.state import State
from lab.status import urls

APP_NAMESPACES = ("demo-dev", "demo-prod")
APP_SECRET = "demo-secrets"
GITOPS_DIR = Path(__file__).resolve().parent.parent / "gitops"


@dataclass
class Options:
    """What the user asked for on the command line."""

    context: str | None = None  # bring your own cluster: skip kind and the registry
    registry: str | None = None  # HOST:PORT of the registry that cluster pulls from
    recreate: bool = False
    dry_run: bool = False


@dataclass
class Lab:
    """One bring-up in progress: settings, terminal, state, and connections made so far."""

    ctx: Context
    options: Options
    state: State
    _cluster: k8s.Cluster | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        return self.ctx.config

    @property
    def byo(self) -> bool:
        return self.options.context is not None

    @property
    def context(self) -> str:
        return self.options.context or self.ctx.config.kube_context

    def cluster(self) -> k8s.Cluster:
        if self._cluster is None:
            self._cluster = k8s.connect(self.context)
        return self._cluster

    def wait_for(self, what: str, look: Callable[[], wait.Observation], timeout: float) -> str:
        if proc.dry_run_enabled():
            proc.plan(f"wait for {what}")
            return "planned"
        return wait.until(what, look, timeout=timeout, report=self.ctx.ui.progress).seen


Step = tuple[str, Callable[[Lab], str]]


# -- the steps ----------------------------------------------------------------------------


def remember_choices(lab: Lab) -> None:
    """What later tasks (the pipeline) must know about how this lab was brought up."""
    registry = lab.options.registry or lab.config.registry_host
    if lab.state.get("registry") != registry or lab.state.get("context") != lab.context:
        lab.state["registry"] = registry
        lab.state["context"] = lab.context
        lab.state.save()


def preflight(lab: Lab) -> str:
    checks = doctor.run_checks(lab.config)
    if lab.byo:  # kind, the registry and the host ports are not ours to check
        checks = [c for c in checks if c.name != "kind" and not c.name.startswith("port ")]
    blocking = doctor.blocking_failures(checks)
    if blocking and proc.dry_run_enabled():
        return f"would stop here: {', '.join(c.name for c in blocking)} (see `invoke lab.doctor`)"
    if blocking:
        first = blocking[0]
        raise LabError(
            f"this machine cannot run the lab yet: {', '.join(c.name for c in blocking)}",
            hint=f"{first.name}: {first.hint} (run `invoke lab.doctor` for the whole table)",
        )
    warnings = [c.name for c in checks if c.status is doctor.Status.WARN]
    return f"warnings: {', '.join(warnings)}" if warnings else "all checks passed"


def ensure_registry(lab: Lab) -> str:
    if lab.byo:
        return f"skipped: using {lab.options.registry or 'your registry'}"
    if proc.dry_run_enabled() and not _docker_answers():
        proc.plan(f"docker run {lab.config.registry_image} as {lab.config.registry_name}")
        return "planned"
    return cluster.ensure_registry(engine.client(), lab.config)


def ensure_cluster(lab: Lab) -> str:
    if lab.byo:
        if proc.dry_run_enabled():
            return f"skipped: using context {lab.context}"
        if (lab.state.get("byo") or {}).get("context") != lab.context:
            # What the cluster holds before the lab, so lab.down can leave it so.
            lab.state["byo"] = {"context": lab.context, **teardown.baseline(lab.cluster())}
            lab.state.save()
        return f"skipped: using context {lab.context} (its objects before the lab: recorded)"
    config = lab.config
    if _cluster_exists(config):
        recorded = lab.state.get("cluster_settings")
        if recorded not in (None, cluster.settings_hash(config)):
            if not lab.options.recreate:
                raise LabError(
                    f"cluster {config.cluster_name} was created with different pinned settings",
                    hint="run `invoke lab.up --recreate` to delete and recreate it "
                    "(the GitOps history is recreated from gitops/)",
                )
            cluster.delete_cluster(config)
        else:
            return "already exists"
    path = config.state_path / "kind-config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cluster.kind_config(config), sort_keys=False), encoding="utf-8")
    network_existed = _docker_answers() and _kind_network_exists()
    cluster.create_cluster(config, str(path))
    if proc.dry_run_enabled():
        return f"planned (config: {path})"
    if not network_existed:  # kind made it for us: lab.down removes it when unused
        lab.state["kind_network_ours"] = True
    lab.state["cluster_settings"] = cluster.settings_hash(config)
    lab.state.save()
    return "created"


def wire_registry(lab: Lab) -> str:
    if lab.byo:
        return "skipped: your cluster already pulls from its registry"
    if proc.dry_run_enabled() and not (_docker_answers() and _cluster_exists(lab.config)):
        proc.plan(f"docker network connect {cluster.KIND_NETWORK} {lab.config.registry_name}")
        proc.plan(f"write {cluster.CERTS_DIR}/{lab.config.registry_host}/hosts.toml on each node")
        _plan_apply(cluster.registry_hosting_configmap(lab.config))
        return "planned"
    client = engine.client()
    notes = [cluster.connect_registry(client, lab.config)]
    notes.append(cluster.wire_nodes(client, lab.config))
    lab.cluster().apply(cluster.registry_hosting_configmap(lab.config))
    return "; ".join(notes)


def ensure_istio(lab: Lab) -> str:
    if not proc.dry_run_enabled():
        ready = [
            lab.cluster().deployment_observation(mesh.ISTIO_NAMESPACE, name)
            for name in mesh.control_plane(lab.config)
        ]
        if all(o.done for o in ready) and lab.state.get("istio") == lab.config.istio_version:
            return "already installed"
    operator = mesh.write_operator(lab.config, lab.config.state_path)
    mesh.install(lab.config, operator, lab.context)
    if proc.dry_run_enabled():
        for name in mesh.control_plane(lab.config):
            proc.plan(f"wait for Istio {name} to be ready")
        return f"planned (operator: {operator})"
    for name in mesh.control_plane(lab.config):
        lab.wait_for(
            f"Istio {name} to be ready",
            partial(_deployment_observation, lab, mesh.ISTIO_NAMESPACE, name),
            lab.config.install_timeout,
        )
    if not proc.dry_run_enabled():
        lab.state["istio"] = lab.config.istio_version
        lab.state.save()
    return f"Istio {lab.config.istio_version}"


def ensure_argocd(lab: Lab) -> str:
    config = lab.config
    cached = config.state_path / "cache" / f"argocd-{config.argocd_version}-install.yaml"
    if proc.dry_run_enabled() and not cached.is_file():
        proc.plan(f"download {argocd.install_url(config)}")
        proc.plan("apply its CRDs server-side, wait until established, then apply the rest")
        for obj in argocd.lab_objects(config):
            _plan_apply(obj)
        return "planned"
    objects = argocd.install_objects(
        argocd.fetch_install_manifest(config, config.state_path / "cache")
    )
    crds, rest = k8s.split_crds(objects)
    target = lab.cluster() if not proc.dry_run_enabled() else None
    apply = target.apply if target else _plan_apply
    for crd in crds:  # CRDs first, and established, before anything that uses them
        apply(crd)
    for crd in crds:
        name = crd["metadata"]["name"]
        lab.wait_for(
            f"CRD {name} to be established",
            partial(_crd_observation, lab, name),
            config.install_timeout,
        )
    for obj in k8s.apply_order(argocd.with_lab_settings(rest, config)):
        apply(obj)
    for kind, name in argocd.WORKLOADS:
        lab.wait_for(
            f"Argo CD {name}",
            partial(_workload_observation, lab, kind, argocd.NAMESPACE, name),
            config.install_timeout,
        )
    if target is not None:
        secret = target.get("v1", "Secret", "argocd-initial-admin-secret", argocd.NAMESPACE)
        if secret is not None:
            lab.state["argocd_admin_password"] = argocd.decode_secret_value(secret, "password")
            lab.state.save()
    return f"Argo CD {config.argocd_version}"


def ensure_gitea(lab: Lab) -> str:
    config = lab.config
    admin = lab.state.setdefault("gitea_admin", "lab-admin")
    secret = gitserver.admin_secret(
        config,
        username=admin,
        password=lab.state.secret("gitea_admin_password"),
        secret_key=lab.state.secret("gitea_secret_key"),
        internal_token=lab.state.secret("gitea_internal_token", 48),
    )
    if not proc.dry_run_enabled():
        lab.state.save()
    apply = lab.cluster().apply if not proc.dry_run_enabled() else _plan_apply
    manifests = gitserver.roll_on_secret_change(gitserver.gitea_manifests(config), secret)
    for obj in k8s.apply_order(
        [
            *[m for m in manifests if m["kind"] == "Namespace"],
            secret,
            *[m for m in manifests if m["kind"] != "Namespace"],
        ]
    ):
        apply(obj)
    lab.wait_for(
        "Gitea to be ready",
        partial(_deployment_observation, lab, config.gitea_namespace, "gitea"),
        config.install_timeout,
    )
    if lab.byo:
        where = (
            f"svc/{gitserver.HTTP_SERVICE} in namespace {config.gitea_namespace} "
            "(lab reaches it through `kubectl port-forward`)"
        )
    else:
        where = f"http://{config.bind_address}:{config.gitea_http_port}"
    return f"Gitea {config.gitea_version} at {where}"


def seed_gitops(lab: Lab) -> str:
    config = lab.config
    if proc.dry_run_enabled():
        proc.plan(f"push {GITOPS_DIR} to {config.gitops_repo_url}; create the ArgoCD webhook")
        return "planned"
    _ensure_gitea_token(lab)
    with gitserver.connect(config, lab.state, lab.context) as (server, remote):
        server.ensure_org(config.gitops_org)
        # Private: Argo CD reads it with the credentials of its repository Secret.
        server.ensure_repo(config.gitops_org, config.gitops_repo, private=True)
        result = gitops.seed(remote, _gitops_tree(lab))
        # Gitea marks a repository non-empty asynchronously after its first push.
        server.wait_for_branch(config.gitops_org, config.gitops_repo, "main", result.revision)
        server.ensure_push_webhook(config.gitops_org, config.gitops_repo)
    lab.cluster().apply(
        argocd.repository_secret(config, lab.state["gitea_admin"], lab.state["gitea_token"])
    )
    return f"seeded at {result.revision[:12]}" if result.pushed else "already seeded"


def ensure_app_secrets(lab: Lab) -> str:
    values = {
        "JWT_SECRET": lab.state.secret("jwt_secret", 48),
        "ADMIN_PASSWORD": lab.state.secret("app_admin_password", 18),
        "MONITOR_SECRET_KEY": lab.state.secret("monitor_secret_key", 48),
    }
    if proc.dry_run_enabled():
        for namespace in APP_NAMESPACES:
            proc.plan(f"create Secret {APP_SECRET} in {namespace}")
        return "planned"
    lab.state.save()
    target = lab.cluster()
    for namespace in APP_NAMESPACES:
        target.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": namespace, "labels": {"istio-injection": "enabled"}},
            }
        )
        target.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {"name": APP_SECRET, "namespace": namespace},
                "stringData": values,
            }
        )
    return f"{APP_SECRET} in {', '.join(APP_NAMESPACES)}"


SEED_TAG = "main"  # the tag gitops/ deploys before the first pipeline run


def ensure_images(lab: Lab) -> str:
    """Build and push the current tree as `:main` unless the registry already has it.

    gitops/ seeds every environment with the `main` tag, so the lab is populated from
    the first sync; `pipeline.run` then deploys commit tags.
    """
    config = lab.config
    registry = lab.options.registry or config.registry_host
    missing = [s for s in images.SERVICES if not _registry_has(lab, s, SEED_TAG)]
    if not missing:
        return f"{len(images.SERVICES)} images already in {registry}"
    if proc.dry_run_enabled():
        proc.plan(f"build and push {', '.join(missing)} as {registry}/lab/<service>:{SEED_TAG}")
        return "planned"
    from lab import pipeline  # the pipeline owns how a commit is identified

    commit = pipeline.resolve_commit(pipeline.Options(allow_dirty=True))
    plans = images.plan_builds(
        sha=commit.sha,
        branch=SEED_TAG,
        version=commit.version,
        created=datetime.now(UTC) if commit.dirty else commit.time,
        services=missing,
        registry=registry,
    )
    client = engine.client()
    built = images.build_images(
        client, plans, on_log=lambda service, line: lab.ctx.ui.output(f"[{service}] {line}")
    )
    images.push_images(client, built)
    return f"built and pushed {', '.join(missing)}"


def _registry_has(lab: Lab, service: str, tag: str) -> bool:
    if lab.byo and lab.options.registry is None:
        return False
    host = lab.options.registry or f"{lab.config.bind_address}:{lab.config.registry_port}"
    url = f"http://{host}/v2/{images.REPOSITORY_PREFIX}/{service}/manifests/{tag}"
    accept = ", ".join(
        (
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        )
    )
    try:
        return httpx.head(url, headers={"Accept": accept}, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def ensure_applications(lab: Lab) -> str:
    objects = argocd.project_and_applications(lab.config, GITOPS_DIR)
    apply = lab.cluster().apply if not proc.dry_run_enabled() else _plan_apply
    for obj in objects:
        apply(obj)
    return ", ".join(o["metadata"]["name"] for o in objects)


def wait_for_sync(lab: Lab) -> str:
    notes = []
    for app in _application_names(lab):
        seen = lab.wait_for(
            f"Argo CD application {app} to be Synced and Healthy",
            partial(_application_observation, lab, app),
            lab.config.sync_timeout,
        )
        notes.append(seen)
    return "; ".join(notes)


def show_urls(lab: Lab) -> str:
    for name, url in urls(lab.config, byo=lab.byo).items():
        lab.ctx.ui.info(f"  {name:<10} {url}")
    lab.ctx.ui.info("  credentials: invoke lab.creds")
    if not proc.dry_run_enabled():
        lab.state["up"] = True
        lab.state.save()
    return "lab is up"


UP: tuple[Step, ...] = (
    ("Checking this machine", preflight),  # lab.doctor's blocking checks
    ("Starting the local registry", ensure_registry),  # registry:3 on 127.0.0.1:5001
    ("Creating the kind cluster", ensure_cluster),  # pinned node image, port mappings
    ("Wiring the registry into the cluster", wire_registry),  # kind network, certs.d, ConfigMap
    ("Installing Istio", ensure_istio),  # istioctl install with our IstioOperator
    ("Installing Argo CD", ensure_argocd),  # pinned manifest, server-side apply
    ("Running the Git server", ensure_gitea),  # Gitea in the cluster, admin from a Secret
    ("Seeding the GitOps repository", seed_gitops),  # gitops/ pushed, webhook, repo Secret
    ("Creating the app secrets", ensure_app_secrets),  # JWT secret, admin password: never in git
    ("Building the app images", ensure_images),  # current tree as :main, pushed to the registry
    ("Creating the Argo CD applications", ensure_applications),  # AppProject, dev and prod
    ("Waiting for the applications to sync", wait_for_sync),  # Synced and Healthy
    ("Showing where everything is", show_urls),  # URLs; credentials only via lab.creds
)


def up(ctx: Context, options: Options) -> None:
    proc.set_dry_run(options.dry_run)
    lab = Lab(ctx, options, State.load(ctx.config.state_path))
    if not options.dry_run:
        remember_choices(lab)
    if options.dry_run:
        ctx.ui.info("Dry run: nothing is changed. The plan:")
    try:
        run_steps(lab, UP)
    finally:
        if lab.byo and "byo" in lab.state:  # lab.down removes what appeared until now
            lab.state["byo"] = {**lab.state["byo"], "last_up": teardown.now()}
            lab.state.save()
    if options.dry_run:
        for action in proc.planned_commands():
            ctx.ui.info(f"  would: {action}")


def run_steps(lab: Lab, steps: tuple[Step, ...]) -> None:
    """Each step: a start line, then ✓ or ✗ with its duration and what it did."""
    ui = lab.ctx.ui
    for title, run in steps:
        ui.step_started(title)
        started = time.monotonic()
        try:
            note = run(lab)
        except LabError as error:
            ui.step_finished(title, time.monotonic() - started, ok=False)
            error.add_context(title.lower())
            if not proc.dry_run_enabled() and title != "Checking this machine":
                bundle = diagnostics.collect(lab.config, error, context=lab.context)
                error.hint = f"{error.hint or 'see the bundle'}\n  diagnostics: {bundle}"
            raise
        except BaseException:
            ui.step_finished(title, time.monotonic() - started, ok=False)
            raise
        ui.step_finished(title, time.monotonic() - started, ok=True, note=note)


# -- helpers ------------------------------------------------------------------------------


def _gitops_tree(lab: Lab) -> Path:
    """gitops/, or a copy pointing its images at the registry of a cluster we brought."""
    registry = lab.options.registry
    if registry is None or registry == lab.config.registry_host:
        return GITOPS_DIR
    copy = lab.config.state_path / "gitops-seed"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(GITOPS_DIR, copy)
    for path in sorted((copy / "environments").glob("*/kustomization.yaml")):
        text = path.read_text(encoding="utf-8")
        path.write_text(
            gitops.retarget_images(text, lab.config.registry_host, registry), encoding="utf-8"
        )
    return copy


def _docker_answers() -> bool:
    try:
        engine.client()
    except LabError:
        return False
    return True


def _kind_network_exists() -> bool:
    found = engine.client().networks.list(names=[cluster.KIND_NETWORK])  # a substring match
    return any(network.name == cluster.KIND_NETWORK for network in found)


def _cluster_exists(config: Config) -> bool:
    """Whether kind has our cluster; in dry-run a missing kind means "no cluster yet"."""
    if proc.dry_run_enabled() and proc.which("kind") is None:
        return False
    return cluster.cluster_exists(config)


def _ensure_gitea_token(lab: Lab) -> None:
    """Wait for Gitea's API, and make lab's access token once (kept in the state)."""
    admin = lab.state["gitea_admin"]
    password = lab.state.secret("gitea_admin_password")
    with (
        gitserver.base_url(lab.config, lab.context) as base,
        gitserver.GitServer(base, gitserver.Credentials(admin, password=password)) as basic,
    ):
        basic.wait_until_healthy(lab.config.install_timeout)
        if "gitea_token" not in lab.state:
            lab.state["gitea_token"] = basic.create_token("lab")
            lab.state.save()


def _plan_apply(obj: dict[str, Any]) -> None:
    meta = obj.get("metadata", {})
    where = f" in {meta['namespace']}" if meta.get("namespace") else ""
    proc.plan(f"apply {obj.get('kind')}/{meta.get('name')}{where} (server-side)")


def _deployment_observation(lab: Lab, namespace: str, name: str) -> wait.Observation:
    return lab.cluster().deployment_observation(namespace, name)


def _crd_observation(lab: Lab, name: str) -> wait.Observation:
    crd = lab.cluster().get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
    return k8s.crd_established(crd) if crd else wait.Observation(False, f"{name} not found")


def _workload_observation(lab: Lab, kind: str, namespace: str, name: str) -> wait.Observation:
    obj = lab.cluster().get("apps/v1", kind, name, namespace)
    if obj is None:
        return wait.Observation(False, f"{kind} {namespace}/{name} does not exist yet")
    return k8s.rollout_status(obj) if kind == "Deployment" else k8s.statefulset_status(obj)


def _application_names(lab: Lab) -> list[str]:
    return [
        o["metadata"]["name"]
        for o in argocd.project_and_applications(lab.config, GITOPS_DIR)
        if o["kind"] == "Application"
    ]


def _application_observation(lab: Lab, name: str) -> wait.Observation:
    app = lab.cluster().get("argoproj.io/v1alpha1", "Application", name, argocd.NAMESPACE)
    if app is None:
        return wait.Observation(False, f"application {name} does not exist yet")
    sync, health, revision = argocd.application_status(app)
    return wait.Observation(
        sync == "Synced" and health == "Healthy", f"{name}: {sync}, {health} at {revision or '?'}"
    )


# -- down ---------------------------------------------------------------------------------


# -- status and credentials ---------------------------------------------------------------
