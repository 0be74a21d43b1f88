"""Times `lab.up` cold and warm (on an up lab) side by side, and the lab's memory once up.

Targets (DESIGN.md): cold ≤ 4 min on a 4-core/16 GB laptop with images cached; warm ≤ 15 s;
memory ≤ 6 GiB. Needs Docker, kind and the internet; the e2e workflow runs it.

    .venv/bin/python benchmarks/lab_up.py [--keep]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab import engine, proc  # noqa: E402

INVOKE = str(Path(sys.executable).parent / "invoke")


def timed(*args: str) -> float:
    started = time.monotonic()
    proc.run([INVOKE, "--search-root", str(ROOT), *args], timeout=3600)
    return time.monotonic() - started


def lab_memory_bytes(cluster_name: str) -> int:
    """Memory in use by the kind node containers and the registry, from Docker's stats."""
    client = engine.client()
    total = 0
    for label in (f"io.x-k8s.kind.cluster={cluster_name}", f"{engine.LAB_LABEL}={cluster_name}"):
        for container in client.containers.list(filters={"label": label}):
            stats = container.stats(stream=False)
            total += int(stats.get("memory_stats", {}).get("usage", 0))
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    args = parser.parse_args()
    timed("lab.down")
    cold = timed("lab.up")
    warm = timed("lab.up")
    memory = lab_memory_bytes("lab") / 1024**3
    print(f"lab.up cold: {cold:7.1f}s   (target ≤ 240s on 4 cores with images cached)")
    print(f"lab.up warm: {warm:7.1f}s   (target ≤ 15s)   warm/cold = {warm / cold:.3f}")
    print(f"lab memory:  {memory:7.2f} GiB (target ≤ 6 GiB)")
    if not args.keep:
        timed("lab.down")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
