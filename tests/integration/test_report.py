"""The run report files: JSON, JUnit (parsed back), and the HTML page opened in a real
headless Chromium, whose screenshot is kept under test-results/."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from lab import proc, report
from lab.report import CheckResult, StageResult, Status
from tests.conftest import REPO

ARTIFACTS = REPO / "test-results"


def _report() -> report.RunReport:
    now = time.time()
    return report.RunReport(
        "20261126T040000Z-abcdef0",
        "abcdef0" + "1" * 33,
        "main",
        False,
        now,
        (
            StageResult(
                "quality",
                Status.UNVERIFIED,
                now,
                41.2,
                "backend ✓ monitor ✓ frontend ?",
                (
                    CheckResult("backend go test", Status.PASSED, 12.0),
                    CheckResult(
                        "frontend npm audit",
                        Status.UNVERIFIED,
                        3.0,
                        "vulnerability database unreachable",
                    ),
                ),
            ),
            StageResult("build", Status.PASSED, now, 95.0, "4 images pushed"),
            StageResult(
                "scan",
                Status.FAILED,
                now,
                20.0,
                "1 failed",
                (
                    CheckResult(
                        "localhost:5001/lab/backend:x",
                        Status.FAILED,
                        5.0,
                        "1 fixable HIGH/CRITICAL: CVE-2019-1 <script>",
                    ),
                ),
                {
                    "findings": [
                        {
                            "image": "backend",
                            "id": "CVE-2019-1",
                            "severity": "CRITICAL",
                            "package": "openssl",
                            "installed": "1.1",
                            "fixed": "1.2",
                            "title": "<script>alert(1)</script>",
                        }
                    ]
                },
            ),
            StageResult("deploy-dev", Status.SKIPPED, now, 0.0, "not run: scan failed"),
        ),
    )


def test_report_files_are_written_and_consistent(tmp_path: Path) -> None:
    paths = report.write(_report(), tmp_path / "run")
    data = json.loads(paths["json"].read_text())
    assert data["status"] == "failed"
    assert [s["name"] for s in data["stages"]] == ["quality", "build", "scan", "deploy-dev"]
    suites = ET.parse(paths["junit"]).getroot()
    by_name = {s.get("name"): s for s in suites}
    assert by_name["scan"].get("failures") == "1"
    assert (
        by_name["quality"].find("testcase[@name='frontend npm audit']/failure").get("type")
        == "unverified"
    )
    assert by_name["deploy-dev"].find("testcase/skipped") is not None
    # A lenient run went on past UNVERIFIED: junit says so as a skip, not a failure.
    lenient = ET.fromstring(report.to_junit(dataclasses.replace(_report(), strict=False)))
    quality = next(s for s in lenient if s.get("name") == "quality")
    audit = quality.find("testcase[@name='frontend npm audit']")
    assert audit.find("failure") is None
    assert audit.find("skipped").get("message").startswith("UNVERIFIED: ")
    assert (quality.get("failures"), quality.get("skipped")) == ("0", "1")
    page = paths["html"].read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


def test_the_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium (.ci/run does)")
    paths = report.write(_report(), tmp_path / "run")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "pipeline-report.png"
    shot.unlink(missing_ok=True)
    profile = tmp_path / "profile"
    proc.run(
        (
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1200,900",
            f"--screenshot={shot}",
            paths["html"].as_uri(),
        ),
        timeout=120,
    )
    assert shot.stat().st_size > 10_000  # a real rendering, not an empty canvas
    dom = proc.run(
        (
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--dump-dom",
            paths["html"].as_uri(),
        ),
        timeout=120,
    ).stdout
    assert "Pipeline run 20261126T040000Z-abcdef0" in dom
    assert dom.count('class="bar"') == 4
