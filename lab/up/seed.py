"""The GitOps repository on Gitea: gitops/ pushed, the webhook, Argo CD's access."""

from __future__ import annotations

import shutil
from pathlib import Path

from lab import argocd, checkpoints, gitops, gitserver, tags
from lab.context import Lab
from lab.up import GITOPS_DIR


def seed_gitops(lab: Lab) -> str:
    return lab.changes.make(
        f"push {GITOPS_DIR} to {lab.config.gitops_repo_url}; create the Argo CD webhook",
        lambda: _seed(lab),
        planned="planned",
    )


def _seed(lab: Lab) -> str:
    config = lab.config
    _ensure_gitea_token(lab)
    with gitserver.connect(config, lab.state, lab.context) as (server, remote):
        server.ensure_org(config.gitops_org)
        # Private: Argo CD reads it with the credentials of its repository Secret.
        server.ensure_repo(config.gitops_org, config.gitops_repo, private=True)
        result = gitops.seed(remote, _gitops_tree(lab))
        # Gitea marks a repository non-empty asynchronously after its first push.
        server.wait_for_branch(config.gitops_org, config.gitops_repo, "main", result.revision)
        server.ensure_push_webhook(config.gitops_org, config.gitops_repo)
        # The first state, for `lab.checkpoint.restore seed` (saved once, then kept).
        checkpoints.save(remote, checkpoints.SEED, replace=False)
    token = lab.state.gitea_token
    assert token is not None  # _ensure_gitea_token made it, and connect needed it
    lab.cluster().apply(argocd.repository_secret(config, lab.state.gitea_admin, token))
    return f"seeded at {result.revision[:12]}" if result.pushed else "already seeded"


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
            tags.retarget_images(text, lab.config.registry_host, registry), encoding="utf-8"
        )
    return copy


def _ensure_gitea_token(lab: Lab) -> None:
    """Wait for Gitea's API, and make lab's access token once (kept in the state)."""
    admin = lab.state.gitea_admin
    password = lab.state.secret("gitea_admin_password")
    with (
        gitserver.base_url(lab.config, lab.context) as base,
        gitserver.GitServer(base, gitserver.Credentials(admin, password=password)) as basic,
    ):
        basic.wait_until_healthy(lab.config.install_timeout)
        if lab.state.gitea_token is None:
            lab.state.gitea_token = basic.create_token("lab")
            lab.save()
