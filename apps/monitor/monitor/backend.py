"""The one door from the monitor to the backend API.

Every call pins a variant with the ``x-version`` header (Istio routes on it in the
cluster) and is bounded by the configured timeout; every failure becomes a short,
human-readable reason instead of an exception escaping into a page.
"""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

import requests

MAX_BODY_BYTES = 64 * 1024
ADMIN_VARIANT = "v1"
_VERSION_FIELDS = ("version", "commit", "variant")
# Grace on top of the timeout for thread hand-over before a probe counts as lost.
_DEADLINE_GRACE = 0.5


class BackendError(Exception):
    """A backend call failed; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class VariantStatus:  # pylint: disable=too-many-instance-attributes  # one flat JSON record
    """What the monitor found out about one backend variant."""

    variant: str
    url: str
    up: bool
    healthy: bool
    version: str | None = None
    commit: str | None = None
    reported_variant: str | None = None
    error: str | None = None

    def as_summary(self) -> dict[str, Any]:
        """The record published by /status/api/summary."""
        data = asdict(self)
        data["variant"] = data.pop("reported_variant")
        data["requested_variant"] = self.variant
        return data


class BackendClient:
    """Calls the backend for one monitor configuration."""

    def __init__(self, urls: Mapping[str, str], timeout: float) -> None:
        self.urls = dict(urls)
        self.timeout = timeout

    # -- low level -----------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        variant: str,
        token: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> tuple[int, Any]:
        """Send one request; return (status, decoded JSON or None for an empty body)."""
        headers = {"x-version": variant, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            with requests.request(
                method,
                self.urls[variant] + path,
                headers=headers,
                json=body,
                timeout=(self.timeout, self.timeout),
                allow_redirects=False,
                stream=True,
            ) as response:
                raw = _read_limited(response)
                status = response.status_code
        except requests.Timeout as exc:
            raise BackendError(f"timeout: no answer within {self.timeout:g}s from {path}") from exc
        except requests.ConnectionError as exc:
            raise BackendError(f"unreachable: {_connection_reason(exc)}") from exc
        except requests.RequestException as exc:
            raise BackendError(f"request to {path} failed: {type(exc).__name__}") from exc
        if not raw.strip():
            return status, None
        try:
            return status, json.loads(raw)
        except ValueError as exc:
            raise BackendError(f"{path} answered HTTP {status} with invalid JSON", status) from exc

    def _call(
        self,
        method: str,
        path: str,
        variant: str = ADMIN_VARIANT,
        token: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """Like _request, but any non-2xx status raises with the backend's reason."""
        status, data = self._request(method, path, variant, token, body)
        if not 200 <= status < 300:
            reason = data.get("error") if isinstance(data, dict) else None
            raise BackendError(str(reason) if reason else f"{path} answered HTTP {status}", status)
        return data

    # -- status --------------------------------------------------------------

    def _health(self, variant: str) -> None:
        self._call("GET", "/api/health", variant)

    def _version(self, variant: str) -> dict[str, str]:
        data = self._call("GET", "/api/version", variant)
        if not isinstance(data, dict):
            raise BackendError("/api/version answered a document that is not an object")
        for field in _VERSION_FIELDS:
            if not isinstance(data.get(field), str):
                raise BackendError(f"/api/version answered without a {field!r} string")
        return {field: data[field] for field in _VERSION_FIELDS}

    def status(self) -> dict[str, VariantStatus]:
        """Probe health and version of every variant in parallel, within the timeout."""
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=2 * len(self.urls))
        try:
            futures = {
                variant: (pool.submit(self._health, variant), pool.submit(self._version, variant))
                for variant in self.urls
            }
            everything = [future for pair in futures.values() for future in pair]
            concurrent.futures.wait(everything, timeout=self.timeout + _DEADLINE_GRACE)
            return {
                variant: self._variant_status(variant, health, version)
                for variant, (health, version) in futures.items()
            }
        finally:
            # Never wait for a straggler: each socket operation is bounded anyway.
            pool.shutdown(wait=False, cancel_futures=True)

    def _variant_status(
        self,
        variant: str,
        health: concurrent.futures.Future[None],
        version: concurrent.futures.Future[dict[str, str]],
    ) -> VariantStatus:
        url = self.urls[variant]
        health_error = _future_error(health, self.timeout)
        try:
            info = _future_result(version, self.timeout)
        except BackendError as exc:
            return VariantStatus(
                variant,
                url,
                up=False,
                healthy=health_error is None,
                error=health_error or exc.message,
            )
        return VariantStatus(
            variant,
            url,
            up=health_error is None,
            healthy=health_error is None,
            version=info["version"],
            commit=info["commit"],
            reported_variant=info["variant"],
            error=f"health: {health_error}" if health_error else None,
        )

    # -- administration --------------------------------------------------------

    def login(self, username: str, password: str) -> str:
        """Exchange credentials for a token."""
        data = self._call("POST", "/api/login", body={"username": username, "password": password})
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise BackendError("/api/login answered without a token")
        return token

    def profile(self, token: str) -> dict[str, Any]:
        """The logged-in user's profile."""
        data = self._call("GET", "/api/profile", token=token)
        if not isinstance(data, dict):
            raise BackendError("/api/profile answered a document that is not an object")
        return data

    def list_users(self, token: str) -> list[dict[str, Any]]:
        """All users (admin only)."""
        data = self._call("GET", "/api/users", token=token)
        users = data.get("users") if isinstance(data, dict) else None
        if not isinstance(users, list):
            raise BackendError("/api/users answered without a user list")
        return [user for user in users if isinstance(user, dict)]

    def delete_user(self, token: str, username: str) -> None:
        """Delete a user (admin only)."""
        self._call("DELETE", f"/api/users/{quote(username, safe='')}", token=token)

    def set_password(self, token: str, username: str, password: str) -> None:
        """Reset a user's password (self or admin)."""
        self._call(
            "PUT",
            f"/api/users/{quote(username, safe='')}",
            token=token,
            body={"password": password},
        )


def _read_limited(response: requests.Response) -> bytes:
    chunks = []
    size = 0
    for chunk in response.iter_content(chunk_size=8192):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BackendError(f"answer larger than {MAX_BODY_BYTES} bytes", response.status_code)
    return b"".join(chunks)


def _connection_reason(exc: requests.ConnectionError) -> str:
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("Temporary failure in name resolution", "unknown host"),
        ("RemoteDisconnected", "connection closed without an answer"),
        ("Connection reset", "connection reset"),
        ("BadStatusLine", "not an HTTP answer"),
    ):
        if needle in text:
            return reason
    return "connection failed"


def _future_result(future: concurrent.futures.Future[Any], timeout: float) -> Any:
    if not future.done():
        raise BackendError(f"timeout: no complete answer within {timeout:g}s")
    return future.result()


def _future_error(future: concurrent.futures.Future[Any], timeout: float) -> str | None:
    try:
        _future_result(future, timeout)
    except BackendError as exc:
        return exc.message
    return None
