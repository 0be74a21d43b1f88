"""`.lab/state.json`: generated credentials and deployment facts.

Written atomically (temp file + rename) with mode 0600, because it holds secrets.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lab.errors import LabError

STATE_FILE = "state.json"


@dataclass
class State:
    """What the lab keeps between commands; call `save()` after changing it.

    Every key lab writes is a typed field here, so a reader sees the whole of it in one
    place; keys this version does not know (a newer lab's) are kept as they are.
    """

    path: Path
    up: bool = False  # the last lab.up finished
    context: str | None = None  # the kube context lab.up used
    registry: str | None = None  # the registry images are pushed to
    byo: dict[str, Any] | None = None  # your own cluster: its context, baseline, last_up
    cluster_settings: str | None = None  # cluster.settings_hash of the kind cluster made
    kind_network_ours: bool = False  # lab.up made Docker's `kind` network
    istio: str | None = None  # the Istio version installed
    argocd_admin_password: str | None = None
    gitea_admin: str = "lab-admin"  # the Gitea admin's user name
    gitea_token: str | None = None  # its API token (created once)
    secrets: dict[str, str] = field(default_factory=dict)  # generated once per lab
    unknown: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, state_dir: Path) -> State:
        path = state_dir / STATE_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise LabError(
                f"{path} is not valid JSON ({error.msg} at line {error.lineno})",
                hint=f"fix it by hand, or remove it with `invoke lab.down` (a lab without "
                f"state cannot be reused: its generated passwords live in {path})",
            ) from error
        if not isinstance(data, dict):
            raise LabError(f"{path} does not hold a JSON object", hint=f"remove {path}")
        known = {f.name for f in fields(cls)} - {"path", "unknown"}
        values = {key: value for key, value in data.items() if key in known}
        unknown = {key: value for key, value in data.items() if key not in known}
        for key, value in values.items():
            if not _fits(key, value):
                raise LabError(
                    f"{path}: {key} is {value!r}, which lab never writes there",
                    hint=f"fix it by hand, or remove {path} with `invoke lab.down`",
                )
        return cls(path, **values, unknown=unknown)

    def as_json(self) -> dict[str, Any]:
        data = {**self.unknown}
        for item in fields(self):
            if item.name in ("path", "unknown"):
                continue
            value = getattr(self, item.name)
            if value != item.default and value not in ({}, None):
                data[item.name] = value
        return data

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-", suffix=".json")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.as_json(), handle, indent=2, sort_keys=True)
                handle.write("\n")
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def secret(self, key: str, length: int = 32) -> str:
        """The generated secret `key`, created once per lab and kept."""
        if key not in self.secrets:
            self.secrets[key] = secrets.token_urlsafe(length)
        return self.secrets[key]


_TYPES: dict[str, tuple[type, ...]] = {
    "up": (bool,),
    "kind_network_ours": (bool,),
    "byo": (dict,),
    "secrets": (dict,),
}


def _fits(key: str, value: Any) -> bool:
    """Whether `value` is what lab writes under `key` (a string unless said otherwise)."""
    return value is None or isinstance(value, _TYPES.get(key, (str,)))
