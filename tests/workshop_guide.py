"""The commands of docs/workshop.md, as a participant would type them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "workshop.md"
_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def sections() -> dict[str, str]:
    """Each `## ` section's title and text, in order."""
    parts = re.split(r"^## (.+)$", GUIDE.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def commands(section: str | None = None) -> list[list[str]]:
    """The `invoke …` lines of the guide's shell blocks (of one section), split as a
    shell would, without the leading `invoke`."""
    texts = [sections()[section]] if section else [GUIDE.read_text(encoding="utf-8")]
    return [
        shlex.split(line)[1:]
        for text in texts
        for block in _BLOCK.findall(text)
        for line in block.splitlines()
        if line.startswith("invoke ")
    ]


def command(section: str, task: str) -> list[str]:
    """The one command of `section` that runs `task`."""
    (found,) = [c for c in commands(section) if c[0] == task]
    return found
