"""The lab monitor: a small Flask dashboard under /status."""

from __future__ import annotations

import os
from collections.abc import Mapping

from flask import Flask, Response

from monitor import csrf, views
from monitor.backend import BackendClient
from monitor.config import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "create_app"]

# Pages carry admin forms: no framing (clickjacking), no inline or foreign code.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def _secure_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def create_app(env: Mapping[str, str] | None = None) -> Flask:
    """Build the application from ``env`` (the process environment by default)."""
    settings = load_settings(os.environ if env is None else env)
    app = Flask(__name__, static_url_path="/status/static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="monitor_session",
        SESSION_COOKIE_PATH="/status",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.extensions["monitor.settings"] = settings
    app.extensions["monitor.backend"] = BackendClient(
        settings.backend_urls, settings.backend_timeout
    )
    app.jinja_env.globals["csrf_token"] = csrf.csrf_token
    app.before_request(csrf.protect)
    app.after_request(_secure_headers)
    app.register_blueprint(views.blueprint)
    return app
