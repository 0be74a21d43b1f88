"""A private clone of a Git remote, with git run through `lab.proc`.

Credentials reach git through a GIT_ASKPASS script in a private temporary directory, so
no token is ever in an argv, an environment overlay, a log line or an error. Commits are
made by a bot identity. A push that loses a race says so (False) instead of failing, so
the caller can re-fetch, re-apply its edit and push again.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from lab.errors import LabError
from lab.gitserver import Remote
from lab.proc import Result, run

log = logging.getLogger("lab.checkout")

BOT_NAME = "lab-bot"
BOT_EMAIL = "lab-bot@lab.local"
MAIN = "main"
GIT_TIMEOUT = 60.0


class Checkout:
    """A private clone of a remote in a temporary directory, with credentials for git."""

    def __init__(self, remote: Remote, root: Path, timeout: float) -> None:
        self.remote = remote
        self.root = root
        self.path = root / "repo"
        self.timeout = timeout
        self._env = {"GIT_ASKPASS": str(root / "askpass"), "GIT_TERMINAL_PROMPT": "0"}

    def git(self, *args: str, check: bool = True) -> Result:
        argv = (
            "git",
            "-c", f"user.name={BOT_NAME}",
            "-c", f"user.email={BOT_EMAIL}",
            "-c", "commit.gpgsign=false",
            "-c", "tag.gpgSign=false",
            "-c", "core.hooksPath=/dev/null",
            "-c", "credential.helper=",
            *args,
        )  # fmt: skip
        result = run(argv, timeout=self.timeout, cwd=self.path, env=self._env, check=False)
        if check and not result.ok:
            raise _git_error(result, self.remote.url)
        return result

    def fetch(self, branch: str) -> str | None:
        """Fetch `branch` into origin/<branch>; its commit, or None if there is none."""
        listed = self.git("ls-remote", "--heads", "origin", f"refs/heads/{branch}")
        if not listed.stdout.strip():
            return None
        self.git(
            "fetch",
            "-q",
            "--no-tags",
            "origin",
            f"+refs/heads/{branch}:refs/remotes/origin/{branch}",
        )
        return self.git("rev-parse", f"refs/remotes/origin/{branch}").stdout.strip()

    def checkout(self, branch: str, start: str) -> None:
        self.git("checkout", "-q", "-f", "-B", branch, start)
        self.git("clean", "-q", "-fdx")

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def commit_all(self, message: str) -> bool:
        """Stage everything and commit; False (no commit) when nothing changed."""
        self.git("add", "-A")
        if not self.git("status", "--porcelain").stdout.strip():
            return False
        self.git("commit", "-q", "-m", message)
        return True

    def push(self, ref: str, *, lease: str | None = None) -> bool:
        """Push HEAD to `ref`; False when the remote moved meanwhile (retry), else raise."""
        args = ["push", "--porcelain", "origin", f"HEAD:refs/heads/{ref}"]
        if lease is not None:
            args.insert(1, f"--force-with-lease=refs/heads/{ref}:{lease}")
        result = self.git(*args, check=False)
        if result.ok:
            return True
        if _lost_race(result.stdout + result.stderr):
            log.info("push to %s lost a race; re-fetching", self.remote.url)
            return False
        raise _git_error(result, self.remote.url)


@contextmanager
def open_checkout(remote: Remote, timeout: float = GIT_TIMEOUT) -> Iterator[Checkout]:
    root = Path(tempfile.mkdtemp(prefix="lab-gitops-"))  # mode 0700
    try:
        token_file = root / "token"
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(remote.token)
        askpass = root / "askpass"
        askpass.write_text(
            "#!/bin/sh\n"
            "# git asks for the user name, then the password; answer from private files.\n"
            'case "$1" in\n'
            f"  Username*) printf '%s\\n' {shlex.quote(remote.username)} ;;\n"
            f"  *) cat {shlex.quote(str(token_file))}; echo ;;\n"
            "esac\n",
            encoding="utf-8",
        )
        askpass.chmod(stat.S_IRWXU)
        checkout = Checkout(remote, root, timeout)
        checkout.path.mkdir()
        run(("git", "init", "-q", "-b", MAIN, str(checkout.path)), timeout=timeout)
        checkout.git("remote", "add", "origin", remote.url)
        yield checkout
    finally:
        shutil.rmtree(root, ignore_errors=True)


_RACE_MARKERS = (
    "[rejected]",
    "non-fast-forward",
    "fetch first",
    "stale info",
    "cannot lock ref",
    "failed to update ref",
    "incorrect old value",
)


def _lost_race(output: str) -> bool:
    return any(marker in output for marker in _RACE_MARKERS)


def _git_error(result: Result, url: str) -> LabError:
    """A LabError for a failed git command against `url`, saying what to do."""
    output = result.stderr or result.stdout
    lowered = output.lower()
    what = f"git {_subcommand(result.argv)}"
    if any(marker in lowered for marker in _AUTH_MARKERS):
        message = f"Gitea at {url} refused lab's credentials ({what})"
        hint = "the Gitea token in .lab/state.json is not valid; run `invoke lab.up` to renew it"
    elif any(marker in lowered for marker in _UNREACHABLE_MARKERS):
        message = f"cannot reach the git server at {url} ({what})"
        hint = (
            "is the lab up? (`invoke lab.up`; Gitea listens on 127.0.0.1 via kind's port mapping)"
        )
    elif "not found" in lowered and "repository" in lowered:
        message = f"the GitOps repository {url} does not exist ({what})"
        hint = "run `invoke lab.up`, which creates and seeds it"
    else:
        message = f"{what} failed against {url} (exit {result.returncode})"
        hint = "see the output below; `-vv` shows every git command"
    return LabError(message, hint=hint, command=shlex.join(result.argv), output_tail=_tail(output))


_AUTH_MARKERS = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "the requested url returned error: 401",
    "the requested url returned error: 403",
)
_UNREACHABLE_MARKERS = (
    "failed to connect",
    "could not resolve host",
    "couldn't connect",
    "connection refused",
    "connection timed out",
    "empty reply from server",
    "connection reset",
)


def _subcommand(argv: Sequence[str]) -> str:
    """The git subcommand in `argv` (after the `-c key=value` options)."""
    index = 1
    while index < len(argv) and argv[index] == "-c":
        index += 2
    return argv[index] if index < len(argv) else ""


def _tail(text: str, lines: int = 12) -> str:
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])
