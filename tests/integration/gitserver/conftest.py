"""A real Gitea for the git server and GitOps tests, built by .ci/tools/gitea.sh.

One Gitea per test session, on a free port in a temporary directory, with sqlite, no
mailer, offline mode and generated secrets; each test gets its own repository. A missing
binary fails the tests (never a silent skip): CI must build it first.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.gitserver.support import (
    ORG,
    REPO_NUMBERS,
    Gitea,
    Repo,
    gitea_binary,
    start_gitea,
    write_fixture_tree,
)


@pytest.fixture(scope="session")
def gitea(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gitea]:
    binary = gitea_binary()
    if not shutil.which("git"):
        pytest.fail("git is not installed; Gitea and lab.gitops need it", pytrace=False)
    server = start_gitea(tmp_path_factory.mktemp("gitea"), binary)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def repo(gitea: Gitea) -> Repo:
    """A fresh, empty repository for one test."""
    name = f"gitops-{next(REPO_NUMBERS)}"
    with gitea.client() as server:
        server.ensure_repo(ORG, name)
    return Repo(gitea, name)


@pytest.fixture
def fixture_tree(tmp_path: Path) -> Path:
    return write_fixture_tree(tmp_path / "gitops")


@pytest.fixture(scope="session")
def stopped_gitea_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of a Gitea that was started and then stopped (nothing listens there now)."""
    server = start_gitea(tmp_path_factory.mktemp("stopped-gitea"), gitea_binary())
    server.stop()
    return server.url
