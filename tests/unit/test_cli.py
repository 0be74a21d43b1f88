"""lab.cli.run_task: the one place that turns failures into messages and exit codes."""

from __future__ import annotations

import pytest

from lab import cli
from lab.errors import LabError


def _boom(error: BaseException):
    def body(ctx: cli.Context) -> None:
        raise error

    return body


def test_lab_error_renders_once_with_hint_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.run_task("t", _boom(LabError("the registry is down", hint="run lab.up")))
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert err.count("the registry is down") == 1
    assert "hint: run lab.up" in err
    assert "Traceback" not in err


def test_ctrl_c_exits_130(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.run_task("t", _boom(KeyboardInterrupt()))
    assert caught.value.code == 130
    assert "re-run the same command to resume" in capsys.readouterr().err


def test_unexpected_error_hides_the_traceback_unless_debug(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.run_task("t", _boom(ZeroDivisionError("oops")))
    assert caught.value.code == 3  # a bug, told apart from a user's mistake (1)
    err = capsys.readouterr().err
    assert "unexpected ZeroDivisionError: oops" in err and "--debug" in err
    assert "Traceback" not in err
    with pytest.raises(SystemExit):
        cli.run_task("t", _boom(ZeroDivisionError("oops")), debug=True)
    assert "Traceback" in capsys.readouterr().err


def test_a_successful_task_returns_normally() -> None:
    seen = []
    cli.run_task("t", lambda ctx: seen.append(ctx.config.cluster_name))
    assert seen == ["lab"]
