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


@task(incrementable=["verbose"], help=VERBOSE)
def doctor(c, verbose=0, debug=False):
    """Check this machine can run the lab: Docker, tools, ports, limits."""
    cli.run_task(
        "lab.doctor", operations.doctor, overrides=_lab_settings(c), verbose=verbose, debug=debug
    )


@task(incrementable=["verbose"], help=VERBOSE)
def config(c, verbose=0, debug=False):
    """Print every setting (pinned versions, ports, timeouts) and its value."""
    cli.run_task(
        "lab.config",
        operations.show_config,
        overrides=_lab_settings(c),
        verbose=verbose,
        debug=debug,
    )


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
    cli.run_task(
        "lab.up",
        functools.partial(
            operations.up, context=context, registry=registry, recreate=recreate, dry_run=dry_run
        ),
        overrides=_lab_settings(c),
        verbose=verbose,
        debug=debug,
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
    cli.run_task(
        "lab.down",
        functools.partial(operations.down, keep_registry=keep_registry, dry_run=dry_run),
        overrides=_lab_settings(c),
        verbose=verbose,
        debug=debug,
    )


@task(incrementable=["verbose"], help=VERBOSE)
def status(c, verbose=0, debug=False):
    """Show each component of the lab: registry, cluster, Istio, apps, Gitea, URLs."""
    cli.run_task(
        "lab.status", operations.status, overrides=_lab_settings(c), verbose=verbose, debug=debug
    )


@task(incrementable=["verbose"], help=VERBOSE)
def creds(c, verbose=0, debug=False):
    """Print the Gitea, Argo CD and app admin credentials of this lab."""
    cli.run_task(
        "lab.creds", operations.creds, overrides=_lab_settings(c), verbose=verbose, debug=debug
    )


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
    cli.run_task(
        "lab.tools",
        functools.partial(lab_tools.install_tools, only=only or (), force=force, mirror=mirror),
        overrides=_lab_settings(c),
        verbose=verbose,
        debug=debug,
    )


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


def _pipeline(
    c, name, start, stop, sha, runner, strict, lenient, offline, allow_dirty, verbose, debug
):
    options = pipeline_options(
        sha=sha,
        start=start,
        stop=stop,
        runner=runner,
        strict=strict,
        lenient=lenient,
        offline=offline,
        allow_dirty=allow_dirty,
    )
    cli.run_task(
        name,
        functools.partial(operations.pipeline, options=options),
        overrides=_lab_settings(c),
        verbose=verbose,
        debug=debug,
    )


def pipeline_options(**kwargs):
    from lab.operations import pipeline_options as build

    return build(**kwargs)


@task(
    name="run",
    incrementable=["verbose"],
    help={
        **PIPELINE_HELP,
        "from_": "resume from this stage (quality, build, scan, deploy-dev, smoke, promote)",
    },
)
def run_(
    c,
    sha=None,
    from_=None,
    runner="docker",
    strict=False,
    lenient=False,
    offline=False,
    allow_dirty=False,
    verbose=0,
    debug=False,
):
    """Run the whole flow: quality, build, scan, deploy dev, smoke, promote (a pull request)."""
    _pipeline(
        c,
        "pipeline.run",
        from_,
        None,
        sha,
        runner,
        strict,
        lenient,
        offline,
        allow_dirty,
        verbose,
        debug,
    )


def _stage_task(stage, doc):
    def body(
        c,
        sha=None,
        runner="docker",
        strict=False,
        lenient=False,
        offline=False,
        allow_dirty=False,
        verbose=0,
        debug=False,
    ):
        _pipeline(
            c,
            f"pipeline.{stage}",
            stage,
            stage,
            sha,
            runner,
            strict,
            lenient,
            offline,
            allow_dirty,
            verbose,
            debug,
        )

    body.__doc__ = doc
    return task(body, name=stage, incrementable=["verbose"], help=PIPELINE_HELP)


@task(incrementable=["verbose"], help={**VERBOSE, "sha": "the promoted commit (default: HEAD)"})
def approve(c, sha=None, verbose=0, debug=False):
    """Merge the promotion pull request, wait for prod to sync, smoke-test prod."""
    cli.run_task(
        "pipeline.approve",
        functools.partial(operations.approve, sha=sha),
        overrides=_lab_settings(c),
        verbose=verbose,
        debug=debug,
    )


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
