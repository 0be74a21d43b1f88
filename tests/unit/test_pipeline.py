"""lab.pipeline: stage order and gates, strictness, the smoke verdict, the commit, the lock."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lab import cli, commits, config, context, pipeline, proc, tags
from lab.errors import LabError
from lab.report import StageResult, Status, worst
from lab.stages import smoke
from lab.ui import UI


def _run(tmp_path: Path, strict: bool = False) -> context.Run:
    ctx = cli.Context(config=config.load({"state_dir": str(tmp_path / "s")}, {}), ui=UI())
    commit = context.Commit("a" * 40, "main", False)
    return context.Run(ctx, context.PipelineOptions(strict=strict), commit, "r1", tmp_path / "run")


def _stage(name: str, status: Status, calls: list[str]):
    def body(run: context.Run) -> StageResult:
        calls.append(name)
        return StageResult(name, status, time.time(), 0.0, f"{name} {status.value}")

    return (name, body)


def _flow(calls: list[str], failing: str | None = None, status: Status = Status.FAILED):
    return tuple(
        _stage(name, status if name == failing else Status.PASSED, calls)
        for name in pipeline.STAGE_NAMES
    )


def test_the_stages_are_the_flow_in_order() -> None:
    assert pipeline.STAGE_NAMES == ("quality", "build", "scan", "deploy-dev", "smoke", "promote")


def test_a_scan_failure_deploys_nothing(tmp_path: Path) -> None:
    calls: list[str] = []
    results = pipeline.execute(_run(tmp_path), _flow(calls, failing="scan"))
    assert calls == ["quality", "build", "scan"]
    assert [r.status for r in results][3:] == [Status.SKIPPED] * 3
    assert results[3].summary == "not run: scan failed"


def test_a_smoke_failure_opens_no_pull_request(tmp_path: Path) -> None:
    calls: list[str] = []
    pipeline.execute(_run(tmp_path), _flow(calls, failing="smoke"))
    assert "promote" not in calls and calls[-1] == "smoke"


def test_unverified_passes_the_gate_unless_strict(tmp_path: Path) -> None:
    calls: list[str] = []
    pipeline.execute(_run(tmp_path), _flow(calls, failing="quality", status=Status.UNVERIFIED))
    assert calls == list(pipeline.STAGE_NAMES)
    strict_calls: list[str] = []
    pipeline.execute(
        _run(tmp_path, strict=True),
        _flow(strict_calls, failing="quality", status=Status.UNVERIFIED),
    )
    assert strict_calls == ["quality"]


def test_strict_defaults_to_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = context.Run(
        _run(tmp_path).ctx, context.PipelineOptions(), _run(tmp_path).commit, "r", tmp_path
    )
    monkeypatch.setenv("CI", "true")
    assert run.strict
    monkeypatch.setenv("CI", "")
    assert not run.strict


def test_resume_from_a_stage_runs_it_and_the_rest(tmp_path: Path) -> None:
    calls: list[str] = []
    pipeline.execute(_run(tmp_path), _flow(calls), start="deploy-dev")
    assert calls == ["deploy-dev", "smoke", "promote"]
    # An unknown --from is refused with the flags, before anything runs (see below).


def test_a_lab_error_in_a_stage_fails_it_with_the_message(tmp_path: Path) -> None:
    def broken(run: context.Run) -> StageResult:
        raise LabError("registry unreachable", hint="lab.up")

    results = pipeline.execute(
        _run(tmp_path), (("build", broken), _stage("scan", Status.PASSED, []))
    )
    assert results[0].status is Status.FAILED and results[0].summary == "registry unreachable"
    assert results[1].status is Status.SKIPPED


def test_job_verdict_reads_the_conditions() -> None:
    assert smoke.job_verdict({"status": {"active": 1}}) is None
    assert (
        smoke.job_verdict({"status": {"conditions": [{"type": "Complete", "status": "True"}]}})
        == "complete"
    )
    failed = {
        "status": {
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                }
            ]
        }
    }
    assert (
        smoke.job_verdict(failed)
        == "failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
    )


def test_smoke_log_becomes_checks() -> None:
    log = (
        "ok   api health (12ms)\n"
        "ok   variant v1 reports its commit (8ms)\n"
        "FAIL variant v2 reports its commit: expected commit abc, got def\n"
        "smoke: FAILED at variant v2 reports its commit (2 of 9 checks passed)\n"
    )
    checks = smoke.parse_smoke_log(log)
    assert [(c.name, c.status) for c in checks] == [
        ("api health", Status.PASSED),
        ("variant v1 reports its commit", Status.PASSED),
        ("variant v2 reports its commit", Status.FAILED),
    ]
    assert checks[0].duration == pytest.approx(0.012)
    assert checks[2].detail == "expected commit abc, got def"


def _git(repo: Path, *args: str) -> str:
    return proc.run(("git", *args), timeout=30, cwd=repo).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository on main with one commit of a.txt ("1")."""
    path = tmp_path / "repo"
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    (path / "a.txt").write_text("1")
    _git(path, "add", "a.txt")
    _git(path, "commit", "-q", "-m", "one")
    return path


def test_a_dirty_tree_is_refused_unless_allowed(repo: Path) -> None:
    clean = commits.resolve_commit(context.PipelineOptions(), repo)
    assert (clean.sha, clean.branch, clean.dirty) == (
        _git(repo, "rev-parse", "HEAD"),
        "main",
        False,
    )
    assert clean.time.isoformat() == _git(repo, "show", "-s", "--format=%cI", "HEAD")
    (repo / "a.txt").write_text("2")
    with pytest.raises(LabError) as caught:
        commits.resolve_commit(context.PipelineOptions(), repo)
    assert "--allow-dirty" in (caught.value.hint or "")
    dirty = commits.resolve_commit(context.PipelineOptions(allow_dirty=True), repo)
    assert dirty.dirty and dirty.version.endswith("-dirty")


def test_a_dirty_build_is_tagged_by_its_content_never_as_the_commit(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    assert commits.resolve_commit(context.PipelineOptions(), repo).image_tag == head

    (repo / "a.txt").write_text("2")
    first = commits.resolve_commit(context.PipelineOptions(allow_dirty=True), repo).image_tag
    (repo / "a.txt").write_text("3")
    second = commits.resolve_commit(context.PipelineOptions(allow_dirty=True), repo).image_tag

    assert first.startswith(f"{head}-dirty-") and len(first) == 40 + len("-dirty-") + 12
    assert second != first  # other content, other tag: a node's cached image cannot stand in
    # The tree is what `git add -A` would stage, made without touching the user's index.
    _git(repo, "add", "a.txt")
    assert second.endswith(_git(repo, "write-tree")[:12])
    _git(repo, "reset", "-q")
    assert _git(repo, "diff", "--cached", "--name-only") == ""
    assert tags.commit_of(second) == head


def test_an_unknown_sha_is_a_lab_error(repo: Path) -> None:
    with pytest.raises(LabError):
        commits.resolve_commit(context.PipelineOptions(sha="0" * 40), repo)


def test_a_second_concurrent_run_is_refused(tmp_path: Path) -> None:
    with pipeline.run_lock(tmp_path):
        with pytest.raises(LabError) as caught, pipeline.run_lock(tmp_path):
            pass
        assert "in progress" in caught.value.message and "pid" in caught.value.message
    with pipeline.run_lock(tmp_path):  # released afterwards
        pass


def test_the_one_fold_prefers_failure_then_unverified_then_passed() -> None:
    P, U, F, S = Status.PASSED, Status.UNVERIFIED, Status.FAILED, Status.SKIPPED
    assert worst([P, U]) is U
    assert worst([P, U, F]) is F
    assert worst([P, S]) is P
    assert worst([S, S]) is S
    assert worst([]) is S


def test_without_a_data_plane_the_smoke_job_calls_the_services_directly() -> None:
    job = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "smoke-test", "env": [{"name": "X", "value": "1"}]}]
                }
            }
        }
    }
    smoke.direct_routes(job)
    smoke.direct_routes(job)  # idempotent
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == ["X", "SERVICE_ROUTES"]
    assert "/api/=http://backend{-version}:3000" in env[1]["value"]


def test_a_crash_that_is_not_a_lab_error_fails_its_stage_and_the_report(tmp_path) -> None:
    from kubernetes.client.exceptions import ApiException

    from lab import report

    error = ApiException(status=400, reason="Bad Request")
    error.body = '{"message":"container \\"smoke-test\\" in pod is waiting to start"}'
    stage = pipeline.crashed_stage("smoke", error, 1.5)
    assert stage.status is Status.FAILED
    assert stage.summary.startswith("ApiException: Bad Request")
    assert "waiting to start" in stage.checks[0].output
    run = report.RunReport("r", "a" * 40, "main", False, 0.0, (stage,))
    assert run.status is Status.FAILED
    assert 'failures="1"' in report.to_junit(run)


def test_the_stage_named_as_stopping_the_run_is_the_failed_one_not_an_earlier_unverified() -> None:
    from lab import report

    def stage(name: str, status: Status) -> StageResult:
        return StageResult(name, status, 0.0, 1.0, name)

    run = report.RunReport(
        "r", "a" * 40, "main", False, 0.0,
        (stage("quality", Status.UNVERIFIED), stage("scan", Status.UNVERIFIED),
         stage("smoke", Status.FAILED), stage("promote", Status.SKIPPED)),
    )  # fmt: skip
    assert pipeline.stopping_stage(run).name == "smoke"
    strict = report.RunReport(
        "r", "a" * 40, "main", False, 0.0, (stage("quality", Status.UNVERIFIED),)
    )
    assert pipeline.stopping_stage(strict).name == "quality"


# -- the flags, read and checked in one place ---------------------------------------------


def test_pipeline_flags_become_one_frozen_options_value() -> None:
    options = context.PipelineOptions.from_flags(
        pipeline.STAGE_NAMES, sha="abc", start="smoke", stop="smoke", runner="host", lenient=True
    )
    assert (options.sha, options.start, options.stop, options.runner) == (
        "abc",
        "smoke",
        "smoke",
        "host",
    )
    assert options.strict is False
    assert context.PipelineOptions.from_flags(pipeline.STAGE_NAMES, strict=True).strict is True
    assert context.PipelineOptions.from_flags(pipeline.STAGE_NAMES).strict is None  # CI decides
    with pytest.raises(AttributeError):
        options.sha = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("flags", "message", "hint"),
    [
        ({"strict": True, "lenient": True}, "contradict", "pass one of them"),
        ({"runner": "podman"}, "unknown runner 'podman'", "--runner docker or --runner host"),
        ({"start": "deploy"}, "unknown stage 'deploy'", "deploy-dev"),
        ({"stop": "prod"}, "unknown stage 'prod'", "promote"),
    ],
)
def test_a_wrong_flag_is_said_with_what_to_pass(flags: dict, message: str, hint: str) -> None:
    with pytest.raises(LabError) as caught:
        context.PipelineOptions.from_flags(pipeline.STAGE_NAMES, **flags)
    assert message in caught.value.message
    assert hint in (caught.value.hint or "")


def test_a_sha_other_than_head_is_refused_for_stages_that_read_the_working_tree(
    tmp_path: Path,
) -> None:
    # This checkout's own history: HEAD~1 is a real commit that is not HEAD.
    ctx = cli.Context(config=config.load({"state_dir": str(tmp_path / "s")}, {}), ui=UI())
    calls: list[str] = []
    with pytest.raises(LabError) as caught:
        pipeline.pipeline_run(ctx, context.PipelineOptions(sha="HEAD~1"), _flow(calls))
    assert "is not HEAD" in caught.value.message and "quality, build" in caught.value.message
    assert "git switch --detach HEAD~1" in (caught.value.hint or "")
    assert calls == []  # refused before anything ran
    # Deploying the images of an earlier commit reads no files: allowed.
    pipeline.pipeline_run(
        ctx, context.PipelineOptions(sha="HEAD~1", start="scan", strict=False), _flow(calls)
    )
    assert calls == ["scan", "deploy-dev", "smoke", "promote"]
