"""lab.scan's policy on real Trivy reports (see tests/data/trivy/README.md)."""

from __future__ import annotations

import json

import pytest

from lab import scan
from lab.errors import LabError
from lab.report import Status
from tests.conftest import REPO

DATA = REPO / "tests" / "data" / "trivy"


def _report(name: str) -> dict:
    return json.loads((DATA / name).read_text())


@pytest.mark.parametrize(
    ("name", "status", "blocking"),
    [
        ("debian-buster.json", Status.FAILED, 1),
        ("distroless-base.json", Status.PASSED, 0),
        ("ubuntu-vm-unfixed.json", Status.PASSED, 0),
    ],
)
def test_policy_on_real_reports(name: str, status: Status, blocking: int) -> None:
    found = scan.findings(_report(name), "img")
    assert found, "each captured report has findings"
    assert sum(f.blocking for f in found) == blocking
    assert scan.verdict("img", found).status is status


def test_a_failing_verdict_names_the_vulnerability_package_and_fix() -> None:
    found = scan.findings(_report("debian-buster.json"), "localhost:5001/lab/backend:abc")
    result = scan.verdict("localhost:5001/lab/backend:abc", found)
    [critical] = [f for f in found if f.blocking]
    assert critical.id in result.detail and critical.package in result.detail
    assert critical.fixed in result.detail


def test_unfixed_high_is_not_blocking_but_counted() -> None:
    result = scan.verdict("img", scan.findings(_report("ubuntu-vm-unfixed.json"), "img"))
    assert "1 finding(s) below the gate or without a fix" in result.detail


def test_unknown_schema_is_refused() -> None:
    with pytest.raises(LabError):
        scan.findings({"SchemaVersion": 1}, "img")


@pytest.mark.parametrize(
    "output",
    [
        "2026-11-26T04:00:00Z\tFATAL\tFatal error\trun error: init error: DB error: failed to download vulnerability DB: OCI repository error: dial tcp: lookup mirror.gcr.io: no such host",
        "FATAL init error: DB error: --skip-db-update cannot be specified on the first run",
    ],
)
def test_unreachable_database_is_unverified(output: str) -> None:
    result = scan.classify_failure("img", output)
    assert result.status is Status.UNVERIFIED
    assert result.detail == "vulnerability database unreachable"


def test_other_trivy_errors_fail() -> None:
    result = scan.classify_failure("img", 'FATAL unable to find the specified image "x"')
    assert result.status is Status.FAILED


def test_trivy_command_ignores_unfixed_and_can_run_offline() -> None:
    online = scan.trivy_command("localhost:5001/lab/backend:abc", offline=False)
    assert "--ignore-unfixed" in online and online[-1] == "localhost:5001/lab/backend:abc"
    assert "--format" in online and "json" in online
    assert "--skip-db-update" not in online
    assert "--skip-db-update" in scan.trivy_command("x", offline=True)
