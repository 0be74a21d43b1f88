"""lab.state: atomic, private, secrets generated once."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.state import State


def test_state_round_trips_with_mode_0600(tmp_path: Path) -> None:
    state = State.load(tmp_path / ".lab")
    state.registry = "localhost:5002"
    state.byo = {"context": "kind-mine"}
    state.save()
    path = tmp_path / ".lab" / "state.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = State.load(tmp_path / ".lab")
    assert (again.registry, again.byo, again.up) == ("localhost:5002", {"context": "kind-mine"}, False)
    assert again.gitea_admin == "lab-admin"  # the default, never written


def test_keys_of_a_newer_lab_are_kept_and_a_wrong_type_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text('{"up": true, "future_key": [1, 2]}')
    state = State.load(tmp_path)
    state.istio = "1.30.0"
    state.save()
    assert State.load(tmp_path).unknown == {"future_key": [1, 2]}
    assert State.load(tmp_path).up is True
    (tmp_path / "state.json").write_text('{"gitea_token": 42}')
    with pytest.raises(LabError, match="gitea_token is 42"):
        State.load(tmp_path)


def test_secrets_are_generated_once_and_kept(tmp_path: Path) -> None:
    state = State.load(tmp_path)
    first = state.secret("jwt")
    state.save()
    again = State.load(tmp_path)
    assert again.secret("jwt") == first
    assert len(first) >= 32
    assert again.secret("other") != first


def test_a_failed_save_leaves_the_previous_file_intact(tmp_path: Path) -> None:
    state = State.load(tmp_path)
    state.context = "kind-lab"
    state.save()
    state.byo = {"baseline": object()}  # not JSON-serialisable
    with pytest.raises(TypeError):
        state.save()
    assert State.load(tmp_path).context == "kind-lab"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_corrupt_state_is_a_lab_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(LabError) as caught:
        State.load(tmp_path)
    assert "state.json" in caught.value.message
    assert caught.value.hint
