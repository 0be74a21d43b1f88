"""Invoke entry point: parse flags, call lab, render errors. Nothing else lives here.

Run `invoke --list` for every task.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Any

from invoke import Collection, task

from lab import cli, operations, workshop
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
        "offline": "use only what a loaded bundle holds (lab.bundle.load); download nothing",
    },
)
def up(
    c,
    context=None,
    registry=None,
    recreate=False,
    dry_run=False,
    offline=False,
    verbose=0,
    debug=False,
):
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
        offline=offline,
    )


@task(
    incrementable=["verbose"],
    help={
        **VERBOSE,
        "keep_registry": "keep the registry container and its image cache",
        "keep_images": "keep the images lab built, Trivy's database and .lab/cache",
        "dry_run": "print what would be removed and change nothing",
    },
)
def down(c, keep_registry=False, keep_images=False, dry_run=False, verbose=0, debug=False):
    """Remove the lab and verify nothing of it remains."""
    _run(
        c,
        "lab.down",
        operations.down,
        verbose,
        debug,
        keep_registry=keep_registry,
        keep_images=keep_images,
        dry_run=dry_run,
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
        "dry_run": "list the downloads and fetch nothing",
    },
)
def tools(c, only=None, force=False, mirror=None, dry_run=False, verbose=0, debug=False):
    """Download the pinned kind, istioctl, kubectl and kustomize into .lab/bin/, verified."""
    _run(c, "lab.tools", lab_tools.install_tools, verbose, debug, only=only or (), force=force,
         mirror=mirror, dry_run=dry_run)  # fmt: skip


@task(incrementable=["verbose"], help={**VERBOSE, "name": "e.g. step-3 (letters, digits, . _ -)"})
def checkpoint_save(c, name, verbose=0, debug=False):
    """Save the GitOps repository's state as checkpoint NAME (a tag in Gitea)."""
    _run(c, "lab.checkpoint.save", functools.partial(workshop.save, name=name), verbose, debug)


@task(incrementable=["verbose"], help={**VERBOSE, "name": "a saved checkpoint (see list)"})
def checkpoint_restore(c, name, verbose=0, debug=False):
    """Move main back to checkpoint NAME and wait until dev and prod are healthy there."""
    _run(
        c, "lab.checkpoint.restore", functools.partial(workshop.restore, name=name), verbose, debug
    )


@task(incrementable=["verbose"], help=VERBOSE)
def checkpoint_list(c, verbose=0, debug=False):
    """List the saved checkpoints and what each environment ran at each."""
    _run(c, "lab.checkpoint.list", workshop.list_all, verbose, debug)


@task(
    incrementable=["verbose"],
    help={
        **VERBOSE,
        "output": "the bundle file to write (default lab-bundle-<version>.tar here)",
        "from_docker": "take every image from the local Docker engine; pull nothing",
    },
)
def bundle_create(c, output=None, from_docker=False, verbose=0, debug=False):
    """Write one file with every image, tool and database the lab needs (workshops)."""
    _run(c, "lab.bundle.create", workshop.bundle_create, verbose, debug,
         output=output, from_docker=from_docker)  # fmt: skip


@task(incrementable=["verbose"], help={**VERBOSE, "path": "the bundle file"})
def bundle_load(c, path, verbose=0, debug=False):
    """Verify a bundle and load it: images into Docker and the registry, tools, Trivy DB."""
    _run(c, "lab.bundle.load", functools.partial(workshop.bundle_load, path=path), verbose, debug)


bundle = Collection("bundle")
bundle.add_task(bundle_create, "create")
bundle.add_task(bundle_load, "load")
checkpoint = Collection("checkpoint")
checkpoint.add_task(checkpoint_save, "save")
checkpoint.add_task(checkpoint_restore, "restore")
checkpoint.add_task(checkpoint_list, "list")
lab = Collection("lab", doctor, config, up, down, status, creds, tools, bundle, checkpoint)

# The pipeline's flags, each declared once (name → default, help) for pipeline.run and
# every pipeline.<stage>; lab.context.PipelineOptions.from_flags reads and checks them.
PIPELINE_FLAGS: dict[str, tuple[Any, str]] = {
    "sha": (None, "the commit to build and deploy (default: HEAD)"),
    "runner": ("docker", "quality checks in toolchain containers (docker) or on this host"),
    "strict": (False, "fail on UNVERIFIED audits and scans (the default when CI=true)"),
    "lenient": (False, "do not fail on UNVERIFIED (shown all the same)"),
    "offline": (False, "download nothing: local caches, Trivy's cached database, no build network"),
    "allow_dirty": (False, "build a tree with uncommitted changes (images marked -dirty)"),
}
STAGES = ("quality", "build", "scan", "deploy-dev", "smoke", "promote")


def _pipeline_task(name: str, doc: str, *, stage: str | None = None) -> Any:
    """`pipeline.run` (stage None: every stage, `--from` resumes) or `pipeline.<stage>`."""
    flags = dict(PIPELINE_FLAGS)
    if stage is None:
        flags["from_"] = (None, f"resume from this stage ({', '.join(STAGES)})")
    flags |= {"verbose": (0, VERBOSE["verbose"]), "debug": (False, VERBOSE["debug"])}

    def body(c: Any, **given: Any) -> None:
        verbose, debug = given.pop("verbose"), given.pop("debug")
        start = given.pop("from_") if stage is None else stage
        _run(c, f"pipeline.{name}", operations.pipeline, verbose, debug, start=start,
             stop=stage, **given)  # fmt: skip

    parameters = [inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + [
        inspect.Parameter(flag, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default)
        for flag, (default, _) in flags.items()
    ]
    body.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    body.__doc__ = doc
    return task(
        body,
        name=name,
        incrementable=["verbose"],
        help={flag: text for flag, (_, text) in flags.items()},
    )


@task(incrementable=["verbose"], help={**VERBOSE, "sha": "the promoted commit (default: HEAD)"})
def approve(c, sha=None, verbose=0, debug=False):
    """Merge the promotion pull request, wait for prod to sync, smoke-test prod."""
    _run(c, "pipeline.approve", operations.approve, verbose, debug, sha=sha)


STAGE_DOCS = {
    "quality": "Run only the quality stage: vet, tests, linters, audits.",
    "build": "Run only the build stage: build and push every image for --sha.",
    "scan": "Run only the scan stage: Trivy on every image of --sha.",
    "deploy-dev": "Run only the deploy-dev stage: A/B tag bump, wait for Argo CD.",
    "smoke": "Run only the smoke stage: wait for the smoke Job's verdict in demo-dev.",
    "promote": "Run only the promote stage: branch promote-<sha> and a pull request.",
}
pipeline = Collection(
    "pipeline",
    _pipeline_task(
        "run",
        "Run the whole flow: quality, build, scan, deploy dev, smoke, promote (a pull request).",
    ),
    *(_pipeline_task(stage, STAGE_DOCS[stage], stage=stage) for stage in STAGES),
    approve,
)
namespace = Collection(lab, pipeline)
