"""A backend that is down, slow or broken never breaks the dashboard.

The misbehaving peers are real sockets (see conftest): the network boundary.
"""

import threading
import time

import pytest

from monitor.backend import BackendClient, BackendError
from tests.conftest import csrf_from, free_port


def _summary(app) -> dict:
    response = app.test_client().get("/status/api/summary")
    assert response.status_code == 200
    return response.json


def test_refused_connection_marks_both_variants_down(make_app) -> None:
    app = make_app(BACKEND_URL=f"http://127.0.0.1:{free_port()}")
    backend = _summary(app)["backend"]
    for variant in ("v1", "v2"):
        assert backend[variant]["up"] is False
        assert backend[variant]["error"] == "unreachable: connection refused"
        assert backend[variant]["requested_variant"] == variant


def test_unknown_host_is_reported(make_app) -> None:
    app = make_app(BACKEND_URL="http://no-such-host.invalid:3000", BACKEND_TIMEOUT="2")
    backend = _summary(app)["backend"]
    assert backend["v1"]["up"] is False
    error = backend["v1"]["error"]
    # A resolver that hangs instead of failing is cut off by the deadline.
    assert error in {"unreachable: unknown host", "unreachable: connection failed"} or (
        error.startswith("timeout")
    ), error


def test_silent_backend_page_answers_within_the_timeout(make_app, silent_server) -> None:
    app = make_app(BACKEND_URL=silent_server, BACKEND_TIMEOUT="2")
    started = time.monotonic()
    response = app.test_client().get("/status/")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    # The 2 s budget plus rendering; a sequential client would take four timeouts (8 s).
    # The bound is loose on purpose: CI machines are noisy.
    assert elapsed < 6, f"dashboard took {elapsed:.2f}s with BACKEND_TIMEOUT=2"
    page = response.get_data(as_text=True)
    assert page.count("timeout: no answer within 2s") + page.count("no complete answer") == 2
    assert 'id="backend-v1" class="down"' in page


def test_trickling_backend_is_cut_off_at_the_deadline(make_app, trickle_server) -> None:
    app = make_app(BACKEND_URL=trickle_server, BACKEND_TIMEOUT="2")
    started = time.monotonic()
    backend = _summary(app)["backend"]
    elapsed = time.monotonic() - started
    # Loose on purpose (noisy CI): a trickle that is not cut off takes far longer.
    assert elapsed < 6, f"summary took {elapsed:.2f}s with BACKEND_TIMEOUT=2"
    for variant in ("v1", "v2"):
        assert backend[variant]["up"] is False
        assert backend[variant]["error"].startswith("timeout: no complete answer within 2s")
    # The probes do not linger on the trickle: their threads end soon after.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and _probe_threads():
        time.sleep(0.1)
    assert not _probe_threads()


def _probe_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ThreadPoolExecutor")]


def test_one_silent_variant_does_not_hide_the_other(
    make_app, silent_server, garbage_server
) -> None:
    app = make_app(
        BACKEND_URL_V1=silent_server,
        BACKEND_URL_V2=f"{garbage_server}/healthdown",
        BACKEND_TIMEOUT="1",
    )
    backend = _summary(app)["backend"]
    assert backend["v1"]["error"].startswith("timeout")
    assert backend["v2"]["version"] == "2"
    assert backend["v2"]["up"] is False
    assert backend["v2"]["healthy"] is False
    assert backend["v2"]["error"] == "health: /api/health answered HTTP 503"


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("html", "/api/version answered invalid JSON"),
        ("error500", "boom"),
        ("list", "/api/version answered a document that is not an object"),
        ("partial", "/api/version answered without a 'commit' string"),
        ("empty", "/api/version answered a document that is not an object"),
        ("huge", "answer larger than 65536 bytes"),
        ("raw", "unreachable: not an HTTP answer"),
        ("nothing-here", "no such mode"),
        ("noupstream", "/api/health answered HTTP 503"),
    ],
)
def test_garbage_answers_mark_the_variant_down_with_a_reason(
    make_app, garbage_server, mode: str, reason: str
) -> None:
    app = make_app(BACKEND_URL=f"{garbage_server}/{mode}")
    summary = _summary(app)
    assert summary["backend"]["v1"] == summary["backend"]["v1"] | {"up": False, "error": reason}
    page = app.test_client().get("/status/").get_data(as_text=True)
    assert "down" in page


def test_monitor_identity_is_always_reported(make_app) -> None:
    app = make_app(BACKEND_URL=f"http://127.0.0.1:{free_port()}", VERSION="7.0", VARIANT="v2")
    assert _summary(app)["monitor"] == {"version": "7.0", "variant": "v2", "commit": "abc123"}


def test_login_with_backend_down_shows_the_reason(make_app) -> None:
    client = make_app(BACKEND_URL=f"http://127.0.0.1:{free_port()}").test_client()
    token = csrf_from(client)
    response = client.post(
        "/status/login",
        data={"username": "admin", "password": "x", "csrf_token": token},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "Login failed: unreachable: connection refused" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("list", "Login failed: /api/login answered without a token"),
        ("tokenonly", "Login failed: /api/profile answered a document that is not an object"),
        ("html", "Login failed: /api/login answered invalid JSON"),
    ],
)
def test_login_against_a_broken_backend_explains_why(
    make_app, garbage_server, mode: str, reason: str
) -> None:
    client = make_app(BACKEND_URL=f"{garbage_server}/{mode}").test_client()
    response = client.post(
        "/status/login",
        data={"username": "admin", "password": "x", "csrf_token": csrf_from(client)},
        follow_redirects=True,
    )
    assert reason in response.get_data(as_text=True)
    with client.session_transaction("/status/") as session:
        assert "token" not in session


def test_user_list_without_users_is_an_error(garbage_server) -> None:
    backend = BackendClient({"v1": f"{garbage_server}/list"}, timeout=1)
    with pytest.raises(BackendError, match="without a user list"):
        backend.list_users("token")


def test_malformed_backend_url_is_reported_not_raised(make_app) -> None:
    backend = _summary(make_app(BACKEND_URL="http://backend:99999"))["backend"]
    assert backend["v1"]["up"] is False
    assert backend["v1"]["error"] == "request to /api/health failed: InvalidURL"
