"""Where everything answers (credentials only through lab.creds)."""

from __future__ import annotations

from lab.context import Lab
from lab.status import urls


def show_urls(lab: Lab) -> str:
    for name, url in urls(lab.config, byo=lab.byo).items():
        lab.ctx.ui.info(f"  {name:<10} {url}")
    lab.ctx.ui.info("  credentials: invoke lab.creds")
    lab.state.up = True
    lab.save()
    return lab.changes.note("lab is up")
