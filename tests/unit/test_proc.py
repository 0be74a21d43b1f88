"""lab.proc against real processes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from lab import proc
from lab.errors import CommandError, CommandTimeout, ToolNotFound

PY = sys.executable


def test_captures_stdout_stderr_and_exit_code() -> None:
    result = proc.run(
        [PY, "-c", "import sys; print('out'); print('err', file=sys.stderr)"], timeout=10
    )
    assert result.ok
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"
    assert result.argv[0] == PY


def test_nonzero_exit_raises_with_command_code_and_stderr_tail() -> None:
    script = "import sys\nfor i in range(40): print(f'line {i}', file=sys.stderr)\nsys.exit(3)"
    with pytest.raises(CommandError) as caught:
        proc.run([PY, "-c", script], timeout=10)
    error = caught.value
    assert error.returncode == 3
    assert error.command is not None and error.command.startswith(PY)
    assert error.output_tail is not None
    assert "line 39" in error.output_tail
    assert "line 0\n" not in error.output_tail  # only the tail is kept
    assert "exit code 3" in error.render()


def test_check_false_returns_the_failure() -> None:
    result = proc.run([PY, "-c", "raise SystemExit(7)"], timeout=10, check=False)
    assert result.returncode == 7
    assert not result.ok


def test_timeout_kills_the_command_and_its_children() -> None:
    # The child spawns a grandchild that would outlive a naive kill and hold the pipes.
    script = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as caught:
        proc.run([PY, "-c", script], timeout=1)
    assert time.monotonic() - started < 20
    assert "within 1s" in caught.value.message


def test_env_is_overlaid_on_the_current_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_TEST_KEPT", "kept")
    result = proc.run(
        [PY, "-c", "import os; print(os.environ['LAB_TEST_KEPT'], os.environ['LAB_TEST_ADDED'])"],
        timeout=10,
        env={"LAB_TEST_ADDED": "added"},
    )
    assert result.stdout.split() == ["kept", "added"]


def test_non_utf8_output_is_replaced_not_raised() -> None:
    result = proc.run(
        [PY, "-c", "import sys; sys.stdout.buffer.write(b'ok \\xff\\xfe end')"], timeout=10
    )
    assert result.stdout.startswith("ok ")
    assert result.stdout.endswith(" end")
    assert "\ufffd" in result.stdout


def test_input_is_passed_on_stdin() -> None:
    result = proc.run(
        [PY, "-c", "import sys; print(sys.stdin.read().upper())"], timeout=10, input="abc"
    )
    assert result.stdout.strip() == "ABC"


def test_missing_tool_is_a_tool_not_found_with_a_hint() -> None:
    with pytest.raises(ToolNotFound) as caught:
        proc.run(["lab-no-such-tool-xyz", "--version"], timeout=5)
    assert "lab-no-such-tool-xyz" in caught.value.message
    assert caught.value.hint and "lab.tools" in caught.value.hint


def test_pasteable_quotes_arguments_and_shows_the_env_overlay() -> None:
    shown = proc.pasteable(
        ["kind", "create", "cluster", "--name", "my lab"], {"KUBECONFIG": "/tmp/k c"}
    )
    assert shown == "KUBECONFIG='/tmp/k c' kind create cluster --name 'my lab'"


def test_local_bin_is_preferred_over_path(tmp_path: Path, fake_bin) -> None:
    fake_bin("labtool", stdout="from PATH\n")
    local = tmp_path / ".lab" / "bin"
    local.mkdir(parents=True)
    proc.set_local_bin(local)
    script = local / "labtool"
    script.write_text(f"#!{PY}\nprint('from .lab/bin')\n")
    script.chmod(0o755)
    assert proc.run(["labtool"], timeout=10).stdout == "from .lab/bin\n"


def test_command_listeners_see_each_command() -> None:
    seen: list[str] = []
    proc.on_command(seen.append)
    try:
        proc.run([PY, "-c", "pass"], timeout=10)
    finally:
        proc._settings.listeners.remove(seen.append)
    assert seen == [proc.pasteable([PY, "-c", "pass"])]


def test_serving_yields_once_ready_and_stops_the_command_after_the_block(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = (
        "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); "
        "print('warming up', flush=True); print('Forwarding from 127.0.0.1:43210', flush=True); "
        "time.sleep(60)"
    )
    argv = (sys.executable, "-c", script, str(pid_file))
    with proc.serving(argv, ready=r"127\.0\.0\.1:(\d+)", timeout=30) as match:
        assert match.group(1) == "43210"
        pid = int(pid_file.read_text())
        assert Path(f"/proc/{pid}").exists()
    assert not Path(f"/proc/{pid}").exists()  # stopped and reaped


def test_serving_a_command_that_exits_first_says_so_with_its_output() -> None:
    argv = (
        sys.executable,
        "-c",
        "print('error: service gitea-http not found'); raise SystemExit(1)",
    )
    with pytest.raises(CommandError) as caught, proc.serving(argv, ready="Forwarding", timeout=30):
        pass
    assert "exited with code 1 before it was ready" in caught.value.message
    assert "service gitea-http not found" in caught.value.render()


def test_serving_a_silent_command_gives_up_after_its_timeout() -> None:
    argv = (sys.executable, "-c", "import time; time.sleep(60)")
    started = time.monotonic()
    with pytest.raises(CommandError) as caught, proc.serving(argv, ready="never", timeout=0.5):
        pass
    assert "did not get ready within 0.5s" in caught.value.message
    assert time.monotonic() - started < 30


def test_a_stream_in_another_thread_is_stopped_by_stop_streams() -> None:
    # What a Ctrl-C during parallel image builds does: the main thread stops them all.
    import threading

    outcome: list[BaseException] = []
    lines: list[str] = []

    def build() -> None:
        try:
            proc.stream(
                ("sh", "-c", "echo started; sleep 60"), timeout=120, on_line=lines.append
            )
        except BaseException as error:  # what the thread saw is the result
            outcome.append(error)

    worker = threading.Thread(target=build)
    worker.start()
    started = time.monotonic()
    while lines != ["started"] and time.monotonic() - started < 10:
        time.sleep(0.05)
    proc.stop_streams()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert [type(error) for error in outcome] == [CommandError]
