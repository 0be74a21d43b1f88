"""Fixtures: a real redis-server, the real backend binary (v1 and v2), and a few
misbehaving servers at the network boundary.

Missing tools fail the run with a clear message: a silently skipped tier would
hide a missing install step in CI.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from monitor import create_app

MONITOR_DIR = Path(__file__).resolve().parents[1]
BACKEND_SRC = MONITOR_DIR.parent / "backend"
TEST_COMMIT = "0123456789abcdef0123456789abcdef01234567"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-password-for-tests"
JWT_SECRET = "test-jwt-secret-that-is-at-least-32-bytes-long"
SECRET_KEY = "monitor-test-secret-key-0123456789"
START_DEADLINE = 20.0


def free_port() -> int:
    """A port that was free a moment ago (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def wait_for(
    what: str,
    probe: Callable[[], bool],
    process: subprocess.Popen[bytes],
    log: Path,
    deadline: float = START_DEADLINE,
) -> None:
    """Poll ``probe`` until true; fail with the process log on exit or timeout."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}; log:\n{_tail(log)}")
        with contextlib.suppress(OSError, requests.RequestException):
            if probe():
                return
        time.sleep(0.1)
    _stop(process)
    pytest.fail(f"{what} not ready within {deadline:g}s; log:\n{_tail(log)}")


def require_tool(name: str, hint: str) -> str:
    """The tool's path, or a failed test saying how to install it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` not found on PATH: {hint}", pytrace=False)
    return path


def _redis_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


@pytest.fixture(scope="session")
def redis_addr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a throw-away redis-server."""
    binary = require_tool("redis-server", "install it (Debian: apt-get install -y redis-server)")
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    log = workdir / "redis.log"
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(workdir)]
    with log.open("wb") as out:
        # The process outlives this block; _stop() ends it.
        process = subprocess.Popen(  # pylint: disable=consider-using-with
            argv, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for("redis-server", lambda: _redis_ping(port), process, log)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(process)


@dataclass(frozen=True)
class BackendBinary:
    """The backend executable and the commit it reports (None if unknown)."""

    path: str
    commit: str | None


@pytest.fixture(scope="session")
def backend_binary(tmp_path_factory: pytest.TempPathFactory) -> BackendBinary:
    """BACKEND_BIN when set, else apps/backend built once per session with go build."""
    given = os.environ.get("BACKEND_BIN")
    if given:
        if not os.access(given, os.X_OK):
            pytest.fail(f"BACKEND_BIN={given} is not an executable file", pytrace=False)
        return BackendBinary(given, None)
    go = require_tool("go", "install Go (the version in apps/backend/go.mod) or set BACKEND_BIN")
    if not (BACKEND_SRC / "go.mod").is_file():
        pytest.fail(f"backend sources not found at {BACKEND_SRC}", pytrace=False)
    output = tmp_path_factory.mktemp("backend-bin") / "backend"
    argv = [go, "build", "-ldflags", f"-X main.commit={TEST_COMMIT}", "-o", str(output), "."]
    result = subprocess.run(
        argv, cwd=BACKEND_SRC, capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"building the backend failed: {' '.join(argv)} (in {BACKEND_SRC})\n"
            f"{result.stdout}{result.stderr}",
            pytrace=False,
        )
    return BackendBinary(str(output), TEST_COMMIT)


@dataclass(frozen=True)
class Backends:
    """Two real backend processes sharing one redis."""

    urls: Mapping[str, str]
    commit: str | None
    version: str


@pytest.fixture(scope="session")
def backends(
    backend_binary: BackendBinary, redis_addr: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backends]:
    """Backend v1 and v2 on their own ports, with an admin account."""
    workdir = tmp_path_factory.mktemp("backends")
    processes = []
    urls = {}
    try:
        for variant in ("v1", "v2"):
            port = free_port()
            env = {
                "PATH": os.environ.get("PATH", ""),
                "PORT": str(port),
                "REDIS_ADDR": redis_addr,
                "JWT_SECRET": JWT_SECRET,
                "ADMIN_USERNAME": ADMIN_USERNAME,
                "ADMIN_PASSWORD": ADMIN_PASSWORD,
                "VERSION": "9.9.9-test",
                "VARIANT": variant,
            }
            log = workdir / f"backend-{variant}.log"
            with log.open("wb") as out:
                # The process outlives this block; _stop() ends it.
                process = subprocess.Popen(  # pylint: disable=consider-using-with
                    [backend_binary.path], env=env, stdout=out, stderr=subprocess.STDOUT
                )
            processes.append(process)
            url = f"http://127.0.0.1:{port}"

            def ready(url: str = url) -> bool:
                return requests.get(f"{url}/api/ready", timeout=1).status_code == 200

            wait_for(f"backend {variant}", ready, process, log)
            urls[variant] = url
        yield Backends(urls, backend_binary.commit, "9.9.9-test")
    finally:
        for process in processes:
            _stop(process)


def monitor_env(**overrides: str) -> dict[str, str]:
    """A complete monitor environment for tests."""
    env = {
        "SECRET_KEY": SECRET_KEY,
        "VERSION": "1.0.0-test",
        "VARIANT": "v1",
        "COMMIT": "abc123",
        "BACKEND_TIMEOUT": "2",
    }
    env.update(overrides)
    return env


@pytest.fixture
def make_app() -> Callable[..., Flask]:
    """Build a monitor app from environment overrides."""

    def make(**overrides: str) -> Flask:
        app = create_app(monitor_env(**overrides))
        app.testing = True
        return app

    return make


@pytest.fixture
def live_app(backends: Backends, make_app: Callable[..., Flask]) -> Flask:
    """A monitor wired to the two real backend processes."""
    return make_app(BACKEND_URL_V1=backends.urls["v1"], BACKEND_URL_V2=backends.urls["v2"])


@pytest.fixture
def client(live_app: Flask) -> FlaskClient:
    """A browser-like client of the live monitor."""
    return live_app.test_client()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A URL whose socket accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        listener.close()


@pytest.fixture
def trickle_server() -> Iterator[str]:
    """A URL that answers headers at once, then one body byte every 0.2 s, forever.

    No single socket read ever times out: only an overall deadline stops it.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while not stop.wait(0.2):
                conn.sendall(b" ")

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = listener.accept()
                threading.Thread(target=drip, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()


class _GarbageHandler(http.server.BaseHTTPRequestHandler):
    """Answers by path: /<mode>/api/... picks the kind of garbage."""

    def log_message(self, format: str, *args: object) -> None:  # pylint: disable=redefined-builtin
        pass  # keep test output clean; the signature is the base class's

    def do_GET(self) -> None:  # pylint: disable=invalid-name  # http.server's naming
        mode, _, rest = self.path.lstrip("/").partition("/")
        if mode == "raw":
            self.wfile.write(b"this is not HTTP at all\r\n\r\n")
            return
        status, body = {
            "html": (200, b"<html>not json</html>"),
            "error500": (500, b'{"error": "boom"}'),
            "list": (200, b"[1, 2, 3]"),
            "partial": (200, b'{"version": "1"}'),
            "empty": (200, b""),
            "xss": (500, b'{"error": "<script>alert(1)</script>"}'),
            # What Istio's Envoy answers when no pod backs the subset.
            "noupstream": (503, b"no healthy upstream"),
            "tokenonly": (200, b'{"token": "t"}' if rest == "api/login" else b"[1]"),
            "huge": (200, b'"' + b"x" * (200 * 1024) + b'"'),
            "healthdown": (
                503 if rest == "api/health" else 200,
                b'{"version": "2", "commit": "c", "variant": "v2"}',
            ),
        }.get(mode, (404, b'{"error": "no such mode"}'))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT = do_DELETE = do_GET  # pylint: disable=invalid-name


@pytest.fixture(scope="session")
def garbage_server() -> Iterator[str]:
    """Base URL of a real HTTP server returning broken answers (see _GarbageHandler)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _GarbageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def csrf_from(client: FlaskClient) -> str:
    """Load the dashboard like a browser and return the form's CSRF token."""
    page = client.get("/status/").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "dashboard has no CSRF token field"
    return match.group(1)
