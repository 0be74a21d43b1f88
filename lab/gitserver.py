"""The local git server: Gitea's REST API, and the one way in (`connect`).

Every call converges: creating what exists returns it (organisation, repository, webhook),
opening a pull request that is already open returns the open one, merging a merged pull
request is a no-op. Failures are `LabError`s naming the server's URL; a token is never
part of a message, a log line or a repr.

Git itself (clone, commit, push) lives in `lab.checkout`; the manifests that run Gitea in
the cluster in `lab.gitea`. This module only speaks HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from lab import proc, wait
from lab.config import Config
from lab.errors import LabError
from lab.state import State

# ArgoCD's webhook endpoint as seen from inside the cluster. Gitea's "gitea" webhook type
# sends X-Gogs-Event, which ArgoCD checks first and parses as a Gogs push
# (argo-cd util/webhook/webhook.go).
ARGOCD_WEBHOOK_URL = "http://argocd-server.argocd.svc.cluster.local/api/webhook"

# Scopes of the token lab uses: repositories (content, pull requests, hooks),
# organisations, and the user itself (to check who the token belongs to).
TOKEN_SCOPES = ("write:repository", "write:organization", "write:user")

# What Gitea's merge endpoint (routers/api/v1/repo/pull.go, MergePullRequest) answers
# when trying again can succeed: 405 "Please try again later" while it is still checking
# whether a freshly pushed pull request can be merged, and 409 "merge push out of date"
# when the base moved while it merged. Every other 405/409 is final: "head out of date"
# (not the expected commit), merge conflicts, not allowed, work in progress.
_MERGE_ANSWERS = frozenset({405, 409})
_MERGE_RETRY_MESSAGES = frozenset({"please try again later", "merge push out of date"})
_READ_RETRY_DELAYS = (0.2, 0.4, 0.8, 1.6)


@dataclass(frozen=True)
class PullRequest:
    """A pull request as Gitea reports it."""

    number: int
    title: str
    head: str
    base: str
    head_sha: str
    state: str  # "open" or "closed"
    merged: bool
    url: str  # the web page
    body: str = ""
    merge_commit: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> PullRequest:
        return cls(
            number=int(data["number"]),
            title=str(data.get("title", "")),
            head=str(data["head"]["ref"]),
            base=str(data["base"]["ref"]),
            head_sha=str(data["head"].get("sha") or ""),
            state=str(data.get("state", "")),
            merged=bool(data.get("merged")),
            url=str(data.get("html_url", "")),
            body=str(data.get("body") or ""),
            merge_commit=data.get("merge_commit_sha") or None,
        )


@dataclass(frozen=True)
class Webhook:
    """A repository webhook."""

    id: int
    url: str
    type: str
    events: tuple[str, ...]
    active: bool

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Webhook:
        return cls(
            id=int(data["id"]),
            url=str(data.get("config", {}).get("url", "")),
            type=str(data.get("type", "")),
            events=tuple(str(event) for event in data.get("events") or ()),
            active=bool(data.get("active")),
        )


@dataclass(frozen=True)
class Credentials:
    """Who lab talks to Gitea as. The secret never appears in a repr."""

    username: str
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)


class GitServer:
    """A client for one Gitea server's REST API (`base_url` as reached from the host)."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        timeout: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self._sleep = sleep
        self._client = httpx.Client(base_url=f"{self.base_url}/api/v1", timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> GitServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GitServer({self.base_url!r}, user={self.credentials.username!r})"

    # -- health and identity -------------------------------------------------------------

    def is_healthy(self) -> tuple[bool, str]:
        """Whether Gitea answers its health check, and what was observed."""
        try:
            response = self._client.get(f"{self.base_url}/api/healthz")
        except httpx.HTTPError as error:
            return False, f"GET {self.base_url}/api/healthz: {_describe(error)}"
        observed = (
            f"GET {self.base_url}/api/healthz: HTTP {response.status_code} {_short(response)}"
        )
        return response.status_code == 200, observed

    def wait_until_healthy(self, timeout: float, *, interval: float = 0.5) -> None:
        """Wait until Gitea's /api/healthz answers 200, or raise `WaitTimeout`."""

        def look() -> wait.Observation:
            return wait.Observation(*self.is_healthy())

        wait.until(
            f"Gitea at {self.base_url} to answer /api/healthz",
            look,
            timeout=timeout,
            interval=interval,
            sleep=self._sleep,
            hint="check Gitea's pod and its logs (`kubectl -n gitea logs deploy/gitea`)",
        )

    def whoami(self) -> str:
        """The login of the user the credentials belong to (checks that they work)."""
        return str(self._request("GET", "/user").json()["login"])

    # -- tokens --------------------------------------------------------------------------

    def create_token(self, name: str, scopes: Sequence[str] = TOKEN_SCOPES) -> str:
        """A new access token `name` for the user, replacing one of the same name.

        Gitea shows a token's value only once, so an existing token of that name is
        deleted and created again. Needs the user's password (basic auth).
        """
        if not self.credentials.password:
            raise LabError(
                f"creating a Gitea token at {self.base_url} needs the user's password",
                hint="pass Credentials(username, password=...)",
            )
        user = self.credentials.username
        for token in self._paged(f"/users/{user}/tokens", basic=True):
            if token.get("name") == name:
                self._request("DELETE", f"/users/{user}/tokens/{token['id']}", basic=True)
        response = self._request(
            "POST", f"/users/{user}/tokens", json={"name": name, "scopes": list(scopes)}, basic=True
        )
        value: str = response.json()["sha1"]
        return value

    # -- organisations and repositories --------------------------------------------------

    def ensure_org(self, org: str) -> None:
        """Create organisation `org` unless it exists."""
        if self._exists(f"/orgs/{org}"):
            return
        self._request("POST", "/orgs", json={"username": org, "visibility": "public"})

    def ensure_repo(self, org: str, repo: str, *, private: bool = False) -> str:
        """Create the empty repository `org/repo` unless it exists; its clone URL (host side)."""
        self.ensure_org(org)
        if not self._exists(f"/repos/{org}/{repo}"):
            self._request(
                "POST",
                f"/orgs/{org}/repos",
                json={
                    "name": repo,
                    "private": private,
                    "auto_init": False,
                    "default_branch": "main",
                    "description": "GitOps repository of the local lab (seeded from gitops/)",
                },
            )
        return self.clone_url(org, repo)

    def clone_url(self, org: str, repo: str) -> str:
        return f"{self.base_url}/{org}/{repo}.git"

    def branch_sha(self, org: str, repo: str, branch: str) -> str | None:
        """The commit `branch` points to, or None when there is no such branch."""
        response = self._request("GET", f"/repos/{org}/{repo}/branches/{branch}", allow=(404,))
        if response.status_code == 404:
            return None
        return str(response.json()["commit"]["id"])

    def wait_for_branch(
        self, org: str, repo: str, branch: str, sha: str, timeout: float = 30.0
    ) -> None:
        """Wait until Gitea's API shows `branch` at `sha` (git pushes are indexed async).

        Right after a push, and above all the first push into an empty repository, the
        API may still answer as before it; pull requests opened then can fail.
        """
        path = f"/repos/{org}/{repo}/branches/{branch}"

        def look() -> wait.Observation:
            try:
                response = self._request("GET", path, allow=(404, 409, 500))
            except LabError as error:
                return wait.refusal(error)
            current = response.json()["commit"]["id"] if response.status_code == 200 else None
            seen = f"GET {path}: HTTP {response.status_code} {_short(response)}"
            return wait.Observation(current == sha, seen)

        wait.until(
            f"Gitea at {self.base_url} to show branch {branch} of {org}/{repo} at {sha[:12]}",
            look,
            timeout=timeout,
            interval=0.1,
            backoff=2.0,
            max_interval=1.0,
            sleep=self._sleep,
            hint="see Gitea's log (`kubectl -n gitea logs deploy/gitea`)",
        )

    # -- pull requests -------------------------------------------------------------------

    def list_pull_requests(self, org: str, repo: str, *, state: str = "open") -> list[PullRequest]:
        """Pull requests in `state` ("open", "closed" or "all"), newest first."""
        return [
            PullRequest.from_api(data)
            for data in self._paged(f"/repos/{org}/{repo}/pulls", params={"state": state})
        ]

    def find_open_pull_request(
        self, org: str, repo: str, head: str, base: str
    ) -> PullRequest | None:
        """The open pull request from branch `head` into `base`, if there is one."""
        for pull in self.list_pull_requests(org, repo, state="open"):
            if pull.head == head and pull.base == base:
                return pull
        return None

    def ensure_pull_request(
        self, org: str, repo: str, *, head: str, base: str, title: str, body: str
    ) -> tuple[PullRequest, bool]:
        """The open pull request `head` → `base`: the existing one, or a new one.

        Returns the pull request and whether it was created now. An existing one gets
        `title` and `body` (they may describe a newer push to the same branch).
        """
        existing = self.find_open_pull_request(org, repo, head, base)
        if existing is not None:
            self._request(
                "PATCH",
                f"/repos/{org}/{repo}/pulls/{existing.number}",
                json={"title": title, "body": body},
            )
            return self.get_pull_request(org, repo, existing.number), False
        response = self._request(
            "POST",
            f"/repos/{org}/{repo}/pulls",
            json={"head": head, "base": base, "title": title, "body": body},
            allow=(409,),
        )
        if response.status_code == 409:
            # Opened concurrently by someone else between our look-up and our request.
            raced = self.find_open_pull_request(org, repo, head, base)
            if raced is None:
                raise self._error("POST", f"/repos/{org}/{repo}/pulls", response)
            return raced, False
        return PullRequest.from_api(response.json()), True

    def get_pull_request(self, org: str, repo: str, number: int) -> PullRequest:
        return PullRequest.from_api(
            self._request("GET", f"/repos/{org}/{repo}/pulls/{number}").json()
        )

    def close_pull_request(self, pull: PullRequest, org: str, repo: str, *, why: str) -> None:
        """Close `pull` with `why` appended to its description (its branch stays). One
        edit of the pull request: lab's token needs no scope for issue comments."""
        body = f"{pull.body.rstrip()}\n\n---\n{why}\n"
        self._request(
            "PATCH",
            f"/repos/{org}/{repo}/pulls/{pull.number}",
            json={"state": "closed", "body": body},
        )

    def merge_pull_request(
        self,
        org: str,
        repo: str,
        number: int,
        *,
        expected_head: str | None = None,
        message: str | None = None,
        timeout: float = 60.0,
        delete_branch: bool = True,
    ) -> PullRequest:
        """Merge pull request `number` (a merge commit) and return it, verified `merged`.

        Right after a push Gitea may still be checking mergeability ("Please try again
        later"), and the base may move under a merge ("merge push out of date"): only
        those answers are retried, until `timeout`; a real conflict or a head that is not
        `expected_head` fails at once. Merging a merged pull request returns it unchanged.
        """
        path = f"/repos/{org}/{repo}/pulls/{number}/merge"
        payload: dict[str, Any] = {"Do": "merge", "delete_branch_after_merge": delete_branch}
        if expected_head:
            payload["head_commit_id"] = expected_head
        if message:
            payload["merge_message_field"] = message

        def look() -> wait.Observation:
            try:
                current = self.get_pull_request(org, repo, number)
                if current.merged:
                    return wait.Observation(True, "merged")
                if current.state != "open":
                    return wait.Observation(
                        False,
                        "it is closed without being merged",
                        failed=True,
                        hint=f"reopen it in Gitea ({current.url}) or run the promotion again",
                    )
                response = self._request("POST", path, json=payload, allow=_MERGE_ANSWERS)
            except LabError as error:
                return wait.refusal(error)
            if response.status_code not in _MERGE_ANSWERS:
                return wait.Observation(True, "merge accepted")
            answer = f"HTTP {response.status_code}: {_message(response)}"
            if not merge_retryable(response.status_code, _message(response)):
                return wait.Observation(
                    False,
                    answer,
                    failed=True,
                    hint=f"open {current.url} to see why (conflicts? branch protection? "
                    "a newer push to the branch?)",
                )
            return wait.Observation(False, answer)  # still checking, or the base moved

        wait.until(
            f"Gitea at {self.base_url} to merge pull request #{number} in {org}/{repo}",
            look,
            timeout=timeout,
            interval=0.25,
            backoff=2.0,
            max_interval=2.0,
            sleep=self._sleep,
            hint="open the pull request in Gitea to see why (conflicts? branch protection?)",
        )
        merged = self.get_pull_request(org, repo, number)
        if not merged.merged:
            raise LabError(
                f"Gitea at {self.base_url} accepted the merge of pull request #{number} in "
                f"{org}/{repo} but does not report it merged",
                hint=f"look at {merged.url}",
            )
        return merged

    # -- webhooks ------------------------------------------------------------------------

    def list_webhooks(self, org: str, repo: str) -> list[Webhook]:
        return [Webhook.from_api(data) for data in self._paged(f"/repos/{org}/{repo}/hooks")]

    def ensure_push_webhook(
        self, org: str, repo: str, url: str = ARGOCD_WEBHOOK_URL, *, secret: str | None = None
    ) -> tuple[Webhook, bool]:
        """The active push webhook to `url` (ArgoCD's by default); created if missing."""
        for hook in self.list_webhooks(org, repo):
            if hook.url == url:
                if hook.active and "push" in hook.events and hook.type in ("gitea", "gogs"):
                    return hook, False
                edit = {k: v for k, v in _hook_payload(url, secret).items() if k != "type"}
                response = self._request("PATCH", f"/repos/{org}/{repo}/hooks/{hook.id}", json=edit)
                return Webhook.from_api(response.json()), False
        response = self._request(
            "POST", f"/repos/{org}/{repo}/hooks", json=_hook_payload(url, secret)
        )
        return Webhook.from_api(response.json()), True

    # -- plumbing ------------------------------------------------------------------------

    def _exists(self, path: str) -> bool:
        return self._request("GET", path, allow=(404,)).status_code != 404

    def _paged(
        self, path: str, *, params: Mapping[str, str] | None = None, basic: bool = False
    ) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            query = {**(params or {}), "page": str(page), "limit": "50"}
            items = self._request("GET", path, params=query, basic=basic).json()
            if not isinstance(items, list):
                return
            yield from items
            if len(items) < 50:
                return
            page += 1

    def _auth(self, basic: bool) -> tuple[httpx.Auth | None, dict[str, str]]:
        creds = self.credentials
        if creds.token and not basic:
            return None, {"Authorization": f"token {creds.token}"}
        if creds.password:
            return httpx.BasicAuth(creds.username, creds.password), {}
        if creds.token:
            return None, {"Authorization": f"token {creds.token}"}
        return None, {}

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        allow: Sequence[int] | frozenset[int] = (),
        basic: bool = False,
    ) -> httpx.Response:
        auth, headers = self._auth(basic)
        # Right after the first push into an empty repository Gitea still marks it empty
        # for a moment and some reads answer 500 (a nil GitRepo); reads are retried.
        retries = _READ_RETRY_DELAYS if method == "GET" else ()
        for delay in (*retries, None):
            try:
                response = self._client.request(
                    method,
                    path,
                    json=json,
                    params=params,
                    headers=headers,
                    auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.HTTPError as error:
                raise LabError(
                    f"cannot reach Gitea at {self.base_url} ({method} {path}: {_describe(error)})",
                    hint="is the lab up? (`invoke lab.up` starts it; `invoke lab.status` shows it)",
                ) from error
            if response.status_code < 400 or response.status_code in allow:
                return response
            if response.status_code < 500 or delay is None:
                break
            self._sleep(delay)
        raise self._error(method, path, response)

    def _error(self, method: str, path: str, response: httpx.Response) -> LabError:
        status = response.status_code
        user = self.credentials.username
        if status == 401:
            return LabError(
                f"Gitea at {self.base_url} refused the credentials of user {user!r} "
                f"(HTTP 401 on {method} {path})",
                hint="the Gitea admin password or token in .lab/state.json does not match the "
                "server; run `invoke lab.up` again to recreate the token",
            )
        if status == 403:
            return LabError(
                f"Gitea at {self.base_url} forbids {method} {path} to user {user!r} "
                f"(HTTP 403: {_message(response)})",
                hint="the token lacks a scope or the user lacks a permission; "
                f"lab's token needs {', '.join(TOKEN_SCOPES)}",
            )
        return LabError(
            f"Gitea at {self.base_url} answered HTTP {status} to {method} {path}: "
            f"{_message(response)}",
            hint="see Gitea's log for the cause (`kubectl -n gitea logs deploy/gitea`)",
        )


def _hook_payload(url: str, secret: str | None) -> dict[str, Any]:
    config = {"url": url, "content_type": "json"}
    if secret:
        config["secret"] = secret
    return {
        "type": "gitea",
        "config": config,
        "events": ["push"],
        "branch_filter": "*",
        "active": True,
    }


def merge_retryable(status: int, message: str) -> bool:
    """Whether Gitea's answer to a merge says that trying again can succeed (pure)."""
    return status in _MERGE_ANSWERS and message.strip().lower() in _MERGE_RETRY_MESSAGES


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return _short(response)
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    return _short(response)


def _short(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return text[:200] + ("…" if len(text) > 200 else "")


def _describe(error: httpx.HTTPError) -> str:
    if isinstance(error, httpx.ConnectError):
        return f"connection failed: {error}" if str(error) else "connection refused"
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    return f"{type(error).__name__}: {error}"


# -- the one way in ----------------------------------------------------------------------


@dataclass(frozen=True)
class Remote:
    """A git remote reached over HTTP with a user and an access token (never shown)."""

    url: str
    username: str
    token: str = field(repr=False)

    def __post_init__(self) -> None:
        if "@" in self.url.split("//", 1)[-1].split("/", 1)[0]:
            raise ValueError("put credentials in Remote.token, not in the URL")


# The Service in front of Gitea's HTTP port (resources/gitea/service.yaml).
HTTP_SERVICE, HTTP_SERVICE_PORT = "gitea-http", 3000


@contextmanager
def base_url(config: Config, context: str) -> Iterator[str]:
    """Where this process reaches the lab's Gitea, for the `with` block.

    On the lab's kind cluster, the host port kind maps. On a cluster the user brought
    (`lab.up --context`), nothing maps a host port: a `kubectl port-forward` to Gitea's
    Service on a free local port, stopped when the block ends.
    """
    if context == config.kube_context:
        yield f"http://{config.bind_address}:{config.gitea_http_port}"
        return
    argv = (
        "kubectl", "--context", context, "-n", config.gitea_namespace, "port-forward",
        "--address", "127.0.0.1", f"svc/{HTTP_SERVICE}", f":{HTTP_SERVICE_PORT}",
    )  # fmt: skip
    with proc.serving(
        argv,
        ready=r"Forwarding from 127\.0\.0\.1:(\d+)",
        timeout=60,
        hint=f"is Gitea running? `kubectl --context {context} -n {config.gitea_namespace} "
        "get pods`; `invoke lab.up --context ...` installs it",
    ) as forwarded:
        yield f"http://127.0.0.1:{forwarded.group(1)}"


@contextmanager
def connect(
    config: Config, state: State, context: str | None = None
) -> Iterator[tuple[GitServer, Remote]]:
    """The lab's Gitea (with the token `lab.up` made) and its GitOps remote."""
    token = state.gitea_token
    if token is None:
        raise LabError("the lab's Git server is not set up", hint="run `invoke lab.up` first")
    admin = state.gitea_admin
    where = context or str(state.context or config.kube_context)
    with (
        base_url(config, where) as base,
        GitServer(base, Credentials(admin, token=token)) as server,
    ):
        yield server, Remote(server.clone_url(config.gitops_org, config.gitops_repo), admin, token)
