"""scripts/audit.py maps pip-audit outcomes to the contract's exit codes."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MONITOR_DIR, free_port

SCRIPT = MONITOR_DIR / "scripts" / "audit.py"
_spec = importlib.util.spec_from_file_location("audit", SCRIPT)
assert _spec and _spec.loader
audit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(audit)

CLEAN = {"dependencies": [{"name": "flask", "version": "3.1.3", "vulns": []}], "fixes": []}
VULNERABLE = {
    "dependencies": [
        {
            "name": "flask",
            "version": "0.5",
            "vulns": [{"id": "PYSEC-2019-179", "fix_versions": ["1.0"], "aliases": []}],
        },
        {"name": "click", "skip_reason": "Dependency not found on PyPI and could not be audited"},
    ],
    "fixes": [],
}
# Captured here: a mirror without PyPI's JSON API makes pip-audit skip everything, exit 0.
ALL_SKIPPED = {
    "dependencies": [
        {
            "name": "blinker",
            "skip_reason": "Dependency not found on PyPI and could not be audited: blinker (1.9.0)",
        }
    ],
    "fixes": [],
}
PROXY_TRACE = (
    "requests.exceptions.ProxyError: HTTPSConnectionPool(host='pypi.org', port=443): "
    "Max retries exceeded with url: /pypi/blinker/1.9.0/json"
)


@pytest.mark.parametrize(
    ("returncode", "report", "stderr", "code", "prefix"),
    [
        (0, CLEAN, "", 0, "OK: 1 pinned packages checked"),
        (1, VULNERABLE, "", 1, "FAIL: known vulnerabilities: flask 0.5: PYSEC-2019-179 (1 "),
        (0, ALL_SKIPPED, "", 3, "UNVERIFIED: vulnerability database unreachable (1 of 1"),
        (1, None, "Traceback ...\n" + PROXY_TRACE, 3, "UNVERIFIED: vulnerability database"),
        (2, None, "usage: pip-audit: bad flag", 2, "ERROR: pip-audit exited 2 without a report"),
        (2, CLEAN, "", 2, "ERROR: pip-audit exited 2 with a clean report"),
    ],
)
def test_verdict_follows_the_contract(returncode, report, stderr, code, prefix) -> None:
    text = None if report is None else json.dumps(report)
    got_code, message = audit.verdict(returncode, text, stderr)
    assert got_code == code
    assert message.startswith(prefix), message


def test_unreachable_database_exits_3_for_real(tmp_path: Path) -> None:
    # A proxy address where nothing listens: pip-audit cannot reach any database.
    dead = f"http://127.0.0.1:{free_port()}"
    # Both spellings: lower case wins where both are set.
    env = dict(os.environ, HTTPS_PROXY=dead, https_proxy=dead, NO_PROXY="", no_proxy="")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "requirements.txt", "--", "--cache-dir", str(tmp_path)],
        cwd=MONITOR_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.startswith("UNVERIFIED: vulnerability database unreachable (")
