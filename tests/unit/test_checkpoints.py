"""lab.checkpoints, the pure part: how a checkpoint's images are listed."""

from __future__ import annotations

from lab.checkpoints import Checkpoint

A = "a" * 40
DIGEST = "sha256:" + "1" * 64


def test_a_listing_shows_each_commit_short_without_its_digest() -> None:
    point = Checkpoint(
        "step-1",
        "r" * 40,
        "2026-12-02T00:00:00Z",
        {"dev": {"backend-v1": "main", "backend-v2": f"{A}@{DIGEST}", "smoke": A}},
    )
    assert point.describe("dev") == "aaaaaaa, main"  # a pinned commit is not "dirty"


def test_a_dirty_build_is_listed_as_such() -> None:
    dirty = f"{A}-dirty-{'b' * 12}"
    point = Checkpoint("x", "r" * 40, "", {"dev": {"backend-v2": f"{dirty}@{DIGEST}"}})
    assert point.describe("dev") == "aaaaaaa-dirty"
    assert point.describe("prod") == "?"
