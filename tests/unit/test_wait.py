"""lab.wait: deadlines, progress lines and the last observation on timeout."""

from __future__ import annotations

import pytest

from lab import wait
from lab.errors import LabError, WaitTimeout


def test_returns_as_soon_as_done() -> None:
    looks = iter([wait.Observation(False, "0/2 ready"), wait.Observation(True, "2/2 ready")])
    result = wait.until("pods", lambda: next(looks), timeout=5, interval=0.01)
    assert result.seen == "2/2 ready"


def test_timeout_carries_the_last_observation() -> None:
    with pytest.raises(WaitTimeout) as caught:
        wait.until(
            "argocd-server",
            lambda: wait.Observation(False, "1/2 replicas"),
            timeout=0.2,
            interval=0.05,
        )
    assert "argocd-server" in caught.value.message
    assert caught.value.last_observation == "1/2 replicas"
    assert "1/2 replicas" in caught.value.render()


def test_lab_errors_while_looking_mean_not_yet() -> None:
    calls = []

    def look() -> wait.Observation:
        calls.append(1)
        if len(calls) < 3:
            raise LabError("deployment not found")
        return wait.Observation(True, "found")

    assert wait.until("deployment", look, timeout=5, interval=0.01).done


def test_progress_is_reported_while_waiting() -> None:
    lines: list[str] = []
    with pytest.raises(WaitTimeout):
        wait.until(
            "gitea",
            lambda: wait.Observation(False, "503"),
            timeout=0.3,
            interval=0.02,
            report=lines.append,
            report_every=0.1,
        )
    assert lines and all("waiting for gitea" in line and "503" in line for line in lines)


def test_a_failed_observation_stops_at_once_with_what_was_seen() -> None:
    calls = []

    def look() -> wait.Observation:
        calls.append(1)
        return wait.Observation(False, "backend-v2: progress deadline exceeded", failed=True)

    with pytest.raises(LabError) as caught:
        wait.until("backend-v2 to roll out", look, timeout=30, interval=0.01)
    assert len(calls) == 1
    assert not isinstance(caught.value, WaitTimeout)
    assert "backend-v2 to roll out" in caught.value.message
    assert "progress deadline exceeded" in caught.value.message


def test_the_pause_grows_by_the_backoff_up_to_its_ceiling() -> None:
    pauses: list[float] = []
    looks = iter([False] * 5 + [True])

    wait.until(
        "the fifth look",
        lambda: wait.Observation(next(looks), "seen"),
        timeout=60,
        interval=0.1,
        backoff=2.0,
        max_interval=0.5,
        sleep=pauses.append,
    )

    assert pauses == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])


def test_a_failed_observation_gives_its_own_hint() -> None:
    with pytest.raises(LabError) as caught:
        wait.until(
            "a merge",
            lambda: wait.Observation(False, "closed", failed=True, hint="reopen it"),
            timeout=60,
            hint="the general advice",
            sleep=lambda _: None,
        )
    assert caught.value.message == "gave up waiting for a merge: closed"
    assert caught.value.hint == "reopen it"
