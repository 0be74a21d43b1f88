"""Invoke entry point: parse flags, call lab, render errors. Nothing else lives here.

Run `invoke --list` for every task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from invoke import Collection, task

from lab import cli, operations

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


lab = Collection("lab", doctor, config)
namespace = Collection(lab)
