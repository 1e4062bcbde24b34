"""What a local instance keeps on the host, under <repo>/.cache/local/<environment>/.

- config.json: how the instance was brought up (images, ports, settings), so
  that rollout, rollback, status and down need no flags;
- secrets.json (mode 0600): generated database passwords and the API keys;
- history.json: the current and the previous service image, for rollback.
Everything else (the Caddyfile, certificates, the secrets the services read)
lives in the engine: configs, volumes and secrets.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from infra.standins import Source
from infra.topology import LOCAL_POSTGRES_PORT, SERVICE_SECRET_SETTINGS, Images

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE_ROOT = REPO_ROOT / ".cache" / "local"

LocalEnvironment = Literal["local", "test"]
# official: the images users get (a registry must be reachable);
# debian: stand-ins built here from Debian packages (infra/local/images.py).
ImageSource = Literal["official", "debian"]

# Settings with credentials that the service may get from a local `.env`: all its
# secret settings but the database's, which the local topology makes itself.
API_KEY_SETTINGS = tuple(name for name in SERVICE_SECRET_SETTINGS if name != "DATABASE_URL")
# Generated on the first `up`: the local Postgres superuser's and the service role's.
DATABASE_PASSWORDS = ("POSTGRES_PASSWORD", "APP_DB_PASSWORD")


class StateError(Exception):
    """The state directory is missing or holds something unreadable."""


@dataclass(frozen=True)
class LocalConfig:
    environment: LocalEnvironment = "local"
    image_source: ImageSource = "official"
    http_port: int = 8080
    postgres_port: int = LOCAL_POSTGRES_PORT
    subnet_octet: int = 231
    replicas: int = 2
    workers: int = 2
    # Every image but the service's, which each `up` or rollout chooses (the one record
    # of images, infra.topology.Images, with `service` left empty).
    images: Images = field(default_factory=lambda: Images(service=""))
    # Which sources the stand-ins serve (those without a key).
    sample_sources: tuple[Source, ...] = ()
    # Non-secret service settings (LOG_LEVEL, RATE_LIMIT, ...).
    settings: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LocalConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise StateError(f"config.json: unknown keys {', '.join(unknown)}")
        values = dict(data)
        values["sample_sources"] = tuple(values.get("sample_sources") or ())
        if "images" in values:
            images = values["images"]
            if not isinstance(images, Mapping) or set(images) - set(Images.__dataclass_fields__):
                raise StateError(f"config.json: images must be an object of {Images.__name__}")
            values["images"] = Images(**images)
        return cls(**values)


@dataclass(frozen=True)
class History:
    current_image: str | None = None
    previous_image: str | None = None


def _write_private(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON readable by the owner only, replacing the file atomically."""
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    temporary.replace(path)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise StateError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(data, dict):
        raise StateError(f"{path}: expected a JSON object")
    return data


class LocalState:
    def __init__(self, environment: LocalEnvironment, root: Path = STATE_ROOT) -> None:
        self.environment = environment
        self.directory = root / environment

    def prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)

    # config.json
    def save_config(self, config: LocalConfig) -> None:
        data = asdict(config)
        data["settings"] = dict(config.settings)
        _write_private(self.directory / "config.json", data)

    def load_config(self) -> LocalConfig:
        path = self.directory / "config.json"
        if not path.exists():
            raise StateError(
                f"no local topology {self.environment!r} here ({path} is missing): "
                f"run `ops local --env {self.environment} up` first"
            )
        return LocalConfig.from_json(_read(path))

    # secrets.json
    def secrets(self) -> dict[str, str]:
        """Generated passwords (created once) and the API keys last given."""
        path = self.directory / "secrets.json"
        stored = (
            {str(key): str(value) for key, value in _read(path).items()} if path.exists() else {}
        )
        changed = False
        for name in DATABASE_PASSWORDS:
            if not stored.get(name):
                stored[name] = secrets.token_urlsafe(24)
                changed = True
        if changed:
            _write_private(path, stored)
        return stored

    def set_api_keys(self, keys: Mapping[str, str]) -> None:
        """Replace the stored API keys; a key left out turns its source off."""
        stored = self.secrets()
        for name in API_KEY_SETTINGS:
            stored.pop(name, None)
        stored.update(
            {name: value for name, value in keys.items() if name in API_KEY_SETTINGS and value}
        )
        _write_private(self.directory / "secrets.json", stored)

    def forget_database_passwords(self) -> None:
        """After the database volume is gone: the next `up` makes new ones."""
        path = self.directory / "secrets.json"
        if path.exists():
            kept = {name: value for name, value in _read(path).items() if name in API_KEY_SETTINGS}
            _write_private(path, kept)

    # history.json
    def history(self) -> History:
        path = self.directory / "history.json"
        if not path.exists():
            return History()
        data = _read(path)
        return History(
            current_image=data.get("current_image"), previous_image=data.get("previous_image")
        )

    def record_rollout(self, image_id: str) -> History:
        before = self.history()
        if before.current_image == image_id:
            return before
        after = History(current_image=image_id, previous_image=before.current_image)
        _write_private(self.directory / "history.json", asdict(after))
        return after
