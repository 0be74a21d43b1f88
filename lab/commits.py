"""Which commit a build is of: the app repository's HEAD (or `--sha`), its branch, and
whether the working tree differs (a dirty build's tag names the tree it built)."""

from __future__ import annotations

import tempfile
from datetime import datetime
from functools import partial
from pathlib import Path

from lab import proc
from lab.context import Commit, PipelineOptions
from lab.errors import LabError

REPO_ROOT = Path(__file__).resolve().parent.parent


def resolve_commit(options: PipelineOptions, repo: Path = REPO_ROOT) -> Commit:
    git = partial(proc.run, timeout=30, cwd=repo)
    head = git(("git", "rev-parse", "HEAD")).stdout.strip()
    sha = options.sha or head
    if options.sha:
        sha = git(
            ("git", "rev-parse", "--verify", f"{options.sha}^{{commit}}"),
            hint="pass a commit of this repository",
        ).stdout.strip()
    branch = git(("git", "rev-parse", "--abbrev-ref", "HEAD")).stdout.strip()
    dirty = (
        bool(git(("git", "status", "--porcelain", "--untracked-files=no")).stdout.strip())
        and sha == head
    )
    if dirty and not options.allow_dirty:
        raise LabError(
            "the working tree has uncommitted changes, so the images would not match any commit",
            hint="commit or stash them, or pass --allow-dirty (the images are then marked -dirty)",
        )
    stamp = git(("git", "show", "-s", "--format=%cI", sha)).stdout.strip()
    return Commit(
        sha,
        "detached" if branch == "HEAD" else branch,
        dirty,
        datetime.fromisoformat(stamp),
        tree=working_tree(repo) if dirty else "",
    )


def working_tree(repo: Path = REPO_ROOT) -> str:
    """The git tree of the working tree's files, as `git add -A` would stage them.

    Through a throw-away index, so the user's own index is untouched; files that
    .gitignore leaves out are left out here too, as the build contexts leave them.
    """
    with tempfile.TemporaryDirectory(prefix="lab-index-") as scratch:
        index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        proc.run(("git", "add", "-A"), timeout=120, cwd=repo, env=index)
        return proc.run(("git", "write-tree"), timeout=30, cwd=repo, env=index).stdout.strip()
