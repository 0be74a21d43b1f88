"""The one door from the monitor to the backend API.

Every call pins a variant with the ``x-version`` header (Istio routes on it in the
cluster) and is bounded by the configured timeout; every failure becomes a short,
human-readable reason instead of an exception escaping into a page.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

import requests

MAX_BODY_BYTES = 64 * 1024
ADMIN_VARIANT = "v1"
_VERSION_FIELDS = ("version", "commit", "variant")
# Socket operations get a little less than the whole budget, so that a timed-out
# probe is reported as such before the page's deadline (the budget) runs out.
_SOCKET_SHARE = 0.8


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
        self.socket_timeout = timeout * _SOCKET_SHARE

    # -- low level -----------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        variant: str,
        token: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> tuple[int, bytes]:
        """Send one request; return its status and (size-limited) body."""
        headers = {"x-version": variant, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            with requests.request(
                method,
                self.urls[variant] + path,
                headers=headers,
                json=body,
                timeout=(self.socket_timeout, self.socket_timeout),
                allow_redirects=False,
                stream=True,
            ) as response:
                return response.status_code, self._read_limited(response, path)
        except requests.Timeout as exc:
            raise BackendError(f"timeout: no answer within {self.timeout:g}s from {path}") from exc
        except requests.ConnectionError as exc:
            raise BackendError(f"unreachable: {_connection_reason(exc)}") from exc
        except requests.RequestException as exc:
            raise BackendError(f"request to {path} failed: {type(exc).__name__}") from exc

    def _read_limited(self, response: requests.Response, path: str) -> bytes:
        """The body, refusing more than MAX_BODY_BYTES or reading past the budget.

        read1 returns what one socket read brings, so a backend that trickles bytes
        cannot hold this thread (and its socket) beyond the budget.
        """
        deadline = time.monotonic() + self.timeout
        chunks = []
        size = 0
        while chunk := response.raw.read1(8192, decode_content=True):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise BackendError(
                    f"answer larger than {MAX_BODY_BYTES} bytes", response.status_code
                )
            if time.monotonic() > deadline:
                raise BackendError(
                    f"timeout: no complete answer within {self.timeout:g}s from {path}"
                )
        return b"".join(chunks)

    def _checked(
        self,
        method: str,
        path: str,
        *,
        variant: str = ADMIN_VARIANT,
        token: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> bytes:
        """Send one request; a non-2xx status raises with the backend's reason."""
        status, raw = self._request(method, path, variant, token, body)
        if not 200 <= status < 300:
            try:
                data = _decode(raw)
            except ValueError:
                data = None
            reason = data.get("error") if isinstance(data, dict) else None
            raise BackendError(str(reason) if reason else f"{path} answered HTTP {status}", status)
        return raw

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Like _checked, returning the decoded JSON body (None when empty)."""
        raw = self._checked(method, path, **kwargs)
        try:
            return _decode(raw)
        except ValueError as exc:
            raise BackendError(f"{path} answered invalid JSON") from exc

    # -- status --------------------------------------------------------------

    def _health(self, variant: str) -> None:
        # Only the status counts: the body of a health check is not part of the API.
        self._checked("GET", "/api/health", variant=variant)

    def _version(self, variant: str) -> dict[str, str]:
        data = self._json("GET", "/api/version", variant=variant)
        if not isinstance(data, dict):
            raise BackendError("/api/version answered a document that is not an object")
        info = {field: data.get(field) for field in _VERSION_FIELDS}
        for field, value in info.items():
            if not isinstance(value, str):
                raise BackendError(f"/api/version answered without a {field!r} string")
        return info

    def status(self) -> dict[str, VariantStatus]:
        """Probe health and version of every variant in parallel, within the timeout.

        BACKEND_TIMEOUT is the budget of the whole probe: a probe still running when
        it is spent is reported as a timeout and left to end on its own (socket
        timeouts and a read deadline bound it).
        """
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=2 * len(self.urls))
        try:
            futures = {
                variant: (pool.submit(self._health, variant), pool.submit(self._version, variant))
                for variant in self.urls
            }
            everything = [future for pair in futures.values() for future in pair]
            concurrent.futures.wait(everything, timeout=self.timeout)
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
        data = self._json("POST", "/api/login", body={"username": username, "password": password})
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise BackendError("/api/login answered without a token")
        return token

    def profile(self, token: str) -> dict[str, Any]:
        """The logged-in user's profile."""
        data = self._json("GET", "/api/profile", token=token)
        if not isinstance(data, dict):
            raise BackendError("/api/profile answered a document that is not an object")
        return data

    def list_users(self, token: str) -> list[dict[str, Any]]:
        """All users (admin only)."""
        data = self._json("GET", "/api/users", token=token)
        users = data.get("users") if isinstance(data, dict) else None
        if not isinstance(users, list):
            raise BackendError("/api/users answered without a user list")
        return [dict(user) for user in list(users) if isinstance(user, dict)]

    def delete_user(self, token: str, username: str) -> None:
        """Delete a user (admin only)."""
        self._json("DELETE", f"/api/users/{quote(username, safe='')}", token=token)

    def set_password(self, token: str, username: str, password: str) -> None:
        """Reset a user's password (self or admin)."""
        self._json(
            "PUT",
            f"/api/users/{quote(username, safe='')}",
            token=token,
            body={"password": password},
        )


def _decode(raw: bytes) -> Any:
    """JSON from a body; an empty body is None."""
    return json.loads(raw) if raw.strip() else None


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
