"""Benchmark: cold build of every service image versus a rebuild with one service changed.

Both are measured side by side in one run, on this machine's Docker Engine, with
lab.images (the pipeline's build code):

1. cold    every image built with no layer cache (`nocache`), base images present;
2. again   every image built again from the unchanged tree: all from the layer cache
           (the pipeline's build stage on an unchanged tree; target ≤ 10 % of cold);
3. rebuild every image built again, the chosen service's source changed by one line
           (in a temporary copy; the checkout is never touched). Only that image may
           rebuild; the others must come wholly from the layer cache.

Prints both wall times, the ratio, and per image whether it was rebuilt. Exits 1 when
an unchanged image was rebuilt or the changed one was not.

    .venv/bin/python benchmarks/build_images.py [--service monitor] [--workers 2]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import docker.errors

from lab import engine, images
from lab.config import Config
from lab.errors import LabError

# What to change, per service: a source file inside its build context (a comment line).
CHANGE = {
    "backend": ("main.go", "\n// benchmark: one-line change\n"),
    "frontend": ("src/main.jsx", "\n// benchmark: one-line change\n"),
    "monitor": ("monitor/__init__.py", "\n# benchmark: one-line change\n"),
    "smoke": ("main.go", "\n// benchmark: one-line change\n"),
}
# Not part of any image (see each app's .dockerignore); never worth copying.
SKIP = shutil.ignore_patterns("node_modules", ".venv", "dist", "coverage", "test-results", "bin")
SHA = hashlib.sha1(b"lab build benchmark").hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", choices=sorted(CHANGE), default="monitor")
    parser.add_argument("--workers", type=int, default=images.DEFAULT_WORKERS)
    args = parser.parse_args()
    plans = images.plan_builds(
        registry=Config().registry_host,
        sha=SHA,
        branch="benchmark",
        version="bench",
        created=datetime.now(UTC),
    )
    try:
        client = engine.client()
        print(f"cold build of {len(plans)} images (no layer cache, {args.workers} workers) …")
        started = time.monotonic()
        cold = images.build_images(client, plans, workers=args.workers, nocache=True)
        cold_seconds = time.monotonic() - started

        print("build stage again on the unchanged tree …")
        started = time.monotonic()
        unchanged = images.build_images(client, plans, workers=args.workers)
        unchanged_seconds = time.monotonic() - started

        with tempfile.TemporaryDirectory(prefix="lab-bench-") as scratch:
            changed = _changed_copy(Path(scratch), args.service)
            replanned = tuple(
                dataclasses.replace(plan, context=changed) if plan.service == args.service else plan
                for plan in plans
            )
            print(f"rebuild with {args.service} changed …")
            started = time.monotonic()
            warm = images.build_images(client, replanned, workers=args.workers)
            warm_seconds = time.monotonic() - started
    except LabError as error:
        print(error.render(), file=sys.stderr)
        return 1
    finally:
        _remove_tags(plans)

    print()
    print(f"{'image':<10} {'cold':>8} {'rebuild':>8}  rebuilt?")
    ok = True
    for first, second in zip(cold, warm, strict=True):
        rebuilt = not second.fully_cached
        expected = second.service == args.service
        ok &= rebuilt == expected
        mark = "" if rebuilt == expected else "  <-- unexpected"
        print(
            f"{first.service:<10} {first.seconds:>7.1f}s {second.seconds:>7.1f}s  "
            f"{'yes' if rebuilt else 'no (cache)'}{mark}"
        )
        if rebuilt and not expected:
            for step in second.rebuilt:
                print(f"{'':<30}re-ran: {step[:90]}")
    print()
    ok &= all(image.fully_cached for image in unchanged)
    print(f"cold build, all images:        {cold_seconds:7.1f}s")
    print(
        f"unchanged tree:                {unchanged_seconds:7.1f}s   "
        f"({unchanged_seconds / cold_seconds:.1%} of cold; target ≤ 10 %)"
    )
    print(f"rebuild, {args.service} changed:{'':<{13 - len(args.service)}}{warm_seconds:7.1f}s")
    print(f"ratio rebuild / cold:          {warm_seconds / cold_seconds:7.1%}")
    return 0 if ok else 1


def _changed_copy(scratch: Path, service: str) -> Path:
    """A copy of apps/<service> with one line appended to one source file."""
    target = scratch / service
    shutil.copytree(images.APPS_DIR / service, target, ignore=SKIP, symlinks=True)
    relative, line = CHANGE[service]
    with (target / relative).open("a", encoding="utf-8") as source:
        source.write(line)
    return target


def _remove_tags(plans: tuple[images.BuildPlan, ...]) -> None:
    """Untag what the benchmark built: its cache-less layers are of no use afterwards."""
    try:
        client = engine.client()
    except LabError:
        return
    for plan in plans:
        for reference in plan.tags:
            with contextlib.suppress(docker.errors.DockerException):
                client.images.remove(reference)


if __name__ == "__main__":
    sys.exit(main())
