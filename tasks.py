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
        "only": "fetch only these tools (kind, istioctl, kubectl; repeat or comma-separate)",
        "force": "download again even when the pinned version is installed",
        "mirror": "base URL of a mirror holding <tool>/<upstream path> (or LAB_TOOLS_MIRROR)",
    },
)
def tools(c, only=None, force=False, mirror=None, verbose=0, debug=False):
    """Download the pinned kind, istioctl and kubectl into .lab/bin/, checksums verified."""
    cli.run_task(
        "lab.tools",
        functools.partial(lab_tools.install_tools, only=only or (), force=force, mirror=mirror),
        overrides=_lab_settings(c),
        verbose=verbose,
        debug=debug,
    )


lab = Collection("lab", doctor, config, up, down, status, creds, tools)
namespace = Collection(lab)
