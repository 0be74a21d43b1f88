"""lab.gitserver against a real Gitea: tokens, repositories, pull requests, webhooks, errors."""

from __future__ import annotations

import http.server
import json
import queue
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab import gitops
from lab.errors import LabError, WaitTimeout
from lab.gitserver import ARGOCD_WEBHOOK_URL, Credentials, GitServer
from tests.integration.gitserver.support import ADMIN, ORG, Gitea, Repo

pytestmark = pytest.mark.integration

A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"


def test_the_token_works_and_creating_it_again_replaces_it(gitea: Gitea) -> None:
    with GitServer(gitea.url, gitea.admin) as server:
        first = server.create_token("replaced")
        second = server.create_token("replaced")
    assert first != second

    with gitea.client(second) as server:
        assert server.whoami() == ADMIN
    with gitea.client(first) as server, pytest.raises(LabError, match="refused the credentials"):
        server.whoami()


def test_ensure_repo_is_idempotent(gitea: Gitea) -> None:
    with gitea.client() as server:
        url = server.ensure_repo(ORG, "idempotent")
        assert server.ensure_repo(ORG, "idempotent") == url == f"{gitea.url}/{ORG}/idempotent.git"
        server.ensure_org(ORG)
    listed = httpx.get(
        f"{gitea.url}/api/v1/orgs/{ORG}/repos",
        params={"limit": "50"},
        headers={"Authorization": f"token {gitea.token}"},
        timeout=15,
    ).json()
    assert [r["name"] for r in listed].count("idempotent") == 1


def test_open_then_open_again_reuses_the_pull_request_then_merge(
    repo: Repo, fixture_tree: Path
) -> None:
    gitops.seed(repo.remote, fixture_tree)
    promotion = gitops.promote(repo.remote, repo.gitea.client(), ORG, repo.name, A)
    assert promotion.pull_request is not None
    number = promotion.pull_request.number

    with repo.gitea.client() as server:
        again, created = server.ensure_pull_request(
            ORG, repo.name, head=promotion.branch, base="main", title="new title", body="new body"
        )
        assert (again.number, created, again.title) == (number, False, "new title")
        assert again.body == "new body"
        assert len(server.list_pull_requests(ORG, repo.name)) == 1

        merged = server.merge_pull_request(ORG, repo.name, number, expected_head=promotion.head)

        assert merged.merged and merged.state == "closed" and merged.merge_commit
        assert server.list_pull_requests(ORG, repo.name, state="all")[0].merged
        assert server.branch_sha(ORG, repo.name, "main") == merged.merge_commit


def test_merge_refuses_a_head_that_is_not_the_expected_commit(
    repo: Repo, fixture_tree: Path
) -> None:
    gitops.seed(repo.remote, fixture_tree)
    promotion = gitops.promote(repo.remote, repo.gitea.client(), ORG, repo.name, A)
    assert promotion.pull_request is not None

    number = promotion.pull_request.number

    with repo.gitea.client() as server:
        # "head out of date" is final: it fails at once, not at the end of the deadline
        # (a short deadline here once made this test race Gitea's mergeability check).
        with pytest.raises(
            LabError, match=f"gave up waiting for Gitea at {repo.gitea.url} to merge"
        ) as caught:
            server.merge_pull_request(ORG, repo.name, number, expected_head="0" * 40)
        assert "HTTP 409: head out of date" in caught.value.message
        assert not server.get_pull_request(ORG, repo.name, number).merged


def test_the_argocd_push_webhook_is_created_once(repo: Repo) -> None:
    with repo.gitea.client() as server:
        hook, created = server.ensure_push_webhook(ORG, repo.name)
        again, created_again = server.ensure_push_webhook(ORG, repo.name)
        hooks = server.list_webhooks(ORG, repo.name)

    assert (created, created_again) == (True, False)
    assert again.id == hook.id
    assert hooks == [hook]
    assert (hook.url, hook.type, hook.events, hook.active) == (
        ARGOCD_WEBHOOK_URL,
        "gitea",
        ("push",),
        True,
    )


def test_a_wrong_token_is_a_lab_error_naming_the_url(gitea: Gitea) -> None:
    server = gitea.client("0123456789abcdef0123456789abcdef01234567")
    with server, pytest.raises(LabError) as caught:
        server.ensure_repo(ORG, "never-created")

    message = caught.value.message
    assert message.startswith(f"Gitea at {gitea.url} refused the credentials of user 'lab-admin'")
    assert "0123456789abcdef" not in caught.value.render()
    assert caught.value.hint and "token" in caught.value.hint


def test_a_wrong_password_cannot_create_a_token(gitea: Gitea) -> None:
    server = GitServer(gitea.url, Credentials(ADMIN, password="wrong"))
    with server, pytest.raises(LabError, match=f"Gitea at {gitea.url} refused the credentials"):
        server.create_token("never")


def test_a_stopped_server_is_a_lab_error_naming_the_url(stopped_gitea_url: str) -> None:
    with GitServer(stopped_gitea_url, Credentials(ADMIN, token="t")) as server:
        with pytest.raises(LabError) as caught:
            server.ensure_repo(ORG, "gitops")
        assert caught.value.message.startswith(f"cannot reach Gitea at {stopped_gitea_url}")
        assert "invoke lab.up" in (caught.value.hint or "")

        healthy, observed = server.is_healthy()
        assert not healthy and stopped_gitea_url in observed


def test_waiting_for_a_stopped_server_times_out_saying_what_it_saw(stopped_gitea_url: str) -> None:
    server = GitServer(stopped_gitea_url, Credentials(ADMIN, token="t"))
    with server, pytest.raises(WaitTimeout) as caught:
        server.wait_until_healthy(1.0, interval=0.2)

    error = caught.value
    assert error.message == (
        f"timed out after 1s waiting for Gitea at {stopped_gitea_url} to answer /api/healthz"
    )
    assert f"GET {stopped_gitea_url}/api/healthz" in error.last_observation


class _Receiver(http.server.BaseHTTPRequestHandler):
    """Records webhook deliveries (headers and JSON body)."""

    received: queue.Queue[tuple[dict[str, str], dict[str, Any]]] = queue.Queue()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.put((dict(self.headers), json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_push_is_delivered_as_the_gogs_event_argocd_parses(
    repo: Repo, fixture_tree: Path
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/api/webhook"
    try:
        with repo.gitea.client() as gitea:
            gitea.ensure_push_webhook(ORG, repo.name, url)
        gitops.seed(repo.remote, fixture_tree)
        deployed = gitops.deploy(repo.remote, "dev", A)

        deliveries: list[tuple[dict[str, str], dict[str, Any]]] = []
        while len(deliveries) < 2:
            deliveries.append(_Receiver.received.get(timeout=30))
    finally:
        server.shutdown()

    (headers, payload), *_ = [d for d in deliveries if d[1]["after"] == deployed.revision]
    assert headers["X-Gogs-Event"] == "push"  # ArgoCD checks this header first
    assert payload["ref"] == "refs/heads/main"
    # ArgoCD matches the payload's repository URLs to Applications' repoURL by host:
    # Gitea builds them from ROOT_URL (here the test server's; in the cluster
    # config.gitea_internal_url, see test_gitea_manifests.py).
    assert payload["repository"]["clone_url"] == f"{repo.gitea.url}/{ORG}/{repo.name}.git"
