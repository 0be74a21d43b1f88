"""The image's real serving path: gunicorn with gunicorn.conf.py and the app factory."""

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from tests.conftest import MONITOR_DIR, SECRET_KEY, free_port, wait_for

GUNICORN = [
    str(Path(sys.executable).with_name("gunicorn")),
    "--config",
    "gunicorn.conf.py",
    "monitor:create_app()",
]


@contextlib.contextmanager
def gunicorn(tmp_path: Path, **env: str) -> Iterator[str]:
    """Serve the monitor like the image does; yield its base URL once it answers."""
    port = free_port()
    full_env = dict(os.environ, PORT=str(port), SECRET_KEY=SECRET_KEY, WEB_CONCURRENCY="1")
    full_env.update(env)
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        # The process outlives this block; it is stopped in the finally clause.
        process = subprocess.Popen(  # pylint: disable=consider-using-with
            GUNICORN, cwd=MONITOR_DIR, env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            "gunicorn",
            lambda: requests.get(f"{base}/status/healthz", timeout=1).status_code == 200,
            process,
            log,
        )
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_gunicorn_serves_status_on_port_from_env(tmp_path: Path) -> None:
    with gunicorn(
        tmp_path,
        BACKEND_URL=f"http://127.0.0.1:{free_port()}",
        BACKEND_TIMEOUT="1",
        VERSION="2.0.0",
        VARIANT="v2",
        COMMIT="c0ffee",
    ) as base:
        summary = requests.get(f"{base}/status/api/summary", timeout=5).json()
        assert summary["monitor"] == {"version": "2.0.0", "variant": "v2", "commit": "c0ffee"}
        assert summary["backend"]["v1"]["up"] is False
        page = requests.get(f"{base}/status/", timeout=5)
        assert page.status_code == 200
        assert "monitor_session" in page.headers["Set-Cookie"]
        assert "HttpOnly" in page.headers["Set-Cookie"]
        assert "Path=/status" in page.headers["Set-Cookie"]
        assert requests.get(f"{base}/status/static/style.css", timeout=5).status_code == 200


def test_probe_answers_while_a_page_waits_on_a_silent_backend(
    tmp_path: Path, silent_server: str
) -> None:
    with gunicorn(tmp_path, BACKEND_URL=silent_server, BACKEND_TIMEOUT="8") as base:
        pages: list[requests.Response] = []
        waiting = threading.Thread(
            target=lambda: pages.append(requests.get(f"{base}/status/", timeout=30))
        )
        waiting.start()
        time.sleep(0.5)  # the page is now waiting on the backend
        started = time.monotonic()
        assert requests.get(f"{base}/status/healthz", timeout=10).status_code == 200
        # A probe queued behind the page would take the page's 8 s; the bound is loose
        # on purpose (noisy CI) yet well below that.
        assert time.monotonic() - started < 5.0
        waiting.join(timeout=30)
        assert pages and pages[0].status_code == 200
        assert "timeout" in pages[0].text


def test_gunicorn_refuses_to_start_without_secret_key() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "FLASK_DEBUG")}
    env.update(PORT=str(free_port()), WEB_CONCURRENCY="1")
    result = subprocess.run(
        GUNICORN,
        cwd=MONITOR_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stdout + result.stderr
