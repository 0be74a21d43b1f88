"""Which daemon lab talks to: the docker CLI's rules, read from real files (issue #16.8)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from lab import engine
from lab.errors import LabError


def context(config_dir: Path, name: str, host: str, *, tls: bool = False) -> None:
    """A context laid out as `docker context create` writes it."""
    context_id = hashlib.sha256(name.encode()).hexdigest()
    meta = config_dir / "contexts" / "meta" / context_id
    meta.mkdir(parents=True)
    endpoints = {"docker": {"Host": host, "SkipTLSVerify": False}}
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Endpoints": endpoints}))
    if tls:
        (config_dir / "contexts" / "tls" / context_id / "docker").mkdir(parents=True)


def test_docker_host_wins_over_every_context(tmp_path: Path) -> None:
    context(tmp_path, "colima", "unix:///colima.sock")
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "colima"}))
    environ = {
        "DOCKER_HOST": "tcp://10.0.0.2:2375",
        "DOCKER_CONTEXT": "colima",
        "DOCKER_CONFIG": str(tmp_path),
    }

    assert engine.endpoint(environ) == engine.Endpoint("tcp://10.0.0.2:2375", "DOCKER_HOST")


def test_the_current_context_of_config_json_is_followed(tmp_path: Path) -> None:
    context(tmp_path, "colima", "unix:///home/me/.colima/default/docker.sock")
    (tmp_path / "config.json").write_text(json.dumps({"auths": {}, "currentContext": "colima"}))

    where = engine.endpoint({"DOCKER_CONFIG": str(tmp_path)})

    assert where.host == "unix:///home/me/.colima/default/docker.sock"
    assert str(where) == "unix:///home/me/.colima/default/docker.sock (context colima)"
    assert where.tls_dir is None


def test_docker_context_overrides_the_config_and_finds_its_tls_files(tmp_path: Path) -> None:
    context(tmp_path, "desktop-linux", "unix:///home/me/.docker/desktop/docker.sock")
    context(tmp_path, "remote", "tcp://build.example.test:2376", tls=True)
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "desktop-linux"}))

    where = engine.endpoint({"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "remote"})

    assert where.host == "tcp://build.example.test:2376"
    assert where.tls_dir is not None and where.tls_dir.name == "docker"


def test_no_config_or_the_default_context_means_the_default_socket(tmp_path: Path) -> None:
    assert engine.endpoint({"HOME": str(tmp_path)}).host == engine.DEFAULT_SOCKET
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "default"}))
    where = engine.endpoint({"DOCKER_CONFIG": str(tmp_path)})
    assert where == engine.Endpoint(engine.DEFAULT_SOCKET, "the default socket")


def test_a_broken_config_json_is_ignored_as_the_cli_does(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    assert engine.endpoint({"DOCKER_CONFIG": str(tmp_path)}).host == engine.DEFAULT_SOCKET


def test_a_context_that_does_not_exist_is_named_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "orbstack"}))

    with pytest.raises(LabError) as raised:
        engine.endpoint({"DOCKER_CONFIG": str(tmp_path)})

    assert "'orbstack'" in raised.value.message
    assert "docker context use" in raised.value.message  # what chose it
    assert "docker context ls" in (raised.value.hint or "")
