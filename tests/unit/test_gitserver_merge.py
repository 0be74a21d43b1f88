"""Which answers of Gitea's merge endpoint are worth trying again (Gitea 1.26's
routers/api/v1/repo/pull.go, MergePullRequest)."""

from __future__ import annotations

import pytest

from lab.gitserver import merge_retryable


@pytest.mark.parametrize(
    ("status", "message", "retry"),
    [
        (405, "Please try again later", True),  # still checking mergeability
        (409, "merge push out of date", True),  # the base moved while merging
        (409, "head out of date", False),  # not the commit we were asked to merge
        (409, "Merge Conflict: conflicting files", False),
        (405, "User not allowed to merge PR", False),
        (405, "Work in progress PRs cannot be merged", False),
        (405, "The PR is already merged", False),
        (422, "Please try again later", False),
    ],
)
def test_only_what_gitea_says_can_succeed_later_is_retried(
    status: int, message: str, retry: bool
) -> None:
    assert merge_retryable(status, message) is retry


def test_new_admin_credentials_roll_the_gitea_pod_without_writing_them() -> None:
    from lab import config, gitea

    c = config.load({}, {})
    manifests = gitea.gitea_manifests(c)

    def checksum(password: str) -> str:
        secret = gitea.admin_secret(
            c, username="lab-admin", password=password, secret_key="k", internal_token="t"
        )
        [deployment] = [
            d for d in gitea.roll_on_secret_change(manifests, secret) if d["kind"] == "Deployment"
        ]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert password not in str(deployment)
        return str(annotations[gitea.SECRET_CHECKSUM_ANNOTATION])

    assert checksum("first") == checksum("first")
    assert checksum("first") != checksum("after-state.json-was-lost")
