"""Benchmark: the quality stage's checks one service after another, then in parallel.

Both are measured in one run, with lab.quality's host runner (the pipeline's code) and
every check of every service (npm ci, venv and pip install included):

1. serial    one worker: backend, then monitor, then frontend;
2. parallel  one worker per service, as the pipeline runs them.

Each run works on its own fresh copy of apps/ (sources only; the checkout is never
touched), so both start from the same state: no venv, no node_modules. Download caches
(Go's, pip's, npm's) are the machine's own and are warm for both runs after any earlier
run. Prints the per-service times, both wall times and their ratio (the design's target:
parallel <= 0.6 x serial on 2 cores); exits 1 when the target is missed or the two runs
disagree on a check's status.

    .venv/bin/python benchmarks/quality_parallel.py [--services backend,monitor,frontend]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from lab import checks, quality, toolchains
from lab.config import Config
from lab.errors import LabError
from lab.report import StageResult
from lab.ui import UI

TARGET = 0.6
SKIP = shutil.ignore_patterns(*toolchains.SKIP_ANYWHERE, *toolchains.SKIP_TOP_LEVEL)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--services", default=",".join(checks.SERVICES))
    parser.add_argument("-v", "--verbose", action="store_true", help="show each check")
    args = parser.parse_args()
    services = tuple(args.services.split(","))
    print(f"{os.cpu_count()} CPUs; services: {', '.join(services)}; host runner")
    try:
        with tempfile.TemporaryDirectory(prefix="lab-bench-quality-") as scratch:
            serial = _run(Path(scratch) / "serial", services, workers=1, verbose=args.verbose)
            parallel = _run(
                Path(scratch) / "parallel", services, workers=len(services), verbose=args.verbose
            )
    except LabError as error:
        print(error.render(), file=sys.stderr)
        return 1

    ratio = parallel.duration / serial.duration
    print()
    print(f"{'service':<10} {'serial':>9} {'parallel':>9}")
    for service in services:
        print(
            f"{service:<10} {_service_time(serial, service):>8.1f}s "
            f"{_service_time(parallel, service):>8.1f}s"
        )
    print(f"{'wall':<10} {serial.duration:>8.1f}s {parallel.duration:>8.1f}s")
    print(f"serial:   {serial.status.value:<10} {serial.summary}")
    print(f"parallel: {parallel.status.value:<10} {parallel.summary}")
    print(f"ratio parallel/serial: {ratio:.2f} (target ≤ {TARGET})")

    disagree = [
        (a.name, a.status.value, b.status.value)
        for a, b in zip(serial.checks, parallel.checks, strict=True)
        if a.status is not b.status
    ]
    for name, first, second in disagree:
        print(f"  differs: {name}: serial {first}, parallel {second}")
    if ratio > TARGET:
        print("target missed")
    return 1 if ratio > TARGET or disagree else 0


def _run(apps: Path, services: tuple[str, ...], *, workers: int, verbose: bool) -> StageResult:
    for service in services:
        shutil.copytree(quality.APPS_DIR / service, apps / service, ignore=SKIP, symlinks=True)
    if "monitor" in services and "backend" not in services:  # its tests build the backend
        shutil.copytree(quality.APPS_DIR / "backend", apps / "backend", ignore=SKIP)
    label = "serial" if workers == 1 else "parallel"
    print(f"{label}: {workers} worker(s) …", flush=True)
    stream = sys.stderr if verbose else io.StringIO()
    started = time.monotonic()
    stage = quality.run_quality(
        UI(stream=stream),
        Config(),
        services=services,
        runner="host",
        strict=False,
        apps_dir=apps,
        workers=workers,
    )
    print(f"{label}: {time.monotonic() - started:.1f}s, {stage.summary}", flush=True)
    return stage


def _service_time(stage: StageResult, service: str) -> float:
    return sum(c.duration for c in stage.checks if c.name.startswith(f"{service}: "))


if __name__ == "__main__":
    sys.exit(main())
