"""Where everything answers (credentials only through lab.creds)."""

from __future__ import annotations

from lab import (
    proc,
)
from lab.context import Lab
from lab.status import urls


def show_urls(lab: Lab) -> str:
    for name, url in urls(lab.config, byo=lab.byo).items():
        lab.ctx.ui.info(f"  {name:<10} {url}")
    lab.ctx.ui.info("  credentials: invoke lab.creds")
    if not proc.dry_run_enabled():
        lab.state.up = True
        lab.state.save()
    return "lab is up"
