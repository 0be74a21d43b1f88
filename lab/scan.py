"""Trivy: run it on each image, decide from its JSON report (never from its exit code).

The policy: an image fails when it has a HIGH or CRITICAL vulnerability that has a fix
(`--ignore-unfixed`). When Trivy cannot reach its vulnerability database, the scan is
UNVERIFIED — reported distinctly, never a silent pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import requests.exceptions

from lab import engine
from lab.config import Config
from lab.errors import LabError
from lab.report import CheckResult, Status

BLOCKING_SEVERITIES = frozenset({"HIGH", "CRITICAL"})
CACHE_VOLUME = "lab-trivy-cache"

# The database is downloaded once per stage, by a run of its own with a generous
# deadline (a first download on a slow line takes minutes; Trivy's own --timeout would
# otherwise cut it short inside every image's scan). Only that run's failure can make
# a scan UNVERIFIED; a scan that fails for any other reason (a missing image, a
# registry that is down, Trivy's cache) is FAILED, because nothing was checked.
DB_DOWNLOAD_TIMEOUT = 1800.0  # seconds
SCAN_TIMEOUT = 600.0  # seconds, per image, once the database is there

# Registries Trivy reaches over plain HTTP without being told (go-containerregistry
# treats loopback names as insecure): `--insecure` is never needed for them.
_LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True)
class Finding:
    image: str
    id: str
    severity: str
    package: str
    installed: str
    fixed: str
    title: str

    @property
    def blocking(self) -> bool:
        return self.severity in BLOCKING_SEVERITIES and bool(self.fixed)


def findings(report: dict[str, Any], image: str) -> list[Finding]:
    """Every vulnerability in a Trivy JSON report (schema version 2)."""
    if report.get("SchemaVersion") != 2:
        raise LabError(
            f"unexpected Trivy report schema {report.get('SchemaVersion')!r} for {image}",
            hint="pin a Trivy version that writes SchemaVersion 2 (lab/config.py trivy_image)",
        )
    found = []
    for result in report.get("Results") or []:
        for vuln in result.get("Vulnerabilities") or []:
            found.append(
                Finding(
                    image=image,
                    id=str(vuln.get("VulnerabilityID", "?")),
                    severity=str(vuln.get("Severity", "UNKNOWN")).upper(),
                    package=str(vuln.get("PkgName", "?")),
                    installed=str(vuln.get("InstalledVersion", "")),
                    fixed=str(vuln.get("FixedVersion") or ""),
                    title=str(vuln.get("Title") or ""),
                )
            )
    return found


def verdict(image: str, found: Sequence[Finding]) -> CheckResult:
    blocking = [f for f in found if f.blocking]
    if blocking:
        ids = ", ".join(
            f"{f.id} ({f.severity} in {f.package}, fixed in {f.fixed})" for f in blocking[:5]
        )
        more = f" and {len(blocking) - 5} more" if len(blocking) > 5 else ""
        return CheckResult(
            image, Status.FAILED, detail=f"{len(blocking)} fixable HIGH/CRITICAL: {ids}{more}"
        )
    ignored = len(found)
    note = f"{ignored} finding(s) below the gate or without a fix" if ignored else "no findings"
    return CheckResult(image, Status.PASSED, detail=note)


def classify_failure(image: str, output: str) -> CheckResult:
    """A scan that produced no report: FAILED, with Trivy's last words as evidence."""
    tail = "\n".join(output.strip().splitlines()[-15:])
    last = (output.strip().splitlines() or ["no output"])[-1][:200]
    return CheckResult(
        image, Status.FAILED, detail=f"Trivy failed without a report: {last}", output=tail
    )


def classify_download(returncode: int, output: str) -> CheckResult | None:
    """The database download's outcome: None when it is there, else UNVERIFIED."""
    if returncode == 0:
        return None
    tail = "\n".join(output.strip().splitlines()[-15:])
    last = (output.strip().splitlines() or ["no output"])[-1][:200]
    return CheckResult(
        "vulnerability database",
        Status.UNVERIFIED,
        detail=f"vulnerability database unreachable ({last})",
        output=tail,
    )


def needs_insecure(image: str) -> bool:
    """Whether Trivy must be told the image's registry is plain HTTP (not loopback)."""
    host = image.split("/", 1)[0] if "/" in image else ""
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    return bool(host) and ("." in host or ":" in host) and name not in _LOOPBACK


def download_command(*, offline: bool) -> list[str]:
    """Fetch (or, offline, check) Trivy's vulnerability database into the cache."""
    command = ["image", "--download-db-only", "--cache-dir", "/cache", "--quiet",
               "--timeout", f"{DB_DOWNLOAD_TIMEOUT:g}s"]  # fmt: skip
    return [*command, "--skip-db-update"] if offline else command


def trivy_command(image: str, *, offline: bool, insecure: bool = False) -> list[str]:
    """One image's scan, with the database the download step left in the cache."""
    command = [
        "image",
        "--format",
        "json",
        "--quiet",
        "--scanners",
        "vuln",
        "--severity",
        "UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL",
        "--ignore-unfixed",
        "--cache-dir",
        "/cache",
        "--image-src",
        "remote",
        "--skip-db-update",
        "--timeout",
        f"{SCAN_TIMEOUT:g}s",
    ]
    if insecure:  # a non-loopback plain-HTTP registry (`lab.up --registry host:port`)
        command.append("--insecure")
    if offline:
        command.append("--offline-scan")
    return [*command, image]


def scan_images(
    config: Config, images: Iterable[str], *, offline: bool = False
) -> list[tuple[CheckResult, list[Finding]]]:
    """Scan each image with Trivy in a container; one verdict and the findings per image.

    The database is fetched first, once; when that fails every image is UNVERIFIED
    (said so, never passed), and no image is scanned against a database that is absent.
    """
    images = list(images)
    client = engine.client()
    ensure_cache_volume(client, config)
    scanner = scanner_image(client, config)
    if isinstance(scanner, CheckResult):
        return [(CheckResult(image, scanner.status, detail=scanner.detail), []) for image in images]
    code, out, err = _run_trivy(
        client, scanner, download_command(offline=offline), DB_DOWNLOAD_TIMEOUT + 60, config
    )
    missing_db = classify_download(code, err + out)
    if missing_db is not None:
        return [
            (CheckResult(image, missing_db.status, 0.0, missing_db.detail, missing_db.output), [])
            for image in images
        ]
    results = [
        _scan_one(client, scanner, image, offline=offline, config=config) for image in images
    ]
    if not offline:
        return results
    age = database_note(_database_metadata(client, scanner), datetime.now(UTC))
    return [(replace(check, detail=f"{check.detail}; {age}"), found) for check, found in results]


def database_note(metadata: str, now: datetime) -> str:
    """How old the cached database an offline scan used is, from its metadata.json (pure)."""
    try:
        stamp = str(json.loads(metadata)["UpdatedAt"])
        updated = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError):
        return "offline, with a Trivy database of unknown age"
    days = (now - updated).days
    return f"offline, with the Trivy database of {updated:%Y-%m-%d} ({days} day(s) old)"


def _database_metadata(client: Any, scanner: str) -> str:
    try:
        output = client.containers.run(
            scanner,
            ["/cache/db/metadata.json"],
            entrypoint=["cat"],
            volumes={CACHE_VOLUME: {"bind": "/cache", "mode": "ro"}},
            remove=True,
        )
    except engine.ERRORS:
        return ""
    return bytes(output).decode("utf-8", "replace")


def ensure_cache_volume(client: Any, config: Config) -> None:
    """Trivy's database cache, labelled so `lab.down` removes it with the rest."""
    engine.ensure_volume(client, CACHE_VOLUME, {engine.LAB_LABEL: config.cluster_name})


def scanner_image(client: Any, config: Config) -> str | CheckResult:
    """The Trivy image to run, by digest: pinned in config, or recorded at first pull.

    A scanner that cannot be had is FAILED: no scan happened, and nothing may pass as
    if one had.
    """
    reference = config.trivy_image
    image = engine.find_image(client, reference)
    if image is None:
        try:
            image = engine.pull(client, reference)
        except LabError as error:
            return CheckResult(
                "scanner",
                Status.FAILED,
                detail=f"scanner image unavailable: {error.message[:200]} ({error.hint})",
            )
    digests = image.attrs.get("RepoDigests") or []
    return str(digests[0]) if digests else str(image.id)


def _run_trivy(
    client: Any,
    scanner: str,
    command: list[str],
    timeout: float,
    config: Config,
) -> tuple[int, str, str]:
    """Run Trivy in a container; (exit code, stdout, stderr). A deadline is exit 124."""
    try:
        container = client.containers.run(
            scanner,
            command,
            detach=True,
            network_mode="host",  # reaches the lab registry on localhost
            volumes={CACHE_VOLUME: {"bind": "/cache", "mode": "rw"}},
            labels={engine.LAB_LABEL: config.cluster_name},
        )
    except engine.ERRORS as error:
        return 125, "", f"cannot start Trivy: {error}"
    try:
        try:
            status = container.wait(timeout=timeout)
            code = int(status.get("StatusCode", 1))
        except requests.exceptions.RequestException:
            container.kill()
            code = 124
        out = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        err = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
    finally:
        container.remove(force=True)
    if code == 124:
        err += f"\nTrivy did not finish within {timeout:g}s"
    return code, out, err


def _scan_one(
    client: Any, scanner: str, image: str, *, offline: bool, config: Config
) -> tuple[CheckResult, list[Finding]]:
    command = trivy_command(image, offline=offline, insecure=needs_insecure(image))
    code, stdout, stderr = _run_trivy(client, scanner, command, SCAN_TIMEOUT + 60, config)
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        return classify_failure(image, stderr + stdout or f"exit {code}"), []
    found = findings(report, image)
    return verdict(image, found), found
