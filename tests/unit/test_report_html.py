"""report.html shows why a check failed: its row's detail and the tail of its output."""

from __future__ import annotations

from lab.report import CheckResult, RunReport, StageResult, Status, to_html


def report(*checks: CheckResult) -> RunReport:
    stage = StageResult("quality", Status.FAILED, 0.0, 1.0, "monitor ✗", tuple(checks))
    return RunReport("r1", "a" * 40, "main", False, 0.0, (stage,))


def test_a_failed_check_shows_its_detail_and_output() -> None:
    failed = CheckResult(
        "monitor: pip install",
        Status.FAILED,
        2.0,
        "exit 1: ERROR: In --require-hashes mode, all requirements must be pinned",
        "ERROR: In --require-hashes mode ...\n    coverage[toml]>=7.10.6 <from pytest-cov>",
    )
    page = to_html(report(failed))
    assert "exit 1: ERROR: In --require-hashes mode" in page
    assert "coverage[toml]&gt;=7.10.6 &lt;from pytest-cov&gt;" in page  # escaped, present


def test_a_passed_check_shows_no_output_block() -> None:
    passed = CheckResult("backend: gofmt", Status.PASSED, 1.0, "", "noise")
    assert "<details>" not in to_html(report(passed))
