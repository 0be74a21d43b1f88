#!/usr/bin/env python3
"""pip-audit with the project's exit codes (docs/CONTRACTS.md).

  0  OK: ...          every pinned requirement was checked, no known vulnerability
  1  FAIL: ...        at least one known vulnerability
  3  UNVERIFIED: vulnerability database unreachable (...)
                      the database could not be consulted for some or all packages
  2  ERROR: ...       pip-audit itself failed for another reason

pip-audit exits 0 when the PyPI JSON API answers "not found" for every package (a
mirror without that API does); it reports them as skipped. Skips count as
unverified here, never as clean.

Usage: audit.py [REQUIREMENTS] [-- extra pip-audit arguments]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

UNREACHABLE_MARKERS = (
    "ConnectionError",
    "ProxyError",
    "ConnectTimeout",
    "ReadTimeout",
    "Max retries exceeded",
    "NameResolutionError",
    "ServiceError",
    "Temporary failure in name resolution",
)
TIMEOUT_SECONDS = 600


def pip_audit_argv(requirements: str, report: Path, extra: list[str]) -> list[str]:
    """The pip-audit command line: the lock is complete and hashed, so nothing is resolved."""
    executable = Path(sys.executable).with_name("pip-audit")
    return [
        str(executable),
        "--requirement",
        requirements,
        "--require-hashes",
        "--disable-pip",
        "--progress-spinner",
        "off",
        "--format",
        "json",
        "--output",
        str(report),
        *extra,
    ]


def verdict(returncode: int, report_text: str | None, stderr: str) -> tuple[int, str]:
    """Decide exit code and message from pip-audit's outcome."""
    if report_text is None:
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        if any(marker in stderr for marker in UNREACHABLE_MARKERS):
            return 3, f"UNVERIFIED: vulnerability database unreachable ({last[:300]})"
        return 2, f"ERROR: pip-audit exited {returncode} without a report ({last[:300]})"
    dependencies = json.loads(report_text).get("dependencies", [])
    vulnerable = [dep for dep in dependencies if dep.get("vulns")]
    skipped = [dep for dep in dependencies if dep.get("skip_reason")]
    if vulnerable:
        found = ", ".join(
            f"{dep['name']} {dep.get('version', '?')}: "
            + " ".join(vuln.get("id", "?") for vuln in dep["vulns"])
            for dep in vulnerable
        )
        note = f" ({len(skipped)} packages could not be checked)" if skipped else ""
        return 1, f"FAIL: known vulnerabilities: {found}{note}"
    if skipped:
        return 3, (
            "UNVERIFIED: vulnerability database unreachable "
            f"({len(skipped)} of {len(dependencies)} packages not checked; "
            f"first: {skipped[0]['skip_reason']})"
        )
    if returncode != 0:
        return 2, f"ERROR: pip-audit exited {returncode} with a clean report"
    return 0, f"OK: {len(dependencies)} pinned packages checked, no known vulnerabilities"


def missing_tool(executable: Path) -> str:
    """One line saying pip-audit is missing and how to get it, or "" when it is there."""
    if executable.is_file() and executable.stat().st_mode & 0o111:
        return ""
    return (
        f"ERROR: pip-audit is not installed ({executable} is missing): "
        "run `make venv` in apps/monitor, or run this script with the venv's python"
    )


def main(argv: list[str]) -> int:
    """Run pip-audit and print one verdict line."""
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    requirements = argv[0] if argv else "requirements.txt"
    missing = missing_tool(Path(sys.executable).with_name("pip-audit"))
    if missing:
        print(missing)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = pip_audit_argv(requirements, report, extra)
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
            )
        except subprocess.TimeoutExpired:
            print(
                f"UNVERIFIED: vulnerability database unreachable (no answer in {TIMEOUT_SECONDS}s)"
            )
            return 3
        report_text = report.read_text() if report.is_file() else None
    code, message = verdict(result.returncode, report_text, result.stderr)
    if report_text is None:
        # pip-audit failed before reporting: its own words are the evidence.
        sys.stderr.write(result.stderr[-4000:])
    print(message)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
