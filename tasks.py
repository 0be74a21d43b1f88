"""Invoke entry point: parse flags, call lab, render errors. Nothing else lives here.

Run `invoke --list` for every task.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from invoke import Collection, task

from lab import cli, operations
from lab import tools as lab_tools

cli.check_project_config(Path(__file__).resolve().parent)

VERBOSE = {"verbose": "-v shows commands, -vv also their output", "debug": "show tracebacks"}


def _lab_settings(c: Any) -> dict[str, Any]:
    settings = c.config.get("lab", {}) or {}
    return dict(settings)


def _run(c: Any, name: str, body: Any, verbose: int, debug: bool, **options: Any) -> None:
    """Run one operation under lab's error handling, with invoke.yaml's `lab:` settings."""
    operation = functools.partial(body, **options) if options else body
    cli.run_task(name, operation, overrides=_lab_settings(c), verbose=verbose, debug=debug)


@task(incrementable=["verbose"], help=VERBOSE)
def doctor(c, verbose=0, debug=False):
    """Check this machine can run the lab: Docker, tools, ports, limits."""
    _run(c, "lab.doctor", operations.doctor, verbose, debug)


@task(incrementable=["verbose"], help=VERBOSE)
def config(c, verbose=0, debug=False):
    """Print every setting (pinned versions, ports, timeouts) and its value."""
    _run(c, "lab.config", operations.show_config, verbose, debug)


@task(
    incrementable=["verbose"],
    help={
        **VERBOSE,
        "context": "install into this existing kube context instead of a kind cluster",
        "registry": "HOST:PORT of the registry your cluster pulls from (with --context)",
        "recreate": "delete and recreate a cluster made with different pinned settings",
        "dry_run": "print the ordered plan and change nothing",
    },
)
def up(c, context=None, registry=None, recreate=False, dry_run=False, verbose=0, debug=False):
    """Bring the lab up: registry, kind, Istio, Argo CD, Gitea, the apps. Re-run to resume."""
    _run(
        c,
        "lab.up",
        operations.up,
        verbose,
        debug,
        context=context,
        registry=registry,
        recreate=recreate,
        dry_run=dry_run,
    )


@task(
    incrementable=["verbose"],
    help={
        **VERBOSE,
        "keep_registry": "keep the registry container and its image cache",
        "dry_run": "print what would be removed and change nothing",
    },
)
def down(c, keep_registry=False, dry_run=False, verbose=0, debug=False):
    """Remove the lab and verify nothing of it remains."""
    _run(
        c, "lab.down", operations.down, verbose, debug, keep_registry=keep_registry, dry_run=dry_run
    )


@task(incrementable=["verbose"], help=VERBOSE)
def status(c, verbose=0, debug=False):
    """Show each component of the lab: registry, cluster, Istio, apps, Gitea, URLs."""
    _run(c, "lab.status", operations.status, verbose, debug)


@task(incrementable=["verbose"], help=VERBOSE)
def creds(c, verbose=0, debug=False):
    """Print the Gitea, Argo CD and app admin credentials of this lab."""
    _run(c, "lab.creds", operations.creds, verbose, debug)


@task(
    incrementable=["verbose"],
    iterable=["only"],
    help={
        **VERBOSE,
        "only": "fetch only these (kind, istioctl, kubectl, kustomize; repeat or comma-separate)",
        "force": "download again even when the pinned version is installed",
        "mirror": "base URL of a mirror holding <tool>/<upstream path> (or LAB_TOOLS_MIRROR)",
    },
)
def tools(c, only=None, force=False, mirror=None, verbose=0, debug=False):
    """Download the pinned kind, istioctl, kubectl and kustomize into .lab/bin/, verified."""
    _run(c, "lab.tools", lab_tools.install_tools, verbose, debug, only=only or (), force=force,
         mirror=mirror)  # fmt: skip


lab = Collection("lab", doctor, config, up, down, status, creds, tools)

PIPELINE_HELP = {
    **VERBOSE,
    "sha": "the commit to build and deploy (default: HEAD)",
    "runner": "quality checks in toolchain containers (docker, the default) or on this host",
    "strict": "fail on UNVERIFIED audits and scans (the default when CI=true)",
    "lenient": "do not fail on UNVERIFIED (shown all the same)",
    "offline": "scan with Trivy's cached vulnerability database",
    "allow_dirty": "build a tree with uncommitted changes (images marked -dirty)",
}


@task(
    name="run",
    incrementable=["verbose"],
    help={
        **PIPELINE_HELP,
        "from_": "resume from this stage (quality, build, scan, deploy-dev, smoke, promote)",
    },
)
def run_(c, sha=None, from_=None, runner="docker", strict=False, lenient=False,
         offline=False, allow_dirty=False, verbose=0, debug=False):  # fmt: skip
    """Run the whole flow: quality, build, scan, deploy dev, smoke, promote (a pull request)."""
    _run(c, "pipeline.run", operations.pipeline, verbose, debug, start=from_, stop=None,
         sha=sha, runner=runner, strict=strict, lenient=lenient, offline=offline,
         allow_dirty=allow_dirty)  # fmt: skip


def _stage_task(stage, doc):
    """`pipeline.<stage>`: the pipeline from `stage` up to and including `stage`."""

    def body(c, sha=None, runner="docker", strict=False, lenient=False, offline=False,
             allow_dirty=False, verbose=0, debug=False):  # fmt: skip
        _run(c, f"pipeline.{stage}", operations.pipeline, verbose, debug, start=stage,
             stop=stage, sha=sha, runner=runner, strict=strict, lenient=lenient,
             offline=offline, allow_dirty=allow_dirty)  # fmt: skip

    body.__doc__ = doc
    return task(body, name=stage, incrementable=["verbose"], help=PIPELINE_HELP)


@task(incrementable=["verbose"], help={**VERBOSE, "sha": "the promoted commit (default: HEAD)"})
def approve(c, sha=None, verbose=0, debug=False):
    """Merge the promotion pull request, wait for prod to sync, smoke-test prod."""
    _run(c, "pipeline.approve", operations.approve, verbose, debug, sha=sha)


pipeline = Collection(
    "pipeline",
    run_,
    _stage_task("quality", "Run only the quality stage: vet, tests, linters, audits."),
    _stage_task("build", "Run only the build stage: build and push every image for --sha."),
    _stage_task("scan", "Run only the scan stage: Trivy on every image of --sha."),
    _stage_task("deploy-dev", "Run only the deploy-dev stage: A/B tag bump, wait for Argo CD."),
    _stage_task("smoke", "Run only the smoke stage: wait for the smoke Job's verdict in demo-dev."),
    _stage_task("promote", "Run only the promote stage: branch promote-<sha> and a pull request."),
    approve,
)
namespace = Collection(lab, pipeline)
