"""Helpers for the Gitea tests: start a real Gitea, a GitOps fixture tree, kustomize."""

from __future__ import annotations

import base64
import getpass
import itertools
import os
import secrets
import shutil
import socket
import subprocess
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from lab.config import Config
from lab.gitserver import Credentials, GitServer, Remote
from lab.proc import run
from tests.conftest import REPO

ORG = "lab"
ADMIN = "lab-admin"
BUILD_SCRIPT = ".ci/tools/gitea.sh"


def gitea_binary() -> Path:
    """The Gitea binary: $LAB_GITEA (set by .ci/run), else the pinned version's cache."""
    version = Config().gitea_version
    cache = Path(os.environ.get("LAB_CACHE_DIR", Path.home() / ".cache" / "lab"))
    candidates = [Path(p) for p in (os.environ.get("LAB_GITEA"),) if p]
    candidates.append(cache / f"gitea-{version}" / "gitea")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        f"the Gitea binary is missing (looked at {', '.join(map(str, candidates))}); "
        f"build it first with `{BUILD_SCRIPT}` (about 6 CPU-minutes, once; cached under ~/.cache/lab)",
        pytrace=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Gitea:
    """A running Gitea: where it is, who administers it, how to stop it."""

    url: str
    root: Path
    binary: Path
    admin: Credentials
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    token: str = field(default="", repr=False)

    @property
    def log(self) -> Path:
        return self.root / "gitea.log"

    def client(self, token: str | None = None) -> GitServer:
        return GitServer(self.url, Credentials(ADMIN, token=token or self.token))

    def remote(self, repo: str, token: str | None = None) -> Remote:
        return Remote(f"{self.url}/{ORG}/{repo}.git", ADMIN, token or self.token)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def app_ini(root: Path, port: int, static: Path) -> str:
    return textwrap.dedent(
        f"""\
        APP_NAME = lab integration tests
        RUN_MODE = prod
        RUN_USER = {getpass.getuser()}
        WORK_PATH = {root}

        [server]
        PROTOCOL = http
        HTTP_ADDR = 127.0.0.1
        HTTP_PORT = {port}
        DOMAIN = 127.0.0.1
        ROOT_URL = http://127.0.0.1:{port}/
        APP_DATA_PATH = {root}/data
        STATIC_ROOT_PATH = {static}
        DISABLE_SSH = true
        START_SSH_SERVER = false
        OFFLINE_MODE = true
        LFS_START_SERVER = false

        [database]
        DB_TYPE = sqlite3
        PATH = {root}/data/gitea.db

        [repository]
        ROOT = {root}/repositories
        DEFAULT_BRANCH = main

        [security]
        INSTALL_LOCK = true
        SECRET_KEY = {secrets.token_urlsafe(32)}
        INTERNAL_TOKEN = {secrets.token_urlsafe(48)}

        [service]
        DISABLE_REGISTRATION = true

        [mailer]
        ENABLED = false

        [session]
        PROVIDER = memory

        [cache]
        ADAPTER = memory

        [webhook]
        ALLOWED_HOST_LIST = private,loopback,*.svc.cluster.local

        [cron.update_checker]
        ENABLED = false

        [log]
        MODE = file
        LEVEL = Info
        ROOT_PATH = {root}/log
        """
    )


def gitea_env() -> dict[str, str]:
    """Environment Gitea needs here: CI runs as root, which Gitea refuses unless told."""
    return {"GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT": "true"} if os.geteuid() == 0 else {}


def start_gitea(root: Path, binary: Path) -> Gitea:
    """Configure, migrate, create the admin and start Gitea; wait until it is healthy."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = root / "app.ini"
    config.write_text(app_ini(root, port, binary.parent))
    env = {"GITEA_WORK_DIR": str(root), "HOME": str(root), **gitea_env()}
    password = secrets.token_urlsafe(24)
    gitea = Gitea(f"http://127.0.0.1:{port}", root, binary, Credentials(ADMIN, password=password))
    run((str(binary), "--config", str(config), "migrate"), timeout=120, env=env)
    run(
        (
            str(binary), "--config", str(config), "admin", "user", "create", "--admin",
            "--username", ADMIN, "--password", password, "--email", f"{ADMIN}@lab.local",
            "--must-change-password=false",
        ),
        timeout=60,
        env=env,
    )  # fmt: skip
    with (root / "gitea.log").open("wb") as log:
        gitea.process = subprocess.Popen(  # a server outlives any lab.proc.run call
            (str(binary), "--config", str(config), "web"),
            cwd=root,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with GitServer(gitea.url, gitea.admin) as server:
            server.wait_until_healthy(60)
            gitea.token = server.create_token("lab-tests")
    except BaseException:
        gitea.stop()
        print(gitea.log.read_text(errors="replace")[-4000:])
        raise
    return gitea


REPO_NUMBERS = itertools.count(1)


@dataclass(frozen=True)
class Repo:
    """A fresh repository on the session's Gitea, for one test."""

    gitea: Gitea
    name: str

    @property
    def remote(self) -> Remote:
        return self.gitea.remote(self.name)

    def main(self) -> str | None:
        with self.gitea.client() as server:
            return server.branch_sha(ORG, self.name, "main")


# A GitOps tree of the real one's shape (docs/CONTRACTS.md): a base with one Deployment
# per image placeholder, and dev and prod overlays mapping the placeholders.
_BASE = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - workloads.yaml
configMapGenerator:
  - name: smoke-test
    literals:
      - APP_HOST=app.localhost
"""
_DEPLOYMENT = """\
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: app
          image: {name}
"""
_ENVIRONMENT = """\
# {env}: deployed by ArgoCD into demo-{env}; lab edits the newTag values.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: demo-{env}
resources:
  - ../../base
images:
{images}configMapGenerator:
  - name: smoke-test
    behavior: merge
    literals:
      - EXPECTED_V1_COMMIT=
      - EXPECTED_V2_COMMIT=
"""
PLACEHOLDERS = ("backend-v1", "backend-v2", "monitor-v1", "monitor-v2", "frontend", "smoke")


def write_fixture_tree(root: Path) -> Path:
    (root / "base").mkdir(parents=True)
    (root / "base" / "kustomization.yaml").write_text(_BASE)
    (root / "base" / "workloads.yaml").write_text(
        "".join(_DEPLOYMENT.format(name=name) for name in PLACEHOLDERS)
    )
    for env in ("dev", "prod"):
        images = "".join(
            f"  - name: {name}  # {name.split('-')[0]}\n"
            f"    newName: localhost:5001/lab/{name.split('-')[0]}\n"
            "    newTag: main\n"
            for name in PLACEHOLDERS
        )
        (root / "environments" / env).mkdir(parents=True)
        (root / "environments" / env / "kustomization.yaml").write_text(
            _ENVIRONMENT.format(env=env, images=images)
        )
    (root / "README.md").write_text("The GitOps repository (test fixture).\n")
    return root


REAL_TREE = REPO / "gitops"


def kustomize_argv(directory: Path) -> tuple[str, ...]:
    """How to render `directory`: the pinned kustomize if built, else `kubectl kustomize`."""
    explicit = os.environ.get("LAB_KUSTOMIZE")
    cache = Path(os.environ.get("LAB_CACHE_DIR", Path.home() / ".cache" / "lab"))
    built = sorted(cache.glob("kustomize-*/kustomize"))
    if explicit:
        return (explicit, "build", str(directory))
    if built:
        return (str(built[-1]), "build", str(directory))
    if shutil.which("kubectl"):
        return ("kubectl", "kustomize", str(directory))
    pytest.fail("neither kustomize (.ci/tools/kustomize.sh) nor kubectl is installed")


def _get(repo: Repo, path: str, params: dict[str, str]) -> httpx.Response:
    """GET from Gitea's API, retried while it still treats a just-pushed repo as empty.

    (Right after the first push Gitea marks the repository non-empty asynchronously;
    until then reads answer 409 "repository is empty", 500, or 404 for its files.)
    """
    for delay in (0.2, 0.4, 0.8, 1.6, 3.2, None):
        response = httpx.get(
            f"{repo.gitea.url}/api/v1/repos/{ORG}/{repo.name}/{path}",
            params=params,
            headers={"Authorization": f"token {repo.gitea.token}"},
            timeout=15,
        )
        if response.status_code not in (404, 409, 500) or delay is None:
            break
        time.sleep(delay)
    response.raise_for_status()
    return response


def read_file(repo: Repo, path: str, ref: str = "main") -> str:
    """A file of the repository at `ref`, through Gitea's raw endpoint."""
    return _get(repo, f"raw/{path}", {"ref": ref}).text


def commit_messages(repo: Repo, ref: str = "main") -> list[str]:
    """The first lines of the commit messages on `ref`, newest first."""
    response = _get(
        repo, "commits", {"sha": ref, "limit": "100", "stat": "false", "files": "false"}
    )
    return [str(item["commit"]["message"]).splitlines()[0] for item in response.json()]


def clone(repo: Repo, dest: Path) -> Path:
    """A plain clone of the (public) repository."""
    run(("git", "clone", "-q", f"{repo.gitea.url}/{ORG}/{repo.name}.git", str(dest)), timeout=60)
    return dest


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects kustomize renders from `directory`."""
    rendered = run(kustomize_argv(directory), timeout=60).stdout
    return [document for document in yaml.safe_load_all(rendered) if document]


def render_images(directory: Path) -> dict[str, str]:
    """Each Deployment's first container image, as kustomize renders `directory`."""
    images = {}
    for document in render(directory):
        if document.get("kind") == "Deployment":
            containers = document["spec"]["template"]["spec"]["containers"]
            images[document["metadata"]["name"]] = containers[0]["image"]
    return images


def write_file(repo: Repo, path: str, text: str, message: str) -> None:
    """Change a file on main by hand, as a person would in Gitea's editor."""
    url = f"{repo.gitea.url}/api/v1/repos/{ORG}/{repo.name}/contents/{path}"
    headers = {"Authorization": f"token {repo.gitea.token}"}
    current = _get(repo, f"contents/{path}", {"ref": "main"})
    response = httpx.put(
        url,
        json={
            "content": base64.b64encode(text.encode()).decode(),
            "sha": current.json()["sha"],
            "message": message,
            "branch": "main",
        },
        headers=headers,
        timeout=15,
    )
    response.raise_for_status()
