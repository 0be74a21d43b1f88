"""lab.scan's policy on real Trivy reports (see tests/data/trivy/README.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

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


DB_DOWNLOAD_FAILED = "2026-11-26T04:00:00Z\tFATAL\tFatal error\trun error: init error: DB error: failed to download vulnerability DB: OCI repository error: dial tcp: lookup mirror.gcr.io: no such host"


def test_a_failed_database_download_is_unverified() -> None:
    result = scan.classify_download(1, DB_DOWNLOAD_FAILED)
    assert result is not None and result.status is Status.UNVERIFIED
    assert result.detail.startswith("vulnerability database unreachable (")
    assert scan.classify_download(0, "") is None


@pytest.mark.parametrize(
    "output",
    [
        # A scan's own failures are FAILED even when they sound like the network:
        'FATAL unable to find the specified image "x"',
        "FATAL image scan error: GET http://localhost:5001/v2/: dial tcp 127.0.0.1:5001: connect: connection refused",
        "FATAL run error: i/o timeout",
        "FATAL cache error: DB error: unable to open the cache",
        DB_DOWNLOAD_FAILED,  # a scan run never downloads (--skip-db-update)
    ],
)
def test_a_scan_without_a_report_fails_whatever_the_error(output: str) -> None:
    result = scan.classify_failure("img", output)
    assert result.status is Status.FAILED
    assert result.detail.startswith("Trivy failed without a report: ")


def test_the_database_download_has_its_own_generous_deadline() -> None:
    command = scan.download_command(offline=False)
    assert "--download-db-only" in command
    assert command[command.index("--timeout") + 1] == f"{scan.DB_DOWNLOAD_TIMEOUT:g}s"
    assert "--insecure" not in command  # TLS is always verified for the database
    assert "--skip-db-update" in scan.download_command(offline=True)


@pytest.mark.parametrize(
    ("image", "insecure"),
    [
        ("localhost:5001/lab/backend:abc", False),
        ("127.0.0.1:5001/lab/backend:abc", False),
        ("registry.internal:5000/lab/backend:abc", True),
        ("10.0.0.5:5000/lab/backend:abc", True),
        ("lab/backend:abc", False),  # docker.io
    ],
)
def test_insecure_is_only_for_non_loopback_registries(image: str, insecure: bool) -> None:
    assert scan.needs_insecure(image) is insecure
    assert ("--insecure" in scan.trivy_command(image, offline=False, insecure=scan.needs_insecure(image))) is insecure


def test_trivy_command_ignores_unfixed_and_can_run_offline() -> None:
    online = scan.trivy_command("localhost:5001/lab/backend:abc", offline=False)
    assert "--ignore-unfixed" in online and online[-1] == "localhost:5001/lab/backend:abc"
    assert "--format" in online and "json" in online
    assert "--skip-db-update" in online  # the download step fetched it
    assert "--insecure" not in online
    assert "--offline-scan" in scan.trivy_command("x", offline=True)


def test_an_offline_scan_says_how_old_its_database_is() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    metadata = '{"Version": 2, "UpdatedAt": "2026-11-28T06:13:41.1Z", "NextUpdate": "x"}'
    assert scan.database_note(metadata, now) == (
        "offline, with the Trivy database of 2026-11-28 (4 day(s) old)"
    )
    assert "unknown age" in scan.database_note("", now)
    assert "unknown age" in scan.database_note('{"Version": 2}', now)
