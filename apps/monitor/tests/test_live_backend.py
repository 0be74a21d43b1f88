"""The dashboard against two real backend processes (v1, v2) sharing a real redis."""

import secrets

import requests

from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, csrf_from


def register(url: str, password: str = "user-password-1") -> str:
    """Create a fresh user straight through the backend API; return its name."""
    username = f"user-{secrets.token_hex(4)}"
    response = requests.post(
        f"{url}/api/register", json={"username": username, "password": password}, timeout=5
    )
    assert response.status_code == 201, response.text
    return username


def backend_login(url: str, username: str, password: str) -> requests.Response:
    return requests.post(
        f"{url}/api/login", json={"username": username, "password": password}, timeout=5
    )


def log_in(client, username: str = ADMIN_USERNAME, password: str = ADMIN_PASSWORD) -> str:
    response = client.post(
        "/status/login",
        data={"username": username, "password": password, "csrf_token": csrf_from(client)},
        follow_redirects=True,
    )
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_summary_reports_both_variants_from_the_real_backend(client, backends) -> None:
    response = client.get("/status/api/summary")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    summary = response.json
    assert summary["monitor"] == {"version": "1.0.0-test", "variant": "v1", "commit": "abc123"}
    for variant in ("v1", "v2"):
        status = summary["backend"][variant]
        assert status["up"] is True, status
        assert status["healthy"] is True
        assert status["error"] is None
        assert status["variant"] == variant
        assert status["version"] == backends.version
        assert status["url"] == backends.urls[variant]
        if backends.commit:
            assert status["commit"] == backends.commit


def test_dashboard_shows_both_variants_up_and_a_login_form(client, backends) -> None:
    page = client.get("/status/").get_data(as_text=True)
    assert 'id="backend-v1" class="up"' in page
    assert 'id="backend-v2" class="up"' in page
    assert backends.version in page
    assert 'action="/status/login"' in page
    assert "Users</h2>" not in page


def test_status_without_slash_redirects_under_status(client) -> None:
    response = client.get("/status")
    assert response.status_code in (301, 308)
    assert response.headers["Location"].endswith("/status/")


def test_admin_login_keeps_the_token_in_an_httponly_cookie(client) -> None:
    page = log_in(client)
    assert f"Logged in as {ADMIN_USERNAME}." in page
    assert "Users</h2>" in page
    cookie = client.get_cookie("monitor_session", path="/status")
    assert cookie is not None
    assert cookie.http_only
    assert cookie.same_site == "Lax"
    # The token never reaches the page (and so never reaches page scripts).
    with client.session_transaction("/status/") as session:
        token = session["token"]
    assert token not in page


def test_admin_sees_users_from_the_backend(client, backends) -> None:
    username = register(backends.urls["v2"])
    page = log_in(client)
    assert username in page
    assert ADMIN_USERNAME in page


def test_admin_deletes_a_user(client, backends) -> None:
    username = register(backends.urls["v1"])
    log_in(client)
    response = client.post(
        f"/status/users/{username}/delete",
        data={"csrf_token": csrf_from(client)},
        follow_redirects=True,
    )
    assert f"Deleted user {username}." in response.get_data(as_text=True)
    assert backend_login(backends.urls["v1"], username, "user-password-1").status_code == 401


def test_deleting_a_missing_user_shows_the_backend_reason(client) -> None:
    log_in(client)
    response = client.post(
        "/status/users/nobody-here/delete",
        data={"csrf_token": csrf_from(client)},
        follow_redirects=True,
    )
    assert "Could not delete nobody-here: user not found" in response.get_data(as_text=True)


def test_admin_resets_a_password(client, backends) -> None:
    username = register(backends.urls["v1"])
    log_in(client)
    response = client.post(
        f"/status/users/{username}/password",
        data={"password": "brand-new-password", "csrf_token": csrf_from(client)},
        follow_redirects=True,
    )
    assert f"Password of {username} reset." in response.get_data(as_text=True)
    assert backend_login(backends.urls["v2"], username, "brand-new-password").status_code == 200
    assert backend_login(backends.urls["v2"], username, "user-password-1").status_code == 401


def test_password_reset_shows_backend_validation(client, backends) -> None:
    username = register(backends.urls["v1"])
    log_in(client)
    token = csrf_from(client)
    short = client.post(
        f"/status/users/{username}/password",
        data={"password": "short", "csrf_token": token},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert f"Could not reset the password of {username}:" in short
    empty = client.post(
        f"/status/users/{username}/password",
        data={"password": "", "csrf_token": token},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "A new password is required." in empty
    assert backend_login(backends.urls["v1"], username, "user-password-1").status_code == 200


def test_wrong_password_is_refused_with_the_backends_reason(client) -> None:
    page = log_in(client, password="not-the-password")
    assert "Login failed:" in page
    assert 'action="/status/login"' in page


def test_empty_credentials_are_refused_before_calling_the_backend(client) -> None:
    page = log_in(client, username="  ", password="")
    assert "Username and password are required." in page


def test_non_admin_cannot_log_in(client, backends) -> None:
    username = register(backends.urls["v1"])
    page = log_in(client, username=username, password="user-password-1")
    assert "not an administrator" in page
    with client.session_transaction("/status/") as session:
        assert "token" not in session


def test_logout_forgets_the_token(client) -> None:
    log_in(client)
    response = client.post(
        "/status/logout", data={"csrf_token": csrf_from(client)}, follow_redirects=True
    )
    page = response.get_data(as_text=True)
    assert "Logged out." in page
    assert 'action="/status/login"' in page


def test_actions_without_login_are_refused(client, backends) -> None:
    username = register(backends.urls["v1"])
    token = csrf_from(client)
    for action, data in (("delete", {}), ("password", {"password": "whatever-123"})):
        response = client.post(
            f"/status/users/{username}/{action}",
            data={**data, "csrf_token": token},
            follow_redirects=True,
        )
        assert "Log in as an administrator first." in response.get_data(as_text=True)
    assert backend_login(backends.urls["v1"], username, "user-password-1").status_code == 200


def _with_invalid_token(client) -> str:
    token = csrf_from(client)
    with client.session_transaction("/status/") as session:
        session["token"] = "not.a.valid-jwt"
        session["username"] = ADMIN_USERNAME
    return token


def test_rejected_token_logs_out_on_the_dashboard(client) -> None:
    _with_invalid_token(client)
    page = client.get("/status/").get_data(as_text=True)
    assert "Your session has expired; log in again." in page
    assert 'action="/status/login"' in page


def test_rejected_token_logs_out_on_actions(client, backends) -> None:
    username = register(backends.urls["v1"])
    for action, data in (("delete", {}), ("password", {"password": "whatever-123"})):
        token = _with_invalid_token(client)
        response = client.post(
            f"/status/users/{username}/{action}",
            data={**data, "csrf_token": token},
            follow_redirects=True,
        )
        assert "Your session has expired; log in again." in response.get_data(as_text=True)
    assert backend_login(backends.urls["v1"], username, "user-password-1").status_code == 200


def test_user_list_failure_is_shown_not_raised(make_app, backends, garbage_server) -> None:
    # Logged in against the real backend, then the admin variant starts failing.
    good = make_app(BACKEND_URL=backends.urls["v1"]).test_client()
    log_in(good)
    with good.session_transaction("/status/") as session:
        saved = dict(session)
    broken = make_app(
        BACKEND_URL_V1=f"{garbage_server}/error500", BACKEND_URL_V2=backends.urls["v2"]
    ).test_client()
    with broken.session_transaction("/status/") as session:
        session.update(saved)
    page = broken.get("/status/").get_data(as_text=True)
    assert "Could not list users: boom" in page
