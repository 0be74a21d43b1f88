"""The only module that starts processes.

Commands are argv tuples (never shell strings), every command has a timeout, and the
pasteable form of a command is what we log and what errors show. Whether a command
that changes something runs at all is `lab.changes`'s to say, not this module's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import CommandError, CommandTimeout, ToolNotFound, tail

log = logging.getLogger("lab.proc")

# Where `invoke lab.tools` installs pinned binaries; preferred over PATH.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Result:
    """What a finished command left behind."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float
    skipped: bool = False  # True when a plan (`lab.changes.Plan`) wrote it down instead

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class _Settings:
    local_bin: Path = PROJECT_ROOT / ".lab" / "bin"
    listeners: list[Callable[[str], None]] = field(default_factory=list)


_settings = _Settings()

# The `stream` commands running now, in any thread: Ctrl-C reaches only the main thread,
# and each command runs in a session of its own, so `stop_streams` ends them.
_streaming: set[subprocess.Popen[bytes]] = set()
_streaming_lock = threading.Lock()


def stop_streams() -> None:
    """Kill every `stream` command still running (their callers then raise)."""
    with _streaming_lock:
        running = list(_streaming)
    for process in running:
        _kill_group(process)


def on_command(listener: Callable[[str], None]) -> None:
    """Call `listener` with each command's pasteable form before it runs (for `-v`)."""
    _settings.listeners.append(listener)


def pasteable(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """The command as a user could paste it into a POSIX shell."""
    prefix = " ".join(f"{key}={shlex.quote(value)}" for key, value in (env or {}).items())
    command = shlex.join(argv)
    return f"{prefix} {command}" if prefix else command


def set_local_bin(path: Path) -> None:
    """Where lab's own pinned tools live (`<state_dir>/bin`)."""
    _settings.local_bin = path


def which(name: str) -> str | None:
    """The executable `name`, preferring lab's own `.lab/bin/` over PATH."""
    local = _settings.local_bin / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local.resolve())
    return shutil.which(name)


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,
    check: bool = True,
    hint: str | None = None,
) -> Result:
    """Run `argv` and capture its output.

    `env` is overlaid on the current environment. A non-zero exit raises `CommandError`
    (unless `check=False`), a timeout kills the whole process group and raises
    `CommandTimeout`, and a missing executable raises `ToolNotFound`.
    """
    argv = tuple(str(arg) for arg in argv)
    if not argv:
        raise ValueError("empty argv")
    shown = pasteable(argv, env)

    full_env = {**os.environ, **env} if env else None
    data = input.encode() if isinstance(input, str) else input
    started = time.monotonic()
    proc = _start(
        argv,
        shown,
        cwd=cwd,
        env=full_env,
        stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = proc.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        duration = time.monotonic() - started
        stderr = _decode(err)
        log.warning("timeout after %.0fs: %s", duration, shown)
        raise CommandTimeout(
            f"{argv[0]} did not finish within {timeout:g}s and was stopped",
            argv=argv,
            returncode=-signal.SIGKILL,
            command=shown,
            output_tail=tail(stderr or _decode(out)),
            hint=hint or "re-run with -vv to see its output; the log under .lab/logs/ has it all",
        ) from None
    except KeyboardInterrupt:
        _kill_group(proc)
        proc.wait()
        raise
    duration = time.monotonic() - started
    result = Result(argv, proc.returncode, _decode(out), _decode(err), duration)
    log.debug("exit %d after %.2fs: %s", result.returncode, duration, shown)
    if result.stdout:
        log.debug("stdout:\n%s", result.stdout.rstrip())
    if result.stderr:
        log.debug("stderr:\n%s", result.stderr.rstrip())
    if check and result.returncode != 0:
        raise CommandError(
            f"{argv[0]} failed with exit code {result.returncode}",
            argv=argv,
            returncode=result.returncode,
            command=shown,
            output_tail=tail(result.stderr or result.stdout),
            hint=hint,
        )
    return result


def stream(
    argv: Sequence[str],
    *,
    timeout: float,
    on_line: Callable[[str], None],
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    hint: str | None = None,
) -> Result:
    """Run `argv`, handing each line of its output (stdout and stderr merged) to `on_line`.

    For long commands whose progress the user should see (an image build). Like `run`:
    a non-zero exit raises `CommandError`, `timeout` bounds the whole run (the process
    group is killed), and Ctrl-C stops it (in another thread: `stop_streams`). If
    `on_line` raises, the command is stopped and the error propagates.
    """
    argv = tuple(str(arg) for arg in argv)
    if not argv:
        raise ValueError("empty argv")
    shown = pasteable(argv, env)
    started = time.monotonic()
    process = _start(
        argv,
        shown,
        cwd=cwd,
        env={**os.environ, **env} if env else None,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    lines = _output_lines(process)
    seen: list[str] = []
    deadline = started + timeout
    with _streaming_lock:
        _streaming.add(process)
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                _kill_group(process)
                process.wait()
                raise CommandTimeout(
                    f"{argv[0]} did not finish within {timeout:g}s and was stopped",
                    argv=argv,
                    returncode=-signal.SIGKILL,
                    command=shown,
                    output_tail=tail("".join(seen)),
                    hint=hint or "the log under .lab/logs/ has its whole output",
                ) from None
            if line is None:
                break
            seen.append(line)
            on_line(line.rstrip("\n"))
        returncode = process.wait()
    except BaseException:  # Ctrl-C, or on_line gave up: leave nothing running
        _kill_group(process)
        process.wait()
        raise
    finally:
        with _streaming_lock:
            _streaming.discard(process)
    output = "".join(seen)
    duration = time.monotonic() - started
    log.debug("exit %d after %.2fs: %s", returncode, duration, shown)
    if returncode != 0:
        raise CommandError(
            f"{argv[0]} failed with exit code {returncode}",
            argv=argv,
            returncode=returncode,
            command=shown,
            output_tail=tail(output),
            hint=hint,
        )
    return Result(argv, returncode, output, "", duration)


def _start(
    argv: tuple[str, ...],
    shown: str,
    *,
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
    stdin: int,
    stderr: int,
) -> subprocess.Popen[bytes]:
    """Start `argv` in its own process group (so a timeout can kill its children too)."""
    executable = which(argv[0]) if os.sep not in argv[0] else argv[0]
    if executable is None:
        raise ToolNotFound(
            f"{argv[0]} is not installed (not in .lab/bin/ nor on PATH)",
            hint=f"install {argv[0]}, or run `invoke lab.tools` to fetch the pinned version",
            command=shown,
        )
    for listener in _settings.listeners:
        listener(shown)
    log.debug("run: %s", shown)
    try:
        return subprocess.Popen(
            (executable, *argv[1:]),
            cwd=cwd,
            env=env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )
    except FileNotFoundError as error:
        raise ToolNotFound(
            f"cannot start {argv[0]}: {error.strerror}",
            hint=f"install {argv[0]} or check the path",
            command=shown,
        ) from error
    except PermissionError as error:
        raise ToolNotFound(
            f"cannot execute {argv[0]}: permission denied",
            hint=f"make {executable} executable (chmod +x)",
            command=shown,
        ) from error


@contextlib.contextmanager
def serving(
    argv: Sequence[str], *, ready: str, timeout: float, hint: str | None = None
) -> Iterator[re.Match[str]]:
    """Keep `argv` running for the `with` block (say `kubectl port-forward`).

    Waits until a line of its output matches the regex `ready` and yields the match;
    on leaving the block, stops the command and its children. If it exits or stays
    silent for `timeout` seconds first, raises `CommandError` with what it printed.
    """
    argv = tuple(str(arg) for arg in argv)
    shown = pasteable(argv)
    process = _start(
        argv, shown, cwd=None, env=None, stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    lines = _output_lines(process)
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = ""  # silent until the deadline
            if not line:
                if line is None:  # its output ended: it exits (or has)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(timeout=5)
                raise CommandError(
                    f"{argv[0]} did not get ready within {timeout:g}s"
                    if process.poll() is None
                    else f"{argv[0]} exited with code {process.returncode} before it was ready",
                    argv=argv,
                    returncode=process.returncode if process.returncode is not None else -1,
                    command=shown,
                    output_tail=tail("".join(seen)),
                    hint=hint,
                )
            seen.append(line)
            log.debug("%s: %s", argv[0], line.rstrip())
            match = re.search(ready, line)
            if match:
                break
        yield match
    finally:
        _kill_group(process)
        process.wait()


def _output_lines(process: subprocess.Popen[bytes]) -> queue.Queue[str | None]:
    """`process`'s output, line by line as it comes, read by a thread of its own; None
    once it ends (so a caller can wait with a deadline)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            lines.put(_decode(raw))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _decode(data: bytes | None) -> str:
    # Tools print whatever bytes they like; never let a stray byte become a traceback.
    return (data or b"").decode("utf-8", errors="replace")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
