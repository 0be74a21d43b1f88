"""Routes of the monitor; everything lives under /status."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from monitor.backend import BackendClient, BackendError
from monitor.config import Settings

blueprint = Blueprint("monitor", __name__, url_prefix="/status")

MAX_FIELD = 256


def _settings() -> Settings:
    return current_app.extensions["monitor.settings"]


def _backend() -> BackendClient:
    return current_app.extensions["monitor.backend"]


def _summary() -> dict[str, Any]:
    settings = _settings()
    statuses = _backend().status()
    return {
        "monitor": {
            "version": settings.version,
            "variant": settings.variant,
            "commit": settings.commit,
        },
        "backend": {variant: status.as_summary() for variant, status in statuses.items()},
    }


def _field(name: str) -> str:
    return request.form.get(name, "")[:MAX_FIELD]


def _to_dashboard() -> Response:
    return redirect(url_for("monitor.dashboard"), code=303)


def _logged_out(message: str) -> Response:
    session.clear()
    flash(message, "error")
    return _to_dashboard()


@blueprint.get("/healthz")
def healthz() -> Response:
    """Liveness and readiness: the process serves requests. Never calls the backend."""
    return jsonify(status="ok")


@blueprint.get("/api/summary")
def summary() -> Response:
    """Machine-readable status of the monitor and both backend variants."""
    response = jsonify(_summary())
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("/")
def dashboard() -> str:
    """The human dashboard: status for everyone, user administration for admins."""
    data = _summary()
    users: list[dict[str, Any]] | None = None
    token = session.get("token")
    if token:
        try:
            users = _backend().list_users(token)
        except BackendError as exc:
            if exc.status == 401:
                session.clear()
                flash("Your session has expired; log in again.", "error")
            else:
                flash(f"Could not list users: {exc.message}", "error")
    return render_template(
        "dashboard.html",
        summary=data,
        username=session.get("username"),
        users=users,
    )


@blueprint.post("/login")
def login() -> Response:
    """Log in as an administrator; the token stays server-side in the signed cookie."""
    username, password = _field("username").strip(), _field("password")
    if not username or not password:
        flash("Username and password are required.", "error")
        return _to_dashboard()
    backend = _backend()
    try:
        token = backend.login(username, password)
        profile = backend.profile(token)
    except BackendError as exc:
        flash(f"Login failed: {exc.message}", "error")
        return _to_dashboard()
    if profile.get("role") != "admin":
        flash("Login failed: this account is not an administrator.", "error")
        return _to_dashboard()
    # A fresh session (and CSRF token) at the privilege change: no fixation.
    session.clear()
    session["token"] = token
    session["username"] = str(profile.get("username", username))
    flash(f"Logged in as {session['username']}.", "info")
    return _to_dashboard()


@blueprint.post("/logout")
def logout() -> Response:
    """Forget the token."""
    session.clear()
    flash("Logged out.", "info")
    return _to_dashboard()


@blueprint.post("/users/<name>/delete")
def delete_user(name: str) -> Response:
    """Delete a user through the backend."""
    token = session.get("token")
    if not token:
        flash("Log in as an administrator first.", "error")
        return _to_dashboard()
    try:
        _backend().delete_user(token, name)
    except BackendError as exc:
        if exc.status == 401:
            return _logged_out("Your session has expired; log in again.")
        flash(f"Could not delete {name}: {exc.message}", "error")
        return _to_dashboard()
    flash(f"Deleted user {name}.", "info")
    return _to_dashboard()


@blueprint.post("/users/<name>/password")
def reset_password(name: str) -> Response:
    """Set a new password for a user through the backend."""
    token = session.get("token")
    if not token:
        flash("Log in as an administrator first.", "error")
        return _to_dashboard()
    password = _field("password")
    if not password:
        flash("A new password is required.", "error")
        return _to_dashboard()
    try:
        _backend().set_password(token, name, password)
    except BackendError as exc:
        if exc.status == 401:
            return _logged_out("Your session has expired; log in again.")
        flash(f"Could not reset the password of {name}: {exc.message}", "error")
        return _to_dashboard()
    flash(f"Password of {name} reset.", "info")
    return _to_dashboard()
