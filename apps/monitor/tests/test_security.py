"""Forged cookies and missing CSRF tokens change nothing."""

import pytest
from flask import Flask

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, csrf_from
from tests.test_live_backend import backend_login, log_in, register


def forged_cookie(payload: dict) -> str:
    """A session cookie signed with a key the monitor does not know."""
    attacker = Flask("attacker")
    attacker.secret_key = "attacker-key-not-the-monitor-key"
    serializer = attacker.session_interface.get_signing_serializer(attacker)
    return serializer.dumps(payload)


@pytest.mark.parametrize("action", ["delete", "password"])
def test_missing_csrf_token_is_rejected_and_nothing_changes(client, backends, action) -> None:
    username = register(backends.urls["v1"])
    log_in(client)
    response = client.post(f"/status/users/{username}/{action}", data={"password": "new-pass-123"})
    assert response.status_code == 400
    assert "CSRF token missing or invalid" in response.get_data(as_text=True)
    assert backend_login(backends.urls["v1"], username, "user-password-1").status_code == 200


def test_wrong_csrf_token_is_rejected(client, backends) -> None:
    username = register(backends.urls["v1"])
    log_in(client)
    response = client.post(f"/status/users/{username}/delete", data={"csrf_token": "guess"})
    assert response.status_code == 400
    assert backend_login(backends.urls["v1"], username, "user-password-1").status_code == 200


def test_csrf_token_from_another_session_is_rejected(live_app, backends) -> None:
    username = register(backends.urls["v1"])
    victim, attacker = live_app.test_client(), live_app.test_client()
    log_in(victim)
    response = victim.post(
        f"/status/users/{username}/delete", data={"csrf_token": csrf_from(attacker)}
    )
    assert response.status_code == 400
    assert backend_login(backends.urls["v1"], username, "user-password-1").status_code == 200


def test_forged_session_cookie_is_rejected_and_nothing_changes(live_app, backends) -> None:
    username = register(backends.urls["v1"])
    # Even with a genuine admin token inside, a cookie the monitor did not sign is void.
    token = backend_login(backends.urls["v1"], ADMIN_USERNAME, ADMIN_PASSWORD).json()["token"]
    client = live_app.test_client()
    cookie = forged_cookie({"token": token, "username": ADMIN_USERNAME, "csrf_token": "chosen"})
    client.set_cookie("monitor_session", cookie, path="/status")
    response = client.post(f"/status/users/{username}/delete", data={"csrf_token": "chosen"})
    assert response.status_code == 400
    assert backend_login(backends.urls["v1"], username, "user-password-1").status_code == 200
    page = client.get("/status/").get_data(as_text=True)
    assert "Users</h2>" not in page


def test_login_needs_a_csrf_token(client) -> None:
    response = client.post(
        "/status/login", data={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 400
    with client.session_transaction("/status/") as session:
        assert "token" not in session


def test_csrf_token_is_accepted_from_a_header(client) -> None:
    response = client.post("/status/logout", headers={"X-CSRF-Token": csrf_from(client)})
    assert response.status_code == 303


def test_pages_escape_backend_text(make_app, garbage_server) -> None:
    # The backend's error text is shown on the page: it must arrive escaped.
    app = make_app(BACKEND_URL=f"{garbage_server}/xss")
    page = app.test_client().get("/status/").get_data(as_text=True)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_pages_forbid_framing_and_foreign_code(make_app) -> None:
    response = make_app(BACKEND_URL="http://127.0.0.1:9").test_client().get("/status/")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
