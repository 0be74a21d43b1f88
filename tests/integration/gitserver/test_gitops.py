"""lab.gitops against a real Gitea: seed, A/B deploys, races, promotion, bad input."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from lab import gitops, gitserver, tags
from lab.errors import LabError
from lab.gitops import PromotionSummary
from lab.images import SERVICES
from tests.integration.gitserver.support import (
    ORG,
    PLACEHOLDERS,
    REAL_TREE,
    Repo,
    clone,
    commit_messages,
    read_file,
    render,
    render_images,
    write_file,
)

pytestmark = pytest.mark.integration

A = "1111111111111111111111111111111111111111"
B = "2222222222222222222222222222222222222222"
C = "3333333333333333333333333333333333333333"
D = "4444444444444444444444444444444444444444"
DEV = "environments/dev/kustomization.yaml"


def test_seeding_twice_changes_nothing_the_second_time(repo: Repo, fixture_tree: Path) -> None:
    first = gitops.seed(repo.remote, fixture_tree)
    assert first.pushed
    assert repo.main() == first.revision
    assert read_file(repo, DEV) == (fixture_tree / DEV).read_text()

    second = gitops.seed(repo.remote, fixture_tree)

    assert not second.pushed
    assert second.revision == first.revision == repo.main()
    assert commit_messages(repo) == ["seed: GitOps repository content from gitops/"]


def test_seeding_again_brings_tree_changes_but_keeps_deployed_tags(
    repo: Repo, fixture_tree: Path
) -> None:
    gitops.seed(repo.remote, fixture_tree)
    gitops.deploy(repo.remote, "dev", A)
    (fixture_tree / "README.md").write_text("changed\n")
    (fixture_tree / "base" / "extra.yaml").write_text("# new file\n")

    result = gitops.seed(repo.remote, fixture_tree)

    assert result.pushed
    assert read_file(repo, "README.md") == "changed\n"
    assert read_file(repo, "base/extra.yaml") == "# new file\n"
    assert gitops.deployed_tags(repo.remote, "dev") == dict.fromkeys(PLACEHOLDERS, A)
    assert gitops.deployed_tags(repo.remote, "prod") == dict.fromkeys(PLACEHOLDERS, "main")
    assert not gitops.seed(repo.remote, fixture_tree).pushed


def test_dev_bump_renders_the_new_images(repo: Repo, fixture_tree: Path, tmp_path: Path) -> None:
    gitops.seed(repo.remote, fixture_tree)

    first = gitops.deploy(repo.remote, "dev", A)
    second = gitops.deploy(repo.remote, "dev", B)

    assert first.pushed and second.pushed
    assert second.revision == repo.main()
    assert commit_messages(repo)[:2] == [f"dev: deploy {B}", f"dev: deploy {A}"]
    assert [(c.name, c.old, c.new) for c in second.changes] == [
        ("backend-v2", A, B),
        ("monitor-v2", A, B),
        ("frontend", A, B),
        ("smoke", A, B),
    ]
    checkout = clone(repo, tmp_path / "checkout")
    assert render_images(checkout / "environments" / "dev") == {
        "backend-v1": f"localhost:5001/lab/backend:{A}",
        "backend-v2": f"localhost:5001/lab/backend:{B}",
        "monitor-v1": f"localhost:5001/lab/monitor:{A}",
        "monitor-v2": f"localhost:5001/lab/monitor:{B}",
        "frontend": f"localhost:5001/lab/frontend:{B}",
        "smoke": f"localhost:5001/lab/smoke:{B}",
    }
    assert set(render_images(checkout / "environments" / "prod").values()) == {
        f"localhost:5001/lab/{service}:main"
        for service in ("backend", "monitor", "frontend", "smoke")
    }
    # the edit is structural: the comments of the seed are still there
    assert "# dev: deployed by ArgoCD into demo-dev" in read_file(repo, DEV)
    assert "- name: backend-v1  # backend" in read_file(repo, DEV)


def test_deploying_the_live_commit_again_commits_nothing(repo: Repo, fixture_tree: Path) -> None:
    gitops.seed(repo.remote, fixture_tree)
    deployed = gitops.deploy(repo.remote, "dev", A)

    again = gitops.deploy(repo.remote, "dev", A)

    assert not again.pushed
    assert again.changes == ()
    assert again.revision == deployed.revision == repo.main()


def test_concurrent_deploys_all_land(
    repo: Repo, fixture_tree: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gitops.seed(repo.remote, fixture_tree)
    commits = (A, B, C, D)
    start = threading.Barrier(len(commits))
    errors: list[BaseException] = []

    def deploy(commit: str) -> None:
        start.wait()
        try:
            gitops.deploy(repo.remote, "dev", commit)
        except BaseException as error:  # reported below, with the others
            errors.append(error)

    caplog.set_level(logging.INFO, logger="lab.gitops")
    caplog.set_level(logging.INFO, logger="lab.checkout")  # where a lost push race is logged
    threads = [threading.Thread(target=deploy, args=(commit,)) for commit in commits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert not errors, [str(error) for error in errors]
    messages = commit_messages(repo)
    landed = [message.removeprefix("dev: deploy ") for message in messages[: len(commits)]]
    assert sorted(landed) == sorted(commits), messages  # every deploy landed, once
    last, previous = landed[0], landed[1]
    tags = gitops.deployed_tags(repo.remote, "dev")
    assert tags["backend-v2"] == tags["monitor-v2"] == tags["frontend"] == last
    assert tags["backend-v1"] == tags["monitor-v1"] == previous  # nothing lost in between
    # the threads start together, so pushes do collide: the retry path ran
    assert caplog.text.count("lost a race; re-fetching") >= 1


def test_promotion_opens_one_pull_request_and_merging_it_deploys_prod(
    repo: Repo, fixture_tree: Path
) -> None:
    gitops.seed(repo.remote, fixture_tree)
    gitops.deploy(repo.remote, "dev", A)
    summary = PromotionSummary(scan="0 critical, 0 high", smoke="passed: v1 and v2 report " + A)

    promotion = gitops.promote(repo.remote, repo.gitea.client(), ORG, repo.name, A, summary=summary)

    assert promotion.created and promotion.pull_request is not None
    pull = promotion.pull_request
    assert (pull.head, pull.base, pull.state) == (f"promote-{A}", "main", "open")
    assert pull.head_sha == promotion.head
    assert gitops.deployed_tags(repo.remote, "prod") == dict.fromkeys(PLACEHOLDERS, "main")
    assert f"`localhost:5001/lab/backend:{A}`" in pull.body
    assert "**Scan:** 0 critical, 0 high" in pull.body
    assert "**Smoke test (dev):** passed" in pull.body

    again = gitops.promote(repo.remote, repo.gitea.client(), ORG, repo.name, A, summary=summary)

    assert not again.created
    assert again.pull_request is not None and again.pull_request.number == pull.number
    assert again.head == promotion.head  # nothing re-pushed
    with repo.gitea.client() as server:
        assert [p.number for p in server.list_pull_requests(ORG, repo.name)] == [pull.number]
        merged = server.merge_pull_request(ORG, repo.name, pull.number, expected_head=again.head)
        assert merged.merged
        assert server.branch_sha(ORG, repo.name, f"promote-{A}") is None  # branch deleted
        assert server.list_pull_requests(ORG, repo.name) == []
        # merging a merged pull request is a no-op
        assert server.merge_pull_request(ORG, repo.name, pull.number).merged

    assert gitops.deployed_tags(repo.remote, "prod") == dict.fromkeys(PLACEHOLDERS, A)
    done = gitops.promote(repo.remote, repo.gitea.client(), ORG, repo.name, A)
    assert done.pull_request is None and done.changes == ()


def test_a_newer_promotion_closes_the_older_ones_it_supersedes(
    repo: Repo, fixture_tree: Path
) -> None:
    gitops.seed(repo.remote, fixture_tree)
    gitops.deploy(repo.remote, "dev", A)
    older = gitops.promote(repo.remote, repo.gitea.client(), ORG, repo.name, A)
    gitops.deploy(repo.remote, "dev", B)
    newer = gitops.promote(repo.remote, repo.gitea.client(), ORG, repo.name, B)
    assert older.pull_request is not None and newer.pull_request is not None
    assert newer.superseded == (older.pull_request.number,)
    with repo.gitea.client() as server:
        assert [p.number for p in server.list_pull_requests(ORG, repo.name)] == [
            newer.pull_request.number
        ]
        closed = [p for p in server.list_pull_requests(ORG, repo.name, state="closed")]
        assert [(p.number, p.merged) for p in closed] == [(older.pull_request.number, False)]
        assert f"superseded by #{newer.pull_request.number}" in closed[0].body
    # Promoting the newest again closes nothing more.
    again = gitops.promote(repo.remote, repo.gitea.client(), ORG, repo.name, B)
    assert again.superseded == ()


def test_promotion_branch_follows_main_when_main_moved(repo: Repo, fixture_tree: Path) -> None:
    gitops.seed(repo.remote, fixture_tree)
    gitops.deploy(repo.remote, "dev", A)
    first = gitops.promote(repo.remote, repo.gitea.client(), ORG, repo.name, A)
    gitops.deploy(repo.remote, "dev", B)  # main moves under the open pull request

    second = gitops.promote(repo.remote, repo.gitea.client(), ORG, repo.name, A)

    assert first.pull_request is not None and second.pull_request is not None
    assert second.pull_request.number == first.pull_request.number
    assert second.head != first.head
    with repo.gitea.client() as server:
        server.merge_pull_request(ORG, repo.name, second.pull_request.number)
    assert gitops.deployed_tags(repo.remote, "prod") == dict.fromkeys(PLACEHOLDERS, A)
    assert gitops.deployed_tags(repo.remote, "dev")["backend-v2"] == B


@pytest.mark.parametrize(
    ("environment", "commit", "message"),
    [
        ("dev", "main", "only allowed as seed values"),
        ("dev", "12345", "expected 7 to 40 hex characters"),
        ("dev", "zzzzzzz", "expected 7 to 40 hex characters"),
        ("staging", A, r"unknown environment 'staging': there is no "
         r"environments/staging/kustomization.yaml to edit \(expected one of: dev, prod\)"),
        ("../dev", A, "unknown environment '../dev'"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_and_nothing_is_pushed(
    repo: Repo, fixture_tree: Path, environment: str, commit: str, message: str
) -> None:
    gitops.seed(repo.remote, fixture_tree)
    before = repo.main()

    with pytest.raises(LabError, match=message) as caught:
        gitops.deploy(repo.remote, environment, commit)

    assert caught.value.hint
    assert repo.main() == before


def test_a_kustomization_without_the_expected_images_is_refused_naming_it(
    repo: Repo, fixture_tree: Path
) -> None:
    gitops.seed(repo.remote, fixture_tree)
    broken = fixture_tree / "environments" / "dev" / "kustomization.yaml"
    broken.write_text(broken.read_text().replace("name: smoke", "name: smoke-test"))

    with pytest.raises(LabError, match=f"{broken} lacks `images:` entries named smoke "):
        gitops.seed(repo.remote, fixture_tree)
    assert commit_messages(repo) == ["seed: GitOps repository content from gitops/"]


def test_deploy_refuses_a_repository_whose_kustomization_lost_its_images(
    repo: Repo, fixture_tree: Path
) -> None:
    gitops.seed(repo.remote, fixture_tree)
    write_file(repo, DEV, "kind: Kustomization\nresources: [../../base]\n", "hand edit")
    before = repo.main()

    with pytest.raises(LabError, match=rf"{DEV} in http://\S+ has no `images:` list; expected"):
        gitops.deploy(repo.remote, "dev", A)
    assert repo.main() == before


def test_deploy_to_an_unseeded_repository_says_to_seed_it(repo: Repo) -> None:
    with pytest.raises(LabError, match="has no main branch"):
        gitops.deploy(repo.remote, "dev", A)


def test_git_with_a_wrong_token_is_a_lab_error_naming_the_url(
    repo: Repo, fixture_tree: Path
) -> None:
    remote = repo.gitea.remote(repo.name, token="not-the-token")

    with pytest.raises(LabError) as caught:
        gitops.seed(remote, fixture_tree)

    error = caught.value
    assert error.message.startswith(f"Gitea at {remote.url} refused lab's credentials")
    assert "not-the-token" not in error.render()
    assert repo.main() is None


def test_git_against_a_stopped_server_is_a_lab_error_naming_the_url(
    stopped_gitea_url: str, fixture_tree: Path
) -> None:
    remote = gitserver.Remote(f"{stopped_gitea_url}/lab/gitops.git", "lab-admin", "secret-token")

    with pytest.raises(LabError) as caught:
        gitops.seed(remote, fixture_tree)

    assert caught.value.message.startswith(f"cannot reach the git server at {remote.url}")
    assert "secret-token" not in caught.value.render()


def test_the_real_gitops_tree_seeds_deploys_and_renders(repo: Repo, tmp_path: Path) -> None:
    seeded = gitops.seed(repo.remote, REAL_TREE)
    assert seeded.pushed
    assert not gitops.seed(repo.remote, REAL_TREE).pushed

    gitops.deploy(repo.remote, "dev", A)
    gitops.deploy(repo.remote, "dev", B)

    checkout = clone(repo, tmp_path / "checkout")
    rendered = render(checkout / "environments" / "dev")
    images = {
        (d["kind"], d["metadata"]["name"]): d["spec"]["template"]["spec"]["containers"][0]["image"]
        for d in rendered
        if d["kind"] in ("Deployment", "Job") and d["metadata"]["name"] != "redis"
    }
    assert images == {
        ("Deployment", "backend-v1"): f"localhost:5001/lab/backend:{A}",
        ("Deployment", "backend-v2"): f"localhost:5001/lab/backend:{B}",
        ("Deployment", "monitor-v1"): f"localhost:5001/lab/monitor:{A}",
        ("Deployment", "monitor-v2"): f"localhost:5001/lab/monitor:{B}",
        ("Deployment", "frontend"): f"localhost:5001/lab/frontend:{B}",
        ("Job", "smoke-test"): f"localhost:5001/lab/smoke:{B}",
    }
    (smoke,) = [
        d
        for d in rendered
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("smoke-test")
    ]
    assert (smoke["data"]["EXPECTED_V1_COMMIT"], smoke["data"]["EXPECTED_V2_COMMIT"]) == (A, B)
    prod = render(checkout / "environments" / "prod")
    assert {
        d["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[1]
        for d in prod
        if d["kind"] in ("Deployment", "Job") and d["metadata"]["name"] != "redis"
    } == {"main"}


def test_the_token_never_appears_in_commands_output_or_logs(
    repo: Repo, fixture_tree: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # lab.proc logs every command, its stdout and stderr

    gitops.seed(repo.remote, fixture_tree)
    gitops.deploy(repo.remote, "dev", A)
    gitops.promote(repo.remote, repo.gitea.client(), ORG, repo.name, A)

    assert "run: git" in caplog.text and "push" in caplog.text
    assert repo.gitea.token not in caplog.text
    assert repo.gitea.token not in repr(repo.remote)


def test_a_dirty_build_deploys_to_dev_under_its_own_tag_and_never_reaches_prod(
    repo: Repo, fixture_tree: Path
) -> None:
    gitops.seed(repo.remote, fixture_tree)
    dirty = tags.dirty_tag(A, "abcdef0123456789abcdef0123456789abcdef01")

    deployed = gitops.deploy(repo.remote, "dev", dirty)

    assert deployed.pushed and dirty == f"{A}-dirty-abcdef012345"
    assert gitops.deployed_tags(repo.remote, "dev")["backend-v2"] == dirty
    # The backend reports the commit it was built from, so smoke expects the commit.
    with gitops.repository_tree(repo.remote) as tree:
        text = (tree / DEV).read_text()
    assert tags.Kustomization(text, DEV).expected_commits()["EXPECTED_V2_COMMIT"] == A
    before = repo.main()
    for refused in (
        lambda: gitops.deploy(repo.remote, "prod", dirty),
        lambda: gitops.promote(repo.remote, repo.gitea.client(), ORG, repo.name, dirty),
    ):
        with pytest.raises(LabError, match="dirty working tree: only dev runs those") as caught:
            refused()
        assert "commit the changes" in (caught.value.hint or "")
    assert repo.main() == before
    assert repo.gitea.client().list_pull_requests(ORG, repo.name) == []


def test_a_deploy_by_digest_is_promoted_with_the_same_digests(
    repo: Repo, fixture_tree: Path, tmp_path: Path
) -> None:
    digests = {service: "sha256:" + str(n) * 64 for n, service in enumerate(SERVICES, 1)}
    gitops.seed(repo.remote, fixture_tree)
    gitops.deploy(repo.remote, "dev", A, digests=digests)
    dev = gitops.deployed_tags(repo.remote, "dev")
    assert dev["backend-v1"] == dev["backend-v2"] == f"{A}@{digests['backend']}"
    assert dev["smoke"] == f"{A}@{digests['smoke']}"
    checkout = clone(repo, tmp_path / "checkout")
    assert render_images(checkout / "environments" / "dev")["backend-v2"] == (
        f"localhost:5001/lab/backend:{A}@{digests['backend']}"
    )

    promotion = gitops.promote(repo.remote, repo.gitea.client(), ORG, repo.name, A)

    assert promotion.pull_request is not None
    with repo.gitea.client() as server:
        server.merge_pull_request(ORG, repo.name, promotion.pull_request.number)
    assert gitops.deployed_tags(repo.remote, "prod") == dev  # prod runs the bytes dev tested
    assert f"`localhost:5001/lab/monitor:{A}@{digests['monitor']}`" in promotion.pull_request.body

    # the next deploy without digests moves v2's pin to v1 and leaves no stale digest
    gitops.deploy(repo.remote, "dev", B)
    after = gitops.deployed_tags(repo.remote, "dev")
    assert after["backend-v1"] == f"{A}@{digests['backend']}" and after["backend-v2"] == B
    assert "digest" not in read_file(repo, DEV).split("name: frontend", 1)[1].split("name:", 1)[0]


def test_a_promotion_pins_from_the_registry_what_dev_runs_only_by_tag(
    repo: Repo, fixture_tree: Path
) -> None:
    gitops.seed(repo.remote, fixture_tree)
    gitops.deploy(repo.remote, "dev", A)  # by tag: say a run that started at deploy
    registry = {service: "sha256:" + "9" * 64 for service in SERVICES}

    promotion = gitops.promote(
        repo.remote, repo.gitea.client(), ORG, repo.name, A, digests=registry
    )

    assert promotion.pull_request is not None
    with repo.gitea.client() as server:
        server.merge_pull_request(ORG, repo.name, promotion.pull_request.number)
    prod = gitops.deployed_tags(repo.remote, "prod")
    assert prod == {name: f"{A}@{'sha256:' + '9' * 64}" for name in PLACEHOLDERS}
