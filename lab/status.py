"""What `lab.status`, `lab.creds` and the end of `lab.up` show: each component's state,
the credentials, and where everything answers."""

from __future__ import annotations

from lab import argocd, cluster, engine, gitserver, k8s, mesh, proc, registry
from lab.cli import Context
from lab.config import Config
from lab.errors import LabError
from lab.state import State


def urls(config: Config, *, byo: bool = False) -> dict[str, str]:
    """Where everything answers. The gateway routes each environment by host name;
    browsers and curl resolve *.localhost to the loopback address. On a cluster the
    user brought, no host port is mapped: the `kubectl port-forward` that reaches each."""
    if byo:
        return {
            "app": f"kubectl -n {mesh.ISTIO_NAMESPACE} port-forward svc/istio-ingressgateway "
            f"{config.ingress_http_port}:80, then http://dev.localhost:{config.ingress_http_port}/app/",
            "Gitea": f"kubectl -n {config.gitea_namespace} port-forward "
            f"svc/{gitserver.HTTP_SERVICE} {config.gitea_http_port}:{gitserver.HTTP_SERVICE_PORT}",
            "Argo CD": f"kubectl -n {argocd.NAMESPACE} port-forward svc/argocd-server "
            f"{config.argocd_http_port}:80",
        }
    port = config.ingress_http_port
    apps = {
        "app (dev)": f"http://dev.localhost:{port}/app/",
        "app (prod)": f"http://prod.localhost:{port}/app/",
        "monitor": f"http://dev.localhost:{port}/status/",
    }
    if not mesh.has_data_plane(config):
        none = "no ingress gateway (istio_data_plane: none); use `kubectl port-forward`"
        apps = dict.fromkeys(apps, none)
    return {
        **apps,
        "Gitea": f"http://{config.bind_address}:{config.gitea_http_port}/",
        "Argo CD": f"http://{config.bind_address}:{config.argocd_http_port}/",
    }


def status_rows(ctx: Context) -> list[tuple[str, str, str]]:
    """(component, state, detail) per component; quick when the lab is down."""
    config = ctx.config
    rows: list[tuple[str, str, str]] = []
    try:
        client = engine.client()
    except LabError as error:
        return [("Docker", "fail", error.message)]
    state = State.load(config.state_path)
    context = str(state.context or config.kube_context)
    if context != config.kube_context:  # a cluster the user brought, with their registry
        rows.append(("registry", "ok", f"{state.registry} (yours)"))
        rows.append(("cluster", "ok", f"context {context} (yours)"))
    else:
        running = registry.registry_status(client, config).running
        rows.append(
            (
                "registry",
                "ok" if running else "fail",
                f"{config.registry_host} ({'running' if running else 'absent'})",
            )
        )
        exists = proc.which("kind") is not None and cluster.cluster_exists(config)
        rows.append(
            (
                "cluster",
                "ok" if exists else "fail",
                f"kind {config.cluster_name}" + ("" if exists else " absent"),
            )
        )
        if not exists:
            return rows
    try:
        target = k8s.connect(context)
    except LabError as error:
        rows.append(("Kubernetes API", "fail", error.message))
        return rows
    for name in mesh.control_plane(config):
        seen = target.deployment_observation(mesh.ISTIO_NAMESPACE, name)
        rows.append((f"Istio {name}", "ok" if seen.done else "fail", seen.seen))
    for app in ("demo-dev", "demo-prod"):
        obj = target.get("argoproj.io/v1alpha1", "Application", app, argocd.NAMESPACE)
        if obj is None:
            rows.append((f"app {app}", "fail", "no Argo CD application"))
            continue
        sync, health, revision = argocd.application_status(obj)
        good = sync == "Synced" and health == "Healthy"
        rows.append(
            (f"app {app}", "ok" if good else "warn", f"{sync}, {health} at {revision or '?'}")
        )
    seen = target.deployment_observation(config.gitea_namespace, "gitea")
    rows.append(("Gitea", "ok" if seen.done else "fail", seen.seen))
    for name, url in urls(config, byo=context != config.kube_context).items():
        rows.append((name, "ok", url))
    return rows


def credentials(ctx: Context) -> list[tuple[str, str, str]]:
    """(what, user, password) for Gitea, Argo CD and the app's admin."""
    state = State.load(ctx.config.state_path)
    secrets_ = state.secrets
    if not secrets_:
        raise LabError("no lab credentials yet", hint="run `invoke lab.up` first")
    return [
        ("Gitea", state.gitea_admin, secrets_.get("gitea_admin_password", "?")),
        ("Argo CD", "admin", state.argocd_admin_password or "(not installed yet)"),
        ("app admin", "admin", secrets_.get("app_admin_password", "?")),
    ]
