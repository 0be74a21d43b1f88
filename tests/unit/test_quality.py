"""The quality stage's table, its pure policies, and the ordered runner on real processes."""

from __future__ import annotations

import io
import re
import tarfile
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from lab import quality, toolchains
from lab.checks import (
    ALL,
    AUDIT,
    CHECKS,
    DETAIL_LIMIT,
    LINT,
    OFFLINE_ENV,
    OUTPUT_TAIL_LINES,
    SETUP,
    TEST,
    Check,
    Kind,
    last_error_line,
    offline_checks,
    outcome,
    select_checks,
    stage_status,
    strict_default,
    summarize,
)
from lab.config import Config
from lab.errors import LabError
from lab.report import CheckResult, Status
from lab.toolchains import TOOLCHAINS
from lab.ui import UI

REPO = Path(__file__).resolve().parents[2]

# What the apps' audit scripts print (apps/*/scripts/audit.*), captured from real runs.
GOVULN_UNVERIFIED = (
    'govulncheck: fetching vulnerabilities: Get "https://vuln.go.dev/index/db.json.gz": '
    "dial tcp: lookup vuln.go.dev: no such host\n"
    "UNVERIFIED: vulnerability database unreachable (vuln.go.dev: no such host)\n"
)
PIP_AUDIT_OK = "OK: 9 pinned packages checked, no known vulnerabilities\n"
NPM_AUDIT_FAIL = (
    "FAIL: npm audit found 1 high or critical vulnerabilities in 312 dependencies: vite (high)\n"
)
GOFMT_OUTPUT = "handlers.go\nstore.go\n"


# -- the table ----------------------------------------------------------------------------


def test_every_service_has_test_lint_and_audit_checks() -> None:
    assert set(CHECKS) == {"backend", "monitor", "frontend"}
    for service, checks in CHECKS.items():
        kinds = {check.kind for check in checks}
        assert {TEST, LINT, AUDIT} <= kinds, service


def test_checks_are_argv_tuples_of_strings_with_unique_names() -> None:
    for service, checks in CHECKS.items():
        names = [check.name for check in checks]
        assert len(names) == len(set(names)), f"{service} has duplicate check names"
        for check in checks:
            assert isinstance(check, Check)
            assert isinstance(check.argv, tuple) and check.argv, check.name
            assert all(isinstance(arg, str) and arg for arg in check.argv), check.name
            assert not any(" " in arg for arg in check.argv[:1]), "argv[0] is one program"
            assert isinstance(check.kind, Kind)
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in check.env.items())
            assert check.timeout > 0


def test_setup_checks_come_before_every_other_check() -> None:
    for service, checks in CHECKS.items():
        kinds = [check.kind for check in checks]
        first_other = next(i for i, kind in enumerate(kinds) if kind is not SETUP)
        assert SETUP not in kinds[first_other:], f"{service}: setup after a check"


def test_checks_cover_what_the_issue_asks_for() -> None:
    argv = {s: [" ".join(c.argv) for c in checks] for s, checks in CHECKS.items()}
    assert "gofmt -l ." in argv["backend"]
    assert any(a.startswith("go vet") for a in argv["backend"])
    assert any(a.startswith("go test") for a in argv["backend"])
    assert "bash scripts/audit.sh" in argv["backend"]
    assert any("pytest" in a and "--cov-fail-under=90" in a for a in argv["monitor"])
    for tool in ("pylint", "black", "isort", "scripts/audit.py"):
        assert any(tool in a for a in argv["monitor"]), tool
    assert argv["frontend"][0].startswith("npm ci")
    for script in ("npm run coverage", "npm run lint", "node scripts/audit.mjs"):
        assert script in argv["frontend"]


def test_only_gofmt_fails_on_output() -> None:
    flagged = [(s, c.name) for s, cs in CHECKS.items() for c in cs if c.fail_on_output]
    assert flagged == [("backend", "gofmt")]


def test_each_service_has_a_toolchain() -> None:
    assert set(TOOLCHAINS) == set(CHECKS)
    assert TOOLCHAINS["monitor"].needs_backend_binary
    assert "redis-server" in TOOLCHAINS["backend"].packages  # go test starts redis-server
    assert "redis-server" in TOOLCHAINS["monitor"].packages  # so does the monitor conftest


@pytest.mark.parametrize("service", sorted(TOOLCHAINS))
def test_toolchain_image_is_the_contracts_build_arg_default(service: str) -> None:
    toolchain = TOOLCHAINS[service]
    contracts = (REPO / "docs" / "CONTRACTS.md").read_text(encoding="utf-8")
    image = toolchains.toolchain_image(Config(), service)
    assert f"`{toolchain.build_arg}={image}`" in contracts


@pytest.mark.parametrize("service", ["backend", "frontend", "monitor", "smoke"])
def test_each_dockerfile_base_default_is_the_setting(service: str) -> None:
    # One pin: Config.base_images; the Dockerfiles' defaults (for a plain docker build)
    # must say the same, and lab passes the setting as the build arg.
    dockerfile = (REPO / "apps" / service / "Dockerfile").read_text()
    declared = dict(re.findall(r"^ARG ([A-Z]+_IMAGE)=(\S+)$", dockerfile, re.M))
    assert declared, f"apps/{service}/Dockerfile names no base image build arg"
    assert declared.items() <= Config().base_images.items(), declared


# -- outcomes -----------------------------------------------------------------------------

AUDIT_CHECK = Check("govulncheck", ("bash", "scripts/audit.sh"), AUDIT)
GOFMT = CHECKS["backend"][0]


@pytest.mark.parametrize(
    ("returncode", "output", "status", "detail"),
    [
        (0, PIP_AUDIT_OK, Status.PASSED, PIP_AUDIT_OK.strip()),
        (1, NPM_AUDIT_FAIL, Status.FAILED, NPM_AUDIT_FAIL.strip()),
        (3, GOVULN_UNVERIFIED, Status.UNVERIFIED, GOVULN_UNVERIFIED.splitlines()[-1]),
        (3, "", Status.UNVERIFIED, "UNVERIFIED: vulnerability database unreachable"),
        (
            2,
            "ERROR: pip-audit exited 2 without a report (boom)\n",
            Status.FAILED,
            "ERROR: pip-audit exited 2 without a report (boom)",
        ),
        (
            127,
            "bash: scripts/audit.sh: No such file or directory\n",
            Status.FAILED,
            "exit 127: bash: scripts/audit.sh: No such file or directory",
        ),
    ],
)
def test_audit_exit_codes_follow_the_contract(
    returncode: int, output: str, status: Status, detail: str
) -> None:
    result = outcome("backend", AUDIT_CHECK, returncode, output, 1.5)
    assert (result.status, result.detail) == (status, detail)
    assert result.name == "backend: govulncheck"
    assert result.duration == 1.5
    assert bool(result.output) == (bool(output) and status is not Status.PASSED)


def test_gofmt_fails_on_any_output_even_with_exit_zero() -> None:
    result = outcome("backend", GOFMT, 0, GOFMT_OUTPUT, 0.1)
    assert result.status is Status.FAILED
    assert result.detail == "gofmt lists 2 file(s): handlers.go, store.go"
    assert "store.go" in result.output


def test_gofmt_passes_on_no_output() -> None:
    assert outcome("backend", GOFMT, 0, "\n", 0.1).status is Status.PASSED


def test_a_timeout_fails_and_says_so() -> None:
    check = Check("go test", ("go", "test", "./..."), TEST, timeout=30)
    result = outcome("backend", check, 124, "=== RUN TestSlow\n", 30.2, timed_out=True)
    assert (result.status, result.detail) == (Status.FAILED, "timed out after 30s")


def test_a_failure_keeps_only_the_tail_of_the_output() -> None:
    check = Check("pytest", ("pytest",), TEST)
    output = "\n".join(f"line {n}" for n in range(200))
    result = outcome("monitor", check, 1, output, 3.0)
    kept = result.output.splitlines()
    assert len(kept) == OUTPUT_TAIL_LINES and kept[-1] == "line 199"
    assert result.detail == "exit 1: line 199"


PIP_23_REFUSAL = """\
ERROR: In --require-hashes mode, all requirements must have their versions pinned with ==. These do not:
    coverage[toml]>=7.10.6 from <package index>/coverage-7.17.5-cp311-cp311-manylinux1_x86_64.whl (from pytest-cov==7.1.0->-r requirements-dev.txt (line 624))
"""


def test_a_failed_check_says_why_in_its_row_not_only_its_exit_code() -> None:
    check = Check("pip install", ("pip", "install"), SETUP)
    result = outcome("monitor", check, 1, PIP_23_REFUSAL, 3.0)
    assert result.detail.startswith("exit 1: ERROR: In --require-hashes mode, all requirements")
    assert len(result.detail) <= len("exit 1: ") + DETAIL_LIMIT
    assert "coverage[toml]" in result.output


@pytest.mark.parametrize(
    ("output", "line"),
    [
        ("", ""),
        ("\n  \n", ""),
        ("building\nnpm error code ERESOLVE\nnpm error peer dep\n", "npm error code ERESOLVE"),
        ("ok 1\nok 2\nsomething odd\n", "something odd"),
        ("E: Unable to locate package redis-server\n", "E: Unable to locate package redis-server"),
        ("x" * 500, "x" * (DETAIL_LIMIT - 1) + "…"),
    ],
)
def test_last_error_line_picks_the_line_that_says_why(output: str, line: str) -> None:
    assert last_error_line(output) == line


# -- statuses and summary -----------------------------------------------------------------


def _results(*statuses: Status) -> list[CheckResult]:
    return [CheckResult(f"svc: c{n}", status) for n, status in enumerate(statuses)]


P, F, U, S = Status.PASSED, Status.FAILED, Status.UNVERIFIED, Status.SKIPPED


@pytest.mark.parametrize(
    ("statuses", "strict", "expected"),
    [
        ((P, P), False, P),
        ((P, P), True, P),
        ((P, U), False, U),
        ((P, U), True, F),
        ((P, U, F), False, F),
        ((F, S, S), False, F),
        ((P, S), False, P),
        ((), False, P),
    ],
)
def test_stage_status(statuses: Sequence[Status], strict: bool, expected: Status) -> None:
    assert stage_status(_results(*statuses), strict=strict) is expected


@pytest.mark.parametrize(
    ("environ", "strict"),
    [
        ({"CI": "true"}, True),
        ({"CI": "TRUE"}, True),
        ({"CI": "1"}, True),
        ({"CI": "false"}, False),
        ({}, False),
    ],
)
def test_strict_is_the_default_in_ci(environ: dict[str, str], strict: bool) -> None:
    assert strict_default(environ) is strict


def test_summary_names_what_failed_and_what_is_unverified() -> None:
    by_service = {
        "backend": [CheckResult("backend: go vet", P), CheckResult("backend: go test", P)],
        "monitor": [CheckResult("monitor: pytest", P)],
        "frontend": [
            CheckResult("frontend: vitest", P),
            CheckResult("frontend: npm audit", U),
        ],
    }
    assert (
        summarize(by_service, strict=False)
        == "backend ✓ monitor ✓ frontend ? (npm audit unverified)"
    )
    assert summarize(by_service, strict=True).endswith(
        " — strict: unverified audits fail the stage"
    )
    by_service["monitor"] = [CheckResult("monitor: pytest", F), CheckResult("monitor: black", F)]
    assert summarize(by_service, strict=False).startswith(
        "backend ✓ monitor ✗ (pytest, black failed) frontend ?"
    )


def test_select_checks_keeps_table_order_and_refuses_unknown_names() -> None:
    selected = select_checks(["frontend", "backend"], {"npm audit", "gofmt", "go test"})
    assert list(selected) == ["frontend", "backend"]
    assert [c.name for c in selected["backend"]] == ["gofmt", "go test"]
    assert [c.name for c in selected["frontend"]] == ["npm audit"]
    assert select_checks(["monitor"], None)["monitor"] == CHECKS["monitor"]
    with pytest.raises(LabError, match="unknown service"):
        select_checks(["database"], None)
    with pytest.raises(LabError, match="unknown check"):
        select_checks(["backend"], {"pylint"})


# -- docker runner helpers (pure) ---------------------------------------------------------


def test_source_archive_leaves_build_outputs_out_and_is_owned_by_root(tmp_path: Path) -> None:
    for path in (
        "main.go",
        "src/app.jsx",
        "src/coverage/keep.js",  # only a top-level coverage/ is an output
        "node_modules/react/index.js",
        ".venv/bin/python",
        "dist/index.html",
        "coverage/index.html",
        "monitor/__pycache__/x.pyc",
    ):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x")
    data = toolchains.source_archive(tmp_path)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = archive.getmembers()
    files = sorted(m.name for m in members if m.isfile())
    assert files == ["src/main.go", "src/src/app.jsx", "src/src/coverage/keep.js"]
    assert {(m.uid, m.gid, m.uname) for m in members} == {(0, 0, "root")}


def test_file_archive_places_one_file_at_an_absolute_path(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    with tarfile.open(fileobj=io.BytesIO(toolchains.file_archive(bundle, "/etc/ssl/ca.crt"))) as t:
        (member,) = t.getmembers()
        assert member.name == "etc/ssl/ca.crt"
        extracted = t.extractfile(member)
        assert extracted is not None and extracted.read() == bundle.read_bytes()


def test_derived_toolchain_recipe_installs_the_debian_packages() -> None:
    recipe = toolchains.derived_dockerfile(("redis-server",))
    assert recipe.startswith("ARG BASE\nFROM ${BASE}\n")
    assert "apt-get install -y --no-install-recommends redis-server" in recipe


def test_host_ca_bundle_prefers_ssl_cert_file(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("x")
    assert toolchains.host_ca_bundle({"SSL_CERT_FILE": str(bundle)}) == bundle


# -- the ordered runner, on real processes ------------------------------------------------


def _run(checks: Sequence[Check], tmp_path: Path) -> list[CheckResult]:
    (tmp_path / "svc").mkdir(exist_ok=True)
    runner = quality.HostRunner(UI(stream=io.StringIO()), tmp_path, threading.Event())
    return runner.run_service("svc", checks)


def test_a_failed_setup_skips_the_rest_of_the_service_with_the_reason(tmp_path: Path) -> None:
    results = _run(
        [
            Check(
                "install", ("sh", "-c", "echo resolving; echo 'E: no network' >&2; exit 2"), SETUP
            ),
            Check("tests", ("true",), TEST),
            Check("audit", ("true",), AUDIT),
        ],
        tmp_path,
    )
    assert [(r.name, r.status) for r in results] == [
        ("svc: install", F),
        ("svc: tests", S),
        ("svc: audit", S),
    ]
    assert results[0].detail == "exit 2: E: no network"
    assert results[0].output == "resolving\nE: no network"
    assert results[1].detail == "setup step 'install' failed"


def test_a_failed_check_does_not_stop_the_next_ones(tmp_path: Path) -> None:
    results = _run(
        [
            Check("lint", ("false",), LINT),
            Check("audit", ("sh", "-c", "echo 'UNVERIFIED: offline'; exit 3"), AUDIT),
            Check("tests", ("sh", "-c", "echo ok"), TEST),
        ],
        tmp_path,
    )
    assert [r.status for r in results] == [F, U, P]
    assert results[1].detail == "UNVERIFIED: offline"
    assert all(r.duration > 0 for r in results)


def test_a_missing_tool_fails_the_check_with_a_hint(tmp_path: Path) -> None:
    (result,) = _run([Check("vet", ("no-such-tool-for-lab",), LINT)], tmp_path)
    assert result.status is F
    assert "no-such-tool-for-lab is not installed" in result.detail
    assert "hint:" in result.output


def test_a_check_past_its_timeout_fails(tmp_path: Path) -> None:
    (result,) = _run([Check("slow", ("sleep", "5"), TEST, timeout=0.3)], tmp_path)
    assert (result.status, result.detail) == (F, "timed out after 0.3s")
    assert result.duration < 5


def test_checks_run_in_the_service_directory_with_their_env(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "marker").write_text("here")
    check = Check("env", ("sh", "-c", 'cat marker; test "$FOO" = bar'), TEST, env={"FOO": "bar"})
    (result,) = _run([check], tmp_path)
    assert result.status is P


def test_unknown_runner_is_refused() -> None:
    from lab.config import Config

    with pytest.raises(LabError, match="unknown runner"):
        quality.run_quality(UI(stream=io.StringIO()), Config(), runner="podman")


def test_offline_every_check_runs_from_local_caches_only() -> None:
    selected = offline_checks(select_checks(ALL, None))
    for service, checks in selected.items():
        assert [c.name for c in checks] == [c.name for c in CHECKS[service]]
        for check in checks:
            assert dict(check.env).items() >= OFFLINE_ENV.items(), check
    pip = next(c for c in selected["monitor"] if c.name == "pip install")
    assert pip.env["PIP_ROOT_USER_ACTION"] == "ignore"  # the check's own settings stay
