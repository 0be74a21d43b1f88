"""Trivy: run it on each image, decide from its JSON report (never from its exit code).

The policy: an image fails when it has a HIGH or CRITICAL vulnerability that has a fix
(`--ignore-unfixed`). When Trivy cannot reach its vulnerability database, the scan is
UNVERIFIED — reported distinctly, never a silent pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests.exceptions

from lab import engine, proc
from lab.config import Config
from lab.errors import LabError
from lab.report import CheckResult, Status

BLOCKING_SEVERITIES = frozenset({"HIGH", "CRITICAL"})
CACHE_VOLUME = "lab-trivy-cache"

# What Trivy prints when its database cannot be fetched (Trivy's pkg/db and pkg/commands).
_DB_UNREACHABLE = re.compile(
    r"(failed to download vulnerability DB|DB error|download error|OCI repository error|"
    r"failed to init(ialize)? (the )?(vulnerability )?DB|no such host|i/o timeout|"
    r"connection refused|the first run cannot skip downloading DB)",
    re.IGNORECASE,
)


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
    """A Trivy run that produced no report: database unreachable, or a real error."""
    tail = "\n".join(output.strip().splitlines()[-15:])
    if _DB_UNREACHABLE.search(output):
        return CheckResult(
            image, Status.UNVERIFIED, detail="vulnerability database unreachable", output=tail
        )
    return CheckResult(image, Status.FAILED, detail="Trivy failed without a report", output=tail)


def trivy_command(image: str, *, offline: bool) -> list[str]:
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
        "--insecure",
    ]
    if offline:
        command += ["--skip-db-update", "--offline-scan"]
    return [*command, image]


def scan_images(
    config: Config, images: Iterable[str], *, offline: bool = False
) -> list[tuple[CheckResult, list[Finding]]]:
    """Scan each image with Trivy in a container; one verdict and the findings per image."""
    client = engine.client()
    _ensure_cache_volume(client, config)
    scanner = scanner_image(client, config)
    if isinstance(scanner, CheckResult):
        return [(CheckResult(image, scanner.status, detail=scanner.detail), []) for image in images]
    results: list[tuple[CheckResult, list[Finding]]] = []
    for image in images:
        if proc.dry_run_enabled():
            proc.plan(f"docker run {scanner} {' '.join(trivy_command(image, offline=offline))}")
            results.append((CheckResult(image, Status.SKIPPED, detail="dry run"), []))
            continue
        results.append(
            _scan_one(
                client,
                scanner,
                image,
                offline=offline,
                timeout=config.command_timeout * 5,
                label=config.cluster_name,
            )
        )
    return results


def _ensure_cache_volume(client: docker.DockerClient, config: Config) -> None:
    """Trivy's database cache, labelled so `lab.down` removes it with the rest."""
    try:
        client.volumes.get(CACHE_VOLUME)
    except docker.errors.NotFound:
        if proc.dry_run_enabled():
            proc.plan(f"docker volume create {CACHE_VOLUME}")
            return
        client.volumes.create(CACHE_VOLUME, labels={engine.LAB_LABEL: config.cluster_name})


def scanner_image(client: docker.DockerClient, config: Config) -> str | CheckResult:
    """The Trivy image to run, by digest: pinned in config, or recorded at first pull."""
    reference = config.trivy_image
    try:
        image = client.images.get(reference)
    except docker.errors.ImageNotFound:
        try:
            image = client.images.pull(reference)
        except (docker.errors.APIError, requests.exceptions.RequestException) as error:
            return CheckResult(
                "scanner",
                Status.UNVERIFIED,
                detail=f"scanner image {reference} unavailable (cannot pull: {str(error)[:120]})",
            )
    digests = image.attrs.get("RepoDigests") or []
    return str(digests[0]) if digests else str(image.id)


def _scan_one(
    client: docker.DockerClient,
    scanner: str,
    image: str,
    *,
    offline: bool,
    timeout: float,
    label: str,
) -> tuple[CheckResult, list[Finding]]:
    container = client.containers.run(
        scanner,
        trivy_command(image, offline=offline),
        detach=True,
        network_mode="host",  # reaches the lab registry on localhost
        volumes={CACHE_VOLUME: {"bind": "/cache", "mode": "rw"}},
        labels={engine.LAB_LABEL: label},
    )
    try:
        exit_status = container.wait(timeout=timeout)
        stdout = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        stderr = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
    finally:
        container.remove(force=True)
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        return classify_failure(image, stderr + stdout), []
    del exit_status  # the verdict comes from the report, not the exit code
    found = findings(report, image)
    return verdict(image, found), found
