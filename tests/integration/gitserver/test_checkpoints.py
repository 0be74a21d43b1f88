"""Checkpoints on a real Gitea: save, list, restore as a new commit, bad names (#18)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import checkpoints, gitops
from lab.checkout import open_checkout
from lab.errors import LabError
from tests.integration.gitserver.support import PLACEHOLDERS, Repo, commit_messages

pytestmark = pytest.mark.integration

A = "1111111111111111111111111111111111111111"
B = "2222222222222222222222222222222222222222"


def test_restore_brings_back_what_each_environment_ran_as_a_new_commit(
    repo: Repo, fixture_tree: Path
) -> None:
    gitops.seed(repo.remote, fixture_tree)
    seed, existed = checkpoints.save(repo.remote, "seed", replace=False)
    assert not existed and seed.tags["dev"] == dict.fromkeys(PLACEHOLDERS, "main")
    gitops.deploy(repo.remote, "dev", A)
    step, _ = checkpoints.save(repo.remote, "step-1")
    dev_at_step = gitops.deployed_tags(repo.remote, "dev")
    gitops.deploy(repo.remote, "dev", B)
    before = repo.main()

    restored = checkpoints.restore(repo.remote, "step-1")

    assert restored.changed and restored.checkpoint == step
    assert gitops.deployed_tags(repo.remote, "dev") == dev_at_step == step.tags["dev"]
    assert repo.main() == restored.revision != step.revision  # a new commit on top...
    messages = commit_messages(repo)
    assert messages[0] == f"restore checkpoint step-1 ({step.revision[:12]})"
    assert f"dev: deploy {B}" in messages  # ...and the history is kept: nothing was forced
    assert before is not None and before != restored.revision
    again = checkpoints.restore(repo.remote, "step-1")
    assert not again.changed and again.revision == restored.revision

    assert [p.name for p in checkpoints.list_checkpoints(repo.remote)] == ["seed", "step-1"]
    back = checkpoints.restore(repo.remote, "seed")
    assert gitops.deployed_tags(repo.remote, "dev") == dict.fromkeys(PLACEHOLDERS, "main")
    assert back.checkpoint.describe("dev") == "main"


def test_saving_a_name_again_replaces_it_unless_asked_to_keep_it(
    repo: Repo, fixture_tree: Path
) -> None:
    gitops.seed(repo.remote, fixture_tree)
    first, _ = checkpoints.save(repo.remote, "seed", replace=False)
    gitops.deploy(repo.remote, "dev", A)

    kept, existed = checkpoints.save(repo.remote, "seed", replace=False)  # lab.up again
    assert existed and kept.revision == first.revision
    replaced, existed = checkpoints.save(repo.remote, "seed")
    assert existed and replaced.revision == repo.main() != first.revision
    [listed] = checkpoints.list_checkpoints(repo.remote)
    assert listed.revision == replaced.revision
    assert listed.describe("dev") == A[:7]  # the first deploy sets both variants


@pytest.mark.parametrize("name", ["", "Step 3", "../main", "-x", "a" * 64, "ünï"])
def test_a_bad_name_is_refused_before_anything_is_touched(repo: Repo, name: str) -> None:
    with pytest.raises(LabError, match="is not a checkpoint name") as caught:
        checkpoints.save(repo.remote, name)
    assert caught.value.hint
    assert repo.main() is None  # not even seeded: nothing was asked of the server


def test_restoring_an_unknown_checkpoint_names_those_saved(repo: Repo, fixture_tree: Path) -> None:
    gitops.seed(repo.remote, fixture_tree)
    checkpoints.save(repo.remote, "step-1")
    before = repo.main()

    with pytest.raises(LabError, match="no checkpoint 'step-9'") as caught:
        checkpoints.restore(repo.remote, "step-9")

    assert "saved: step-1" in (caught.value.hint or "")
    assert repo.main() == before


def test_a_tag_made_by_hand_under_checkpoint_is_listed_without_details(
    repo: Repo, fixture_tree: Path, tmp_path: Path
) -> None:
    gitops.seed(repo.remote, fixture_tree)
    checkpoints.save(repo.remote, "step-1")
    with open_checkout(repo.remote) as checkout:  # a lightweight tag, by hand
        main = gitops.fetch_main(checkout)
        checkout.git("tag", "checkpoint/by-hand", main)
        checkout.git("push", "origin", "refs/tags/checkpoint/by-hand")

    listed = {p.name: p for p in checkpoints.list_checkpoints(repo.remote)}

    assert sorted(listed) == ["by-hand", "step-1"]
    assert listed["by-hand"].revision == main and listed["by-hand"].tags == {}
    assert listed["step-1"].tags["dev"]
