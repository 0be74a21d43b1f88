"""What lab sends to and reads from the Docker Engine API, against a fake Engine.

The fake is an HTTP server on a unix socket, the boundary docker-py talks across: it
records each request and answers push and pull with streams as the Engine writes them
(issue #16, items 20 and 22).
"""

from __future__ import annotations

import io
import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import docker
import pytest

from lab import distribution, engine
from lab.errors import LabError
from lab.ui import UI

DIGEST = "sha256:" + "5" * 64


class _Engine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    requests: list[tuple[str, str, dict[str, str]]]
    pull_stream: list[dict[str, object]]


class _Handler(BaseHTTPRequestHandler):
    server: _Engine
    protocol_version = "HTTP/1.1"

    def address_string(self) -> str:  # a unix socket has no client address
        return "fake-engine"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path, dict(self.headers)))
        path = self.path.split("?")[0]
        if path.endswith("/_ping"):
            self._answer(b"OK", "text/plain")
        elif path.endswith("/version"):
            self._answer(json.dumps({"ApiVersion": "1.41", "Version": "20.10"}).encode())
        elif path.endswith("/images/present/json"):
            self._answer(json.dumps({"Id": "sha256:" + "1" * 64, "RepoTags": ["present"]}).encode())
        elif path.endswith("/containers/broken/json"):
            self._refuse(500, "driver failed: input/output error")
        else:
            self._refuse(404, f"No such object: {path}")

    def _refuse(self, status: int, message: str) -> None:
        """An error the way the Engine answers one: a JSON body with its message."""
        body = json.dumps({"message": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _answer(self, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.server.requests.append(("POST", self.path, dict(self.headers)))
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if "/push" in self.path:
            self._stream(
                [
                    {"status": "Pushed", "id": "layer"},
                    {"status": f"tag: digest: {DIGEST} size: 528"},
                    {"progressDetail": {}, "aux": {"Tag": "t", "Digest": DIGEST, "Size": 528}},
                ]
            )
        elif self.path.split("?")[0].endswith("/images/create"):
            self._stream(self.server.pull_stream)
        else:
            self.send_error(404)

    def _stream(self, chunks: list[dict[str, object]]) -> None:
        """A JSON object per HTTP chunk, as the Engine streams progress."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in chunks:
            data = json.dumps(chunk).encode() + b"\r\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def fake_engine(tmp_path: Path) -> Iterator[tuple[_Engine, docker.DockerClient]]:
    socket = tmp_path / "engine.sock"
    server = _Engine(str(socket), _Handler)
    server.requests, server.pull_stream = [], []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = docker.DockerClient(base_url=f"unix://{socket}", version="1.41", timeout=10)
    try:
        yield server, client
    finally:
        client.close()
        server.shutdown()
        server.server_close()


def test_a_push_always_sends_an_auth_header_and_returns_the_digest(
    fake_engine: tuple[_Engine, docker.DockerClient],
) -> None:
    # Docker 28.3.3 ends a push without X-Registry-Auth with EOF (moby#50614).
    server, client = fake_engine
    digest = distribution.push_one(client, "smoke", "localhost:5001/lab/smoke", "abc")
    (method, path, headers), *_ = server.requests
    assert (method, path.split("?")[0]) == ("POST", "/v1.41/images/localhost:5001/lab/smoke/push")
    assert "X-Registry-Auth" in headers
    assert digest == DIGEST


def test_a_refused_pull_reports_the_registry_s_own_words(
    fake_engine: tuple[_Engine, docker.DockerClient],
) -> None:
    # docker-py's images.pull drops error chunks: the user would read "No such image".
    server, client = fake_engine
    server.pull_stream = [
        {"status": "Pulling from library/redis", "id": "7-bookworm"},
        {
            "errorDetail": {"message": "toomanyrequests: You have reached your pull rate limit"},
            "error": "toomanyrequests: You have reached your pull rate limit",
        },
    ]
    with pytest.raises(LabError) as caught:
        engine.pull(client, "redis:7-bookworm")
    assert "toomanyrequests: You have reached your pull rate limit" in caught.value.message
    assert "docker login" in (caught.value.hint or "")


def test_at_v_each_docker_api_call_is_shown_with_its_answer(
    fake_engine: tuple[_Engine, docker.DockerClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = fake_engine
    monkeypatch.setenv("DOCKER_HOST", f"unix://{server.server_address}")
    out = io.StringIO()
    UI(verbosity=1, stream=out)  # as `invoke <task> -v` makes it
    client = engine.client()
    distribution.push_one(client, "smoke", "localhost:5001/lab/smoke", "abc")
    calls = [line.strip().replace("/v1.41", "") for line in out.getvalue().splitlines()]
    assert "docker GET /_ping → 200" in calls
    assert "docker POST /images/localhost:5001/lab/smoke/push?tag=abc → 200" in calls


def test_at_v_a_second_task_s_ui_shows_each_call_once(
    fake_engine: tuple[_Engine, docker.DockerClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `invoke -v lab.up pipeline.run` makes a UI per task: the newest shows each line.
    server, _ = fake_engine
    monkeypatch.setenv("DOCKER_HOST", f"unix://{server.server_address}")
    first, second = io.StringIO(), io.StringIO()
    UI(verbosity=1, stream=first)
    UI(verbosity=1, stream=second)
    engine.client()
    pings = [line for line in second.getvalue().splitlines() if "/_ping" in line]
    assert len(pings) == 1 and "/_ping" not in first.getvalue()


def test_a_lookup_that_finds_nothing_is_none_and_one_that_finds_is_the_object(
    fake_engine: tuple[_Engine, docker.DockerClient],
) -> None:
    _, client = fake_engine
    assert engine.find_image(client, "absent:1") is None
    assert engine.find_container(client, "absent") is None
    found = engine.find_image(client, "present")
    assert found is not None and found.id == "sha256:" + "1" * 64


def test_a_refusal_becomes_one_error_with_docker_s_own_words(
    fake_engine: tuple[_Engine, docker.DockerClient],
) -> None:
    _, client = fake_engine
    with pytest.raises(LabError) as caught:
        engine.find_container(client, "broken")
    assert caught.value.message.startswith("Docker could not look up the container broken: ")
    assert "driver failed: input/output error" in caught.value.message
    assert caught.value.hint == engine.DOCKER_HINT


def test_a_daemon_that_stops_answering_is_reported_as_unreachable(tmp_path: Path) -> None:
    gone = tmp_path / "gone.sock"  # nobody listens here
    client = docker.DockerClient(base_url=f"unix://{gone}", version="1.41", timeout=2)
    with pytest.raises(LabError) as caught, engine.doing("list images"):
        client.images.list()
    assert caught.value.message.startswith("cannot reach the Docker daemon")
