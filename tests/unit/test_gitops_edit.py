"""The image pins (lab.tags): A/B tag planning, commit validation, structural edits;
and the text of a promotion's pull request (lab.gitops)."""

from __future__ import annotations

import pytest

from lab.errors import LabError
from lab.gitops import PromotionSummary, render_promotion_body
from lab.tags import (
    IMAGE_NAMES,
    ImageChange,
    commit_digests,
    edit_tags,
    pin,
    plan_update,
    read_tags,
    validate_commit,
)
from tests.conftest import REPO

A = "a" * 40
B = "b" * 40
C = "c" * 40

KUSTOMIZATION = """\
# dev: what ArgoCD deploys into demo-dev.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: demo-dev
resources:
  - ../../base
images:
  # A/B variants: lab sets v1 to the previous v2 on each deploy.
  - name: backend-v1
    newName: localhost:5001/lab/backend
    newTag: main # v1
  - name: backend-v2
    newName: localhost:5001/lab/backend
    newTag: "main"
  - name: monitor-v1
    newName: localhost:5001/lab/monitor
    newTag: main
  - name: monitor-v2
    newName: localhost:5001/lab/monitor
    newTag: main
  - name: frontend
    newName: localhost:5001/lab/frontend
    newTag: main
  - name: smoke
    newName: localhost:5001/lab/smoke
    newTag: main
configMapGenerator:
  # What the smoke test expects each backend variant to report.
  - name: smoke-test
    behavior: merge
    literals:
      - EXPECTED_V1_COMMIT=
      - EXPECTED_V2_COMMIT=
  - name: backend-config
    behavior: merge
    literals:
      - ALLOWED_ORIGINS=http://dev.localhost:8080
"""


def tags(backend: tuple[str, str], monitor: tuple[str, str], single: str) -> dict[str, str]:
    return {
        "backend-v1": backend[0],
        "backend-v2": backend[1],
        "monitor-v1": monitor[0],
        "monitor-v2": monitor[1],
        "frontend": single,
        "smoke": single,
    }


@pytest.mark.parametrize(
    ("current", "commit", "expected"),
    [
        pytest.param(
            tags(("main", "main"), ("main", "main"), "main"),
            A,
            tags((A, A), (A, A), A),
            id="first deploy over seed tags: both variants new",
        ),
        pytest.param(
            tags((A, A), (A, A), A),
            B,
            tags((A, B), (A, B), B),
            id="second deploy: v1 takes the live v2",
        ),
        pytest.param(
            tags((A, B), (A, B), B),
            C,
            tags((B, C), (B, C), C),
            id="third deploy: v1 is the previous v2, not the previous v1",
        ),
        pytest.param(
            tags((A, B), (A, B), B),
            B,
            tags((A, B), (A, B), B),
            id="already deployed: no change",
        ),
        pytest.param(
            tags((A, B), (A, B), B),
            A,
            tags((B, A), (B, A), A),
            id="redeploying the v1 commit swaps the variants",
        ),
        pytest.param(
            tags(("main", "main"), (A, B), B),
            C,
            tags((C, C), (B, C), C),
            id="services are planned independently",
        ),
        pytest.param(
            tags(("main", A), (A, A), A),
            B,
            tags((A, B), (A, B), B),
            id="a seed v1 under a deployed v2 is replaced by the v2",
        ),
    ],
)
def test_plan_update_sets_v1_to_the_live_v2_and_v2_to_the_commit(
    current: dict[str, str], commit: str, expected: dict[str, str]
) -> None:
    assert plan_update(current, commit) == expected


def test_plan_update_does_not_change_its_input() -> None:
    current = tags((A, A), (A, A), A)
    plan_update(current, B)
    assert current == tags((A, A), (A, A), A)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("abcdef1", "abcdef1"),
        (A, A),
        ("ABCDEF1234", "abcdef1234"),
        (" 1234567 ", "1234567"),
    ],
)
def test_validate_commit_accepts_7_to_40_hex_characters(given: str, expected: str) -> None:
    assert validate_commit(given) == expected


@pytest.mark.parametrize(
    "given",
    ["main", "abc123", "a" * 41, "ghijklm", "abc 1234", "", "v1.2.3", "1234567\n890"],
)
def test_validate_commit_refuses_anything_else(given: str) -> None:
    with pytest.raises(LabError, match="7 to 40 hex characters"):
        validate_commit(given)


def test_validate_commit_says_main_is_a_seed_value_only() -> None:
    with pytest.raises(LabError, match="only allowed as seed values"):
        validate_commit("main")


def test_read_tags_maps_each_placeholder() -> None:
    assert read_tags(KUSTOMIZATION, "dev") == dict.fromkeys(IMAGE_NAMES, "main")


def test_edit_keeps_comments_order_and_quoting() -> None:
    edited, changes = edit_tags(KUSTOMIZATION, tags((A, B), (A, B), B), "dev")
    expected = KUSTOMIZATION.replace("newTag: main # v1", f"newTag: {A} # v1").replace(
        'newTag: "main"', f'newTag: "{B}"'
    )
    # monitor, frontend, smoke: plain scalars in order of appearance
    for new in (A, B, B, B):
        expected = expected.replace("newTag: main\n", f"newTag: {new}\n", 1)
    expected = expected.replace("EXPECTED_V1_COMMIT=\n", f"EXPECTED_V1_COMMIT={A}\n")
    expected = expected.replace("EXPECTED_V2_COMMIT=\n", f"EXPECTED_V2_COMMIT={B}\n")
    assert edited == expected
    assert [change.name for change in changes] == list(IMAGE_NAMES)
    assert changes[0] == ImageChange("backend-v1", "localhost:5001/lab/backend", "main", A)


def test_the_smoke_test_expects_the_backend_variants_commits() -> None:
    edited, _ = edit_tags(KUSTOMIZATION, tags((A, B), (C, C), C), "dev")
    assert f"- EXPECTED_V1_COMMIT={A}\n" in edited
    assert f"- EXPECTED_V2_COMMIT={B}\n" in edited
    assert "- ALLOWED_ORIGINS=http://dev.localhost:8080\n" in edited


def test_a_seed_tag_leaves_the_expected_commit_empty() -> None:
    edited, _ = edit_tags(KUSTOMIZATION, {"backend-v2": A}, "dev")
    assert "- EXPECTED_V1_COMMIT=\n" in edited
    assert f"- EXPECTED_V2_COMMIT={A}\n" in edited


def test_stale_expected_commits_are_corrected_even_when_tags_match() -> None:
    stale = KUSTOMIZATION.replace("EXPECTED_V1_COMMIT=", f"EXPECTED_V1_COMMIT={C}")
    edited, changes = edit_tags(stale, {}, "dev")
    assert changes == ()
    assert edited == KUSTOMIZATION


def test_edit_quotes_a_short_sha_that_would_read_as_a_number() -> None:
    edited, _ = edit_tags(
        KUSTOMIZATION, tags(("1234567", "1e10000"), ("main", "main"), "main"), "f"
    )
    assert "newTag: '1234567' # v1" in edited
    assert 'newTag: "1e10000"' in edited
    assert read_tags(edited, "f")["backend-v1"] == "1234567"


def test_edit_without_changes_returns_the_text_unchanged() -> None:
    edited, changes = edit_tags(KUSTOMIZATION, dict.fromkeys(IMAGE_NAMES, "main"), "dev")
    assert edited == KUSTOMIZATION
    assert changes == ()


def test_edit_keeps_an_unindented_list_style() -> None:
    # the same document with `- ` at its key's column (ruamel's default style)
    reindent = {2: 0, 4: 2, 6: 2}
    flat = "".join(
        " " * reindent.get(len(line) - len(line.lstrip(" ")), 0) + line.lstrip(" ")
        for line in KUSTOMIZATION.splitlines(keepends=True)
    )
    assert read_tags(flat, "flat") == read_tags(KUSTOMIZATION, "indented")
    edited, _ = edit_tags(flat, {"frontend": A}, "dev")
    assert edited == flat.replace("lab/frontend\n  newTag: main", f"lab/frontend\n  newTag: {A}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "kind: Kustomization\nresources: [../../base]\n",
            r"environments/dev/kustomization.yaml has no `images:` list; expected entries named "
            r"backend-v1, backend-v2, monitor-v1, monitor-v2, frontend, smoke",
            id="no images",
        ),
        pytest.param(
            KUSTOMIZATION.replace("name: monitor-v2", "name: monitor"),
            r"environments/dev/kustomization.yaml lacks `images:` entries named monitor-v2 ",
            id="a placeholder missing",
        ),
        pytest.param(
            KUSTOMIZATION.replace("    newTag: main\n  - name: smoke", "  - name: smoke"),
            r"environments/dev/kustomization.yaml: image frontend has no newTag",
            id="no newTag",
        ),
        pytest.param(
            KUSTOMIZATION.replace("      - EXPECTED_V2_COMMIT=\n", ""),
            r"environments/dev/kustomization.yaml lacks a configMapGenerator `smoke-test` with "
            r"the literals EXPECTED_V1_COMMIT=, EXPECTED_V2_COMMIT=",
            id="no expected commit for the smoke test",
        ),
        pytest.param(
            KUSTOMIZATION[: KUSTOMIZATION.index("configMapGenerator")],
            r"lacks a configMapGenerator `smoke-test`",
            id="no configMapGenerator",
        ),
        pytest.param(
            "images: [\n",
            r"environments/dev/kustomization.yaml is not valid YAML",
            id="not YAML",
        ),
        pytest.param(
            "- just\n- a list\n",
            r"has no `images:` list",
            id="not a mapping",
        ),
    ],
)
def test_a_kustomization_without_the_expected_targets_is_refused_naming_the_file(
    text: str, message: str
) -> None:
    with pytest.raises(LabError, match=message) as caught:
        edit_tags(text, {"frontend": A}, "environments/dev/kustomization.yaml")
    assert caught.value.hint


def test_promotion_body_lists_shas_images_scan_and_smoke() -> None:
    _, changes = edit_tags(KUSTOMIZATION, tags((A, B), (A, B), B), "prod")
    body = render_promotion_body(
        B, "prod", changes, PromotionSummary(scan="0 critical, 2 high", smoke="passed (v1, v2)")
    )
    assert f"Promote commit `{B}` to **prod**" in body
    assert f"| `backend-v2` (localhost:5001/lab/backend) | `main` | `{B}` |" in body
    assert f"- `localhost:5001/lab/frontend:{B}`" in body
    assert "**Scan:** 0 critical, 2 high" in body
    assert "**Smoke test (dev):** passed (v1, v2)" in body


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_a_deploy_edit_of_the_real_gitops_tree_changes_only_tags_and_expected_commits(
    environment: str,
) -> None:
    path = REPO / "gitops" / "environments" / environment / "kustomization.yaml"
    text = path.read_text()
    edited, changes = edit_tags(text, plan_update(read_tags(text, str(path)), A), str(path))

    assert len(changes) == len(IMAGE_NAMES)
    changed = [
        (old, new)
        for old, new in zip(text.splitlines(), edited.splitlines(), strict=True)
        if old != new
    ]
    assert changed == [("    newTag: main", f"    newTag: {A}")] * len(IMAGE_NAMES) + [
        ("      - EXPECTED_V1_COMMIT=", f"      - EXPECTED_V1_COMMIT={A}"),
        ("      - EXPECTED_V2_COMMIT=", f"      - EXPECTED_V2_COMMIT={A}"),
    ]


# -- digest pins: a deploy pins each image to the digest its tag had when pushed

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def test_a_deploy_with_digests_pins_the_new_commit_and_moves_v2s_pin_to_v1() -> None:
    current = tags((A, f"{A}@{D1}"), (A, A), A)
    planned = plan_update(current, B, {"backend": D2})
    assert planned["backend-v1"] == f"{A}@{D1}"  # the live v2, digest and all
    assert planned["backend-v2"] == f"{B}@{D2}"
    assert planned["monitor-v2"] == B  # no digest given for it: by tag


def test_a_first_deploy_pins_both_variants_to_the_new_digest() -> None:
    planned = plan_update(tags(("main", "main"), ("main", "main"), "main"), A, {"backend": D1})
    assert planned["backend-v1"] == planned["backend-v2"] == f"{A}@{D1}"


def test_redeploying_a_commit_repins_it_without_moving_v1() -> None:
    current = tags((A, B), (A, B), B)
    planned = plan_update(current, B, {"backend": D1, "monitor": D2})
    assert planned["backend-v1"] == A and planned["backend-v2"] == f"{B}@{D1}"
    # without a digest, a pin already at the commit is kept as it is
    assert plan_update({**current, "smoke": f"{B}@{D1}"}, B)["smoke"] == f"{B}@{D1}"


def test_pins_are_written_as_newtag_and_digest_and_read_back() -> None:
    edited, changes = edit_tags(KUSTOMIZATION, {"backend-v2": f"{A}@{D1}"}, "dev")
    assert f"newTag: \"{A}\"" in edited and f"digest: {D1}" in edited  # quoting kept
    assert read_tags(edited, "dev")["backend-v2"] == f"{A}@{D1}"
    assert [(c.name, c.new) for c in changes] == [("backend-v2", f"{A}@{D1}")]
    # a later tag without a digest removes the old digest: it named other bytes
    again, _ = edit_tags(edited, {"backend-v2": B}, "dev")
    assert "digest:" not in again and read_tags(again, "dev")["backend-v2"] == B


def test_the_smoke_test_expects_the_commit_of_a_pinned_tag() -> None:
    edited, _ = edit_tags(KUSTOMIZATION, {"backend-v2": f"{A}@{D1}"}, "dev")
    assert f"EXPECTED_V2_COMMIT={A}" in edited


def test_promotion_takes_the_digests_dev_runs_the_commit_with() -> None:
    dev = tags((A, f"{B}@{D1}"), (f"{B}@{D2}", f"{B}@{D2}"), f"{B}@{D2}")
    assert commit_digests(dev, B) == {"backend": D1, "monitor": D2, "frontend": D2, "smoke": D2}
    assert commit_digests(dev, A) == {}  # v1 runs A by tag: nothing to pin


@pytest.mark.parametrize("bad", ["sha256:abc", "md5:" + "0" * 64, "1" * 64])
def test_a_malformed_digest_is_refused(bad: str) -> None:
    with pytest.raises(LabError, match="not an image digest"):
        pin(A, bad)


def test_redeploying_a_commit_both_variants_run_repins_both() -> None:
    current = tags((f"{A}@{D1}", f"{A}@{D1}"), (A, A), A)
    planned = plan_update(current, A, {"backend": D2})
    assert planned["backend-v1"] == planned["backend-v2"] == f"{A}@{D2}"


def test_a_malformed_digest_in_the_file_is_named_with_the_file() -> None:
    text = KUSTOMIZATION.replace(
        "  - name: smoke\n    newName: localhost:5001/lab/smoke\n    newTag: main\n",
        "  - name: smoke\n    newName: localhost:5001/lab/smoke\n    newTag: main\n"
        "    digest: sha256:nothex\n",
    )
    assert "digest: sha256:nothex" in text
    with pytest.raises(LabError, match=r"environments/dev/kustomization.yaml: image smoke"):
        read_tags(text, "environments/dev/kustomization.yaml")
