"""Gitea in the cluster, its admin from a Secret lab generates."""

from __future__ import annotations

from functools import partial

from lab import gitea, gitserver, k8s
from lab.context import Lab, deployment_observation


def ensure_gitea(lab: Lab) -> str:
    config = lab.config
    admin = lab.state.gitea_admin
    secret = gitea.admin_secret(
        config,
        username=admin,
        password=lab.state.secret("gitea_admin_password"),
        secret_key=lab.state.secret("gitea_secret_key"),
        internal_token=lab.state.secret("gitea_internal_token", 48),
    )
    lab.save()
    apply = lab.cluster().apply
    manifests = gitea.roll_on_secret_change(gitea.gitea_manifests(config), secret)
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
        partial(deployment_observation, lab, config.gitea_namespace, "gitea"),
        config.install_timeout,
    )
    if lab.byo:
        where = (
            f"svc/{gitserver.HTTP_SERVICE} in namespace {config.gitea_namespace} "
            "(lab reaches it through `kubectl port-forward`)"
        )
    else:
        where = f"http://{config.bind_address}:{config.gitea_http_port}"
    return lab.changes.note(f"Gitea {config.gitea_version} at {where}")
