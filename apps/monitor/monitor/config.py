"""Settings of the monitor, read once from the environment."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

VARIANTS = ("v1", "v2")
DEFAULT_BACKEND_URL = "http://backend:3000"
DEFAULT_TIMEOUT = 3.0
_TRUE = {"1", "true", "yes", "on"}


class ConfigError(ValueError):
    """The environment does not describe a usable monitor."""


@dataclass(frozen=True)
class Settings:  # pylint: disable=too-many-instance-attributes  # one flat record
    """Everything the monitor is configured with (see README.md)."""

    secret_key: str
    backend_urls: Mapping[str, str]
    backend_timeout: float
    version: str
    variant: str
    commit: str
    cookie_secure: bool
    debug: bool


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in _TRUE


def _timeout(env: Mapping[str, str]) -> float:
    raw = env.get("BACKEND_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"BACKEND_TIMEOUT must be a number of seconds, got {raw!r}") from exc
    if not 0 < value <= 60:
        raise ConfigError(f"BACKEND_TIMEOUT must be in (0, 60] seconds, got {raw!r}")
    return value


def _backend_urls(env: Mapping[str, str]) -> dict[str, str]:
    # In the cluster both variants sit behind one URL and Istio routes on the
    # x-version header; BACKEND_URL_V1/V2 let tests and local runs point each
    # variant at its own process instead.
    default = env.get("BACKEND_URL", "").strip() or DEFAULT_BACKEND_URL
    urls = {}
    for variant in VARIANTS:
        url = env.get(f"BACKEND_URL_{variant.upper()}", "").strip() or default
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"backend URL for {variant} must start with http:// or https://, got {url!r}"
            )
        urls[variant] = url.rstrip("/")
    return urls


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build Settings from an environment mapping; raise ConfigError when unusable."""
    debug = _flag(env, "FLASK_DEBUG") or _flag(env, "MONITOR_TESTING")
    secret_key = env.get("SECRET_KEY", "")
    if not secret_key:
        if not debug:
            raise ConfigError(
                "SECRET_KEY is required (set FLASK_DEBUG=1 for a throw-away key in development)"
            )
        # Development only: sessions die with the process, which is what we want.
        secret_key = secrets.token_hex(32)
    elif len(secret_key) < 16:
        raise ConfigError("SECRET_KEY must be at least 16 characters long")
    return Settings(
        secret_key=secret_key,
        backend_urls=_backend_urls(env),
        backend_timeout=_timeout(env),
        version=env.get("VERSION", "").strip() or "dev",
        variant=env.get("VARIANT", "").strip() or "unknown",
        commit=env.get("COMMIT", "").strip() or "unknown",
        cookie_secure=_flag(env, "SESSION_COOKIE_SECURE"),
        debug=debug,
    )
