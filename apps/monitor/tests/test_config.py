"""Settings come only from the environment and are checked up front."""

import pytest

from monitor import create_app
from monitor.config import DEFAULT_BACKEND_URL, ConfigError, load_settings

KEY = "k" * 32


def test_defaults_follow_the_contract() -> None:
    settings = load_settings({"SECRET_KEY": KEY})
    assert settings.backend_urls == {"v1": DEFAULT_BACKEND_URL, "v2": DEFAULT_BACKEND_URL}
    assert settings.backend_timeout == 3.0
    assert (settings.version, settings.variant, settings.commit) == ("dev", "unknown", "unknown")
    assert not settings.cookie_secure
    assert not settings.debug


def test_secret_key_is_required_in_production() -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY is required"):
        load_settings({})


def test_short_secret_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 16"):
        load_settings({"SECRET_KEY": "short"})


@pytest.mark.parametrize("flag", ["FLASK_DEBUG", "MONITOR_TESTING"])
def test_debug_or_testing_gets_a_throwaway_key(flag: str) -> None:
    first = load_settings({flag: "1"})
    second = load_settings({flag: "true"})
    assert first.debug
    assert len(first.secret_key) == 64
    assert first.secret_key != second.secret_key


def test_per_variant_urls_override_backend_url() -> None:
    settings = load_settings(
        {"SECRET_KEY": KEY, "BACKEND_URL": "http://b:1/", "BACKEND_URL_V2": "https://other:2"}
    )
    assert settings.backend_urls == {"v1": "http://b:1", "v2": "https://other:2"}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("BACKEND_TIMEOUT", "soon", "must be a number"),
        ("BACKEND_TIMEOUT", "0", r"\(0, 60\]"),
        ("BACKEND_TIMEOUT", "120", r"\(0, 60\]"),
        ("BACKEND_URL", "backend:3000", "must start with http"),
        ("BACKEND_URL_V1", "ftp://x", "must start with http"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({"SECRET_KEY": KEY, name: value})


def test_environment_values_are_used() -> None:
    settings = load_settings(
        {
            "SECRET_KEY": KEY,
            "BACKEND_TIMEOUT": "0.5",
            "VERSION": "1.2.3",
            "VARIANT": "v2",
            "COMMIT": "f" * 40,
            "SESSION_COOKIE_SECURE": "yes",
        }
    )
    assert settings.backend_timeout == 0.5
    assert (settings.version, settings.variant, settings.commit) == ("1.2.3", "v2", "f" * 40)
    assert settings.cookie_secure


def test_create_app_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", KEY)
    monkeypatch.setenv("VERSION", "from-env")
    app = create_app()
    assert app.extensions["monitor.settings"].version == "from-env"
    assert app.config["SESSION_COOKIE_HTTPONLY"]
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["SESSION_COOKIE_PATH"] == "/status"


def test_healthz_answers_without_a_backend(make_app) -> None:
    client = make_app(BACKEND_URL="http://127.0.0.1:9").test_client()
    response = client.get("/status/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}
