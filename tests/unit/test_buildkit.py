"""BuildKit builds: the argv, and the rawjson progress of real builds (captured here).

The streams under tests/data/buildkit/ were written by `docker buildx build
--progress=rawjson` (buildx 0.38.2 on Docker Engine 20.10's BuildKit): the smoke image
built without cache, the same build again, and a build whose second RUN exits 3.
"""

from __future__ import annotations

import itertools
import stat
import sys
from pathlib import Path

import pytest

from lab import buildkit, engine, images
from lab.errors import LabError

DATA = Path(__file__).resolve().parent.parent / "data" / "buildkit"


def _fed(name: str, seen: list[str] | None = None) -> buildkit.Progress:
    progress = buildkit.Progress(seen.append if seen is not None else None)
    for line in (DATA / name).read_text().splitlines():
        progress.feed(line)
    return progress


def test_a_cold_build_ran_every_step_and_names_them() -> None:
    progress = _fed("smoke-cold.jsonl")
    assert len(progress.steps) == 6  # WORKDIR, 2 COPY, RUN go build, 2 COPY --from
    # Even with --no-cache, BuildKit reports the WORKDIR (a bare mkdir) as cached.
    assert progress.cached_steps == 1
    assert progress.rebuilt[0] == "COPY go.mod ./"
    assert progress.rebuilt[-1] == "COPY --from=build /out/smoke /smoke"
    assert not any(step.startswith("FROM") for step in progress.rebuilt)


def test_the_same_build_again_came_from_the_cache() -> None:
    seen: list[str] = []
    progress = _fed("smoke-warm.jsonl", seen)
    assert (len(progress.steps), progress.cached_steps) == (6, 6)
    assert progress.rebuilt == []
    assert any(line.endswith(" CACHED") for line in seen)
    assert seen[0].startswith("#1 [internal] load build definition")


def test_a_failed_step_is_named_with_its_output_and_buildx_reason() -> None:
    progress = _fed("failed-run-step.jsonl")
    assert progress.step.startswith('[3/3] RUN echo "compiling main.go"')
    assert progress.reason.startswith("failed to build: failed to solve: executor failed")
    assert "exit code: 3" in progress.reason
    tail = progress.log_tail()
    assert "main.go:3: undefined: x" in tail  # the step's stderr, decoded
    assert "compiling main.go" in tail


def test_plain_lines_and_broken_json_are_kept_not_fatal() -> None:
    progress = buildkit.Progress()
    for line in ("{not json", '{"vertexes": [{"digest": "sha256:1"}]}', '"a string"', ""):
        progress.feed(line)
    assert progress.steps == []
    assert progress.reason == '"a string"'


def test_the_argv_carries_tags_args_labels_and_the_offline_switches(tmp_path: Path) -> None:
    build = buildkit.Build(
        context=tmp_path / "apps" / "backend",
        tags=("r/lab/backend:abc", "r/lab/backend:main"),
        buildargs={"VERSION": "1.2.3"},
        labels={images.SERVICE_LABEL: "backend"},
        target="build",
        nocache=True,
        offline=True,
    )
    argv = buildkit.command_for(build, tmp_path / "iid")
    assert argv[:3] == ("docker", "buildx", "build")
    assert ("--builder", "default") in list(itertools.pairwise(argv))  # the Engine's own
    assert "--progress=rawjson" in argv and "--load" in argv
    pairs = list(itertools.pairwise(argv))
    assert ("--tag", "r/lab/backend:abc") in pairs and ("--tag", "r/lab/backend:main") in pairs
    assert ("--build-arg", "VERSION=1.2.3") in pairs
    assert ("--label", f"{images.SERVICE_LABEL}=backend") in pairs
    assert ("--target", "build") in pairs
    assert ("--network", "none") in pairs
    assert "--no-cache" in argv
    assert argv[-1] == str(tmp_path / "apps" / "backend")


def test_a_plain_build_asks_for_no_network_change_and_no_cache_export(tmp_path: Path) -> None:
    argv = buildkit.command_for(buildkit.Build(context=tmp_path, tags=("x:1",)), tmp_path / "i")
    assert "--network" not in argv and "--target" not in argv and "--no-cache" not in argv


def _fake_docker(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    version: str,
    stream: str = "",
    code: int = 0,
    image_id: str = "",
) -> None:
    """A `docker` on PATH: answers `buildx version`, and plays `stream` for `buildx build`."""
    bindir = tmp_path / "fake-docker"
    bindir.mkdir()
    (bindir / "stream.jsonl").write_text(stream)
    script = bindir / "docker"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, pathlib\n"
        "args = sys.argv[1:]\n"
        "if args[:2] == ['buildx', 'version']:\n"
        f'    print({version!r}) if {version!r} else sys.exit("docker: unknown command: docker buildx")\n'
        "    sys.exit(0)\n"
        f"sys.stderr.write(pathlib.Path({str(bindir / 'stream.jsonl')!r}).read_text())\n"
        f"if {image_id!r}:\n"
        f"    pathlib.Path(args[args.index('--iidfile') + 1]).write_text({image_id!r})\n"
        f"sys.exit({code})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")


def _plan(tmp_path: Path, service: str) -> images.BuildPlan:
    """A plan for `service` whose context holds a Dockerfile (the fake docker builds it)."""
    context = tmp_path / "apps" / service
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM scratch\n")
    return images.BuildPlan(service=service, context=context, tags=(f"r/lab/{service}:x",))


def test_without_buildx_the_error_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_docker(tmp_path, monkeypatch, version="")
    with pytest.raises(LabError, match="buildx is not installed") as caught:
        buildkit.command()
    assert "make buildx" in (caught.value.hint or "")


def test_a_buildx_without_rawjson_is_refused_as_too_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_docker(tmp_path, monkeypatch, version="github.com/docker/buildx v0.10.4 abcdef")
    with pytest.raises(LabError, match=r"v0\.10\.4 is too old"):
        buildkit.command()


def test_a_failed_build_becomes_an_image_build_error_naming_service_and_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_docker(
        tmp_path,
        monkeypatch,
        version="github.com/docker/buildx v0.38.2 deadbeef",
        stream=(DATA / "failed-run-step.jsonl").read_text(),
        code=1,
    )
    plan = _plan(tmp_path, "monitor")
    with pytest.raises(images.ImageBuildError) as caught:
        images.build_image(None, plan)
    error = caught.value
    assert error.service == "monitor"
    assert error.step.startswith("[3/3] RUN")
    assert "monitor image failed at [3/3] RUN" in error.message
    assert "main.go:3: undefined: x" in (error.output_tail or "")
    assert "apps/monitor/Dockerfile" in (error.hint or "")


def test_a_finished_build_reports_its_image_and_cache_hits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_docker(
        tmp_path,
        monkeypatch,
        version="github.com/docker/buildx v0.38.2 deadbeef",
        stream=(DATA / "smoke-warm.jsonl").read_text(),
        image_id="sha256:feed",
    )
    lines: list[tuple[str, str]] = []
    plan = _plan(tmp_path, "smoke")
    built = images.build_image(None, plan, on_log=lambda s, line: lines.append((s, line)))
    assert built.image_id == "sha256:feed"
    assert built.fully_cached and built.steps == 6
    assert lines and all(service == "smoke" for service, _ in lines)


def test_a_build_that_writes_no_image_id_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_docker(tmp_path, monkeypatch, version="github.com/docker/buildx v0.38.2 x")
    with pytest.raises(buildkit.BuildError, match="no image ID"):
        buildkit.build(
            buildkit.Build(context=tmp_path, tags=("x:1",)), buildkit.Progress(), timeout=30
        )


def test_no_dockerfile_asks_buildkit_for_a_frontend_image() -> None:
    # A `# syntax=` line makes BuildKit pull that frontend image first: an offline build
    # (a workshop room, our CI) then fails before its first step. The daemon's own
    # Dockerfile frontend must do.
    apps = Path(__file__).resolve().parents[2] / "apps"
    dockerfiles = sorted(apps.glob("*/Dockerfile"))
    assert len(dockerfiles) == len(images.SERVICES)
    for dockerfile in dockerfiles:
        first = dockerfile.read_text().lstrip().splitlines()[0]
        assert not first.replace(" ", "").lower().startswith("#syntax="), dockerfile


def test_the_step_that_failed_first_is_named_not_one_cancelled_after_it() -> None:
    # COPY of a missing file: BuildKit fails that step, then cancels the one beside it.
    progress = _fed("missing-file.jsonl")
    assert progress.step == "[2/2] COPY missing.txt /"
    assert '"/missing.txt" not found' in progress.reason


def test_the_builder_is_the_current_context_s_own(tmp_path: Path) -> None:
    config = tmp_path / "docker"
    config.mkdir()
    (config / "config.json").write_text('{"currentContext": "colima"}')
    assert engine.context_name({"DOCKER_CONFIG": str(config)}) == "colima"
    assert engine.context_name({"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "x"}) == "x"
    assert engine.context_name({"DOCKER_HOST": "tcp://h:2375", "DOCKER_CONTEXT": "x"}) == "default"
    assert engine.context_name({"HOME": str(tmp_path)}) == "default"
    argv = buildkit.command_for(
        buildkit.Build(context=tmp_path, tags=("x:1",)), tmp_path, builder="colima"
    )
    assert ("--builder", "colima") in list(itertools.pairwise(argv))
