"""`.lab/state.json`: generated credentials and deployment facts.

Written atomically (temp file + rename) with mode 0600, because it holds secrets.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from lab.errors import LabError

STATE_FILE = "state.json"


class State(MutableMapping[str, Any]):
    """A JSON object on disk; call `save()` after changing it."""

    def __init__(self, path: Path, data: dict[str, Any] | None = None) -> None:
        self.path = path
        self._data: dict[str, Any] = data or {}

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
        return cls(path, data)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-", suffix=".json")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self._data, handle, indent=2, sort_keys=True)
                handle.write("\n")
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def secret(self, key: str, length: int = 32) -> str:
        """The generated secret `key`, created once per lab and kept."""
        secrets_ = self._data.setdefault("secrets", {})
        if key not in secrets_:
            secrets_[key] = secrets.token_urlsafe(length)
        value: str = secrets_[key]
        return value

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)
