"""The top-level handler shared by every task: set up output, run, render errors.

`tasks.py` stays thin: it parses flags and calls `run_task`. Here a `LabError` becomes one
rendered paragraph and exit 1, Ctrl-C becomes exit 130, and anything else (a bug) becomes
a short message pointing at the log and exit 3 (the traceback only with `--debug`).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from lab import __version__, proc
from lab import config as config_module
from lab.config import Config
from lab.errors import LabError
from lab.ui import UI

log = logging.getLogger("lab")

EXIT_USER_ERROR = 1
EXIT_BUG = 3  # an exception lab did not expect (pre-commit's convention)
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Context:
    """What every lab operation receives: settings and the terminal."""

    config: Config
    ui: UI
    debug: bool = False


class TaskExit(SystemExit):
    """Raised to end a task with an exit code after its message was shown."""


def run_task(
    name: str,
    body: Callable[[Context], Any],
    *,
    overrides: Mapping[str, Any] | None = None,
    verbose: int = 0,
    debug: bool = False,
) -> None:
    """Run one task body with lab's error handling; exits non-zero on failure."""
    debug = debug or os.environ.get("LAB_DEBUG", "") not in ("", "0")
    ui: UI | None = None
    try:
        config = config_module.load(overrides)
        proc.set_local_bin(config.state_path / "bin")
        ui = UI(verbosity=verbose, log_dir=config.state_path / "logs", task=name)
        log.info("task %s started (lab %s)", name, __version__)
        body(Context(config=config, ui=ui, debug=debug))
    except LabError as error:
        _fail(ui, error.render(), EXIT_USER_ERROR, debug)
    except KeyboardInterrupt:
        _fail(ui, "interrupted: re-run the same command to resume", EXIT_INTERRUPTED, debug)
    except TaskExit:
        raise
    except Exception as error:  # the last resort: never a bare traceback without --debug
        log.exception("unexpected error")
        _fail(
            ui,
            f"error: unexpected {type(error).__name__}: {error}\n"
            "  hint: this is a bug in lab; re-run with --debug for the traceback "
            "and report it with the log file",
            EXIT_BUG,
            debug,
        )


def _fail(ui: UI | None, message: str, code: int, debug: bool) -> NoReturn:
    if debug:
        traceback.print_exc()
    if ui is not None:
        ui.error(message)
    else:
        print(message, file=sys.stderr)
    raise TaskExit(code)


def check_project_config(project_dir: Path) -> None:
    """Refuse a malformed invoke.yaml with our own message.

    Invoke parses invoke.yaml itself after importing tasks.py and would crash with a
    YAML traceback; tasks.py calls this at import time to say what is wrong instead.
    """
    import yaml

    for name in ("invoke.yaml", "invoke.yml"):
        path = project_dir / name
        if not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            _exit_early(
                f"error: {path} is not valid YAML{where}: {problem}\n"
                f"  hint: fix {name}, or move it aside to use the defaults"
            )
        if data is not None and not isinstance(data, dict):
            _exit_early(
                f"error: {path} must hold a mapping (e.g. `lab: {{...}}`)\n  hint: fix {name}"
            )
        lab = (data or {}).get("lab")
        if lab is not None and not isinstance(lab, dict):
            _exit_early(
                f"error: `lab:` in {path} must be a mapping of settings\n"
                "  hint: write one `key: value` per line under `lab:`"
            )


def _exit_early(message: str) -> NoReturn:
    print(message, file=sys.stderr)
    raise SystemExit(EXIT_USER_ERROR)
