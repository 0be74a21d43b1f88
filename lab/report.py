"""The run report: report.json, junit.xml (for CI) and report.html, all pure renderers."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET


class Status(Enum):
    PASSED = "passed"
    FAILED = "failed"
    UNVERIFIED = "unverified"  # ran, but a vulnerability database could not be reached
    SKIPPED = "skipped"

    @property
    def mark(self) -> str:
        return {"passed": "✓", "failed": "✗", "unverified": "?", "skipped": "-"}[self.value]


def worst(statuses: Iterable[Status]) -> Status:
    """The one fold of statuses, for checks, stages, runs and steps: failed over
    unverified over passed; skipped when nothing else is there (pure)."""
    found = set(statuses)
    for status in (Status.FAILED, Status.UNVERIFIED, Status.PASSED):
        if status in found:
            return status
    return Status.SKIPPED


@dataclass(frozen=True)
class CheckResult:
    """One check inside a stage (a linter, a test suite, an image scan, a smoke check)."""

    name: str
    status: Status
    duration: float = 0.0
    detail: str = ""
    output: str = ""  # the tail of what it printed, for failures


@dataclass(frozen=True)
class StageResult:
    name: str
    status: Status
    started: float  # epoch seconds
    duration: float
    summary: str
    checks: tuple[CheckResult, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunReport:
    run_id: str
    sha: str
    branch: str
    dirty: bool
    started: float
    stages: tuple[StageResult, ...]
    strict: bool = True  # UNVERIFIED fails the run (lenient runs go on past it)

    @property
    def status(self) -> Status:
        found = worst(stage.status for stage in self.stages)
        return Status.PASSED if found is Status.SKIPPED else found

    @property
    def duration(self) -> float:
        return sum(stage.duration for stage in self.stages)


def to_json(report: RunReport) -> str:
    def encode(value: Any) -> Any:
        if isinstance(value, Enum):
            return value.value
        raise TypeError(type(value).__name__)

    document = asdict(report)
    document["status"] = report.status.value
    document["duration"] = round(report.duration, 3)
    return json.dumps(document, indent=2, default=encode) + "\n"


def to_junit(report: RunReport) -> str:
    """One testsuite per stage, one testcase per check (or the stage itself).

    UNVERIFIED is a failure in a strict run; in a lenient run, which went on past it, it
    is a skipped case whose message starts with UNVERIFIED: shown, never a pass."""
    suites = ET.Element("testsuites", name=f"lab pipeline {report.run_id}")
    failing = {Status.FAILED} | ({Status.UNVERIFIED} if report.strict else set())
    skipping = {Status.SKIPPED} | (set() if report.strict else {Status.UNVERIFIED})
    for stage in report.stages:
        cases = stage.checks or (
            CheckResult(stage.name, stage.status, stage.duration, stage.summary),
        )
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=stage.name,
            tests=str(len(cases)),
            failures=str(sum(c.status in failing for c in cases)),
            skipped=str(sum(c.status in skipping for c in cases)),
            time=f"{stage.duration:.3f}",
        )
        for check in cases:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"pipeline.{stage.name}",
                name=check.name,
                time=f"{check.duration:.3f}",
            )
            if check.status is Status.FAILED:
                failure = ET.SubElement(case, "failure", message=check.detail or "failed")
                failure.text = check.output
            elif check.status is Status.UNVERIFIED and report.strict:
                failure = ET.SubElement(
                    case, "failure", message=f"UNVERIFIED: {check.detail}", type="unverified"
                )
                failure.text = check.output
            elif check.status is Status.UNVERIFIED:
                ET.SubElement(case, "skipped", message=f"UNVERIFIED: {check.detail}")
            elif check.status is Status.SKIPPED:
                ET.SubElement(case, "skipped", message=check.detail or "skipped")
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )


_COLOURS = {"passed": "#2e7d32", "failed": "#c62828", "unverified": "#ef6c00", "skipped": "#9e9e9e"}


def to_html(report: RunReport) -> str:
    """A self-contained page: the stage timeline, scan findings and smoke checks."""
    e = html.escape
    total = max(report.duration, 0.001)
    bars = []
    offset = 0.0
    for stage in report.stages:
        width = max(stage.duration / total * 100, 0.5)
        bars.append(
            f'<div class="bar" style="margin-left:{offset:.2f}%;width:{width:.2f}%;'
            f'background:{_COLOURS[stage.status.value]}" title="{e(stage.summary)}">'
            f"<span>{e(stage.name)} {stage.duration:.1f}s</span></div>"
        )
        offset = min(offset + width, 99.5)
    stage_rows = "".join(
        f'<tr><td class="{s.status.value}">{s.status.mark} {e(s.status.value)}</td>'
        f"<td>{e(s.name)}</td><td>{s.duration:.1f}s</td><td>{e(s.summary)}</td></tr>"
        for s in report.stages
    )
    sections = []
    for stage in report.stages:
        if not stage.checks:
            continue
        rows = "".join(
            f'<tr><td class="{c.status.value}">{c.status.mark} {e(c.status.value)}</td>'
            f"<td>{e(c.name)}</td><td>{c.duration:.1f}s</td><td>{e(c.detail)}"
            + (
                f"<details><summary>output</summary><pre>{e(c.output)}</pre></details>"
                if c.output and c.status is not Status.PASSED
                else ""
            )
            + "</td></tr>"
            for c in stage.checks
        )
        sections.append(
            f"<h2>{e(stage.name)}</h2><table><tr><th>result</th><th>check</th><th>time</th>"
            f"<th>detail</th></tr>{rows}</table>"
        )
        findings = stage.data.get("findings")
        if findings:
            frows = "".join(
                f"<tr><td>{e(f['image'])}</td><td>{e(f['id'])}</td><td>{e(f['severity'])}</td>"
                f"<td>{e(f['package'])} {e(f['installed'])} → {e(f['fixed'] or '(no fix)')}</td>"
                f"<td>{e(f.get('title', ''))}</td></tr>"
                for f in findings
            )
            sections.append(
                "<h3>findings</h3><table><tr><th>image</th><th>id</th><th>severity</th>"
                f"<th>package</th><th>title</th></tr>{frows}</table>"
            )
    when = datetime.fromtimestamp(report.started, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    status = report.status.value
    dirty = " (dirty tree)" if report.dirty else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>lab pipeline {e(report.run_id)}: {e(status)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #212121; }}
h1 .status {{ color: {_COLOURS[status]}; }}
.timeline {{ border: 1px solid #ccc; padding: 4px; margin: 1rem 0; overflow: hidden; }}
.bar {{ height: 1.6rem; color: white; border-radius: 3px; margin-bottom: 3px;
        white-space: nowrap; overflow: visible; }}
.bar span {{ padding-left: 4px; line-height: 1.6rem; color: #111; mix-blend-mode: normal; }}
table {{ border-collapse: collapse; margin-bottom: 1rem; }}
td, th {{ border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }}
.passed {{ color: {_COLOURS["passed"]}; }} .failed {{ color: {_COLOURS["failed"]}; }}
.unverified {{ color: {_COLOURS["unverified"]}; }} .skipped {{ color: {_COLOURS["skipped"]}; }}
</style></head><body>
<h1>Pipeline run {e(report.run_id)}: <span class="status">{e(status)}</span></h1>
<p>commit <code>{e(report.sha)}</code> on <code>{e(report.branch)}</code>{dirty}
 · started {e(when)} · {report.duration:.1f}s</p>
<h2>timeline</h2><div class="timeline">{"".join(bars)}</div>
<table><tr><th>result</th><th>stage</th><th>time</th><th>summary</th></tr>{stage_rows}</table>
{"".join(sections)}
</body></html>
"""


def write(report: RunReport, directory: Path) -> dict[str, Path]:
    """Write the three files; returns their paths by kind."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": directory / "report.json",
        "junit": directory / "junit.xml",
        "html": directory / "report.html",
    }
    paths["json"].write_text(to_json(report), encoding="utf-8")
    paths["junit"].write_text(to_junit(report), encoding="utf-8")
    paths["html"].write_text(to_html(report), encoding="utf-8")
    return paths


def summary_rows(stages: Sequence[StageResult]) -> list[tuple[str, str, str, str]]:
    return [(s.name, s.status.value, f"{s.duration:.1f}s", s.summary) for s in stages]
