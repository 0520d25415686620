"""The agent's configuration file (TOML, parsed with ``tomllib``); see
``meteragent/deploy/meteragent.toml.example``. Secrets are never in it: keys live in the
data directory, written by ``meteragent load-bundle``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path("/etc/meteragent/meteragent.toml")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Config:
    data_dir: Path = Path("/var/lib/meteragent")
    install_root: Path = Path("/opt/meteragent")
    log_level: str = "INFO"
    transport: dict[str, Any] = field(default_factory=lambda: {"kind": "modem"})
    energy: dict[str, Any] = field(default_factory=lambda: {"source": "ade7953"})
    display: dict[str, Any] = field(default_factory=lambda: {"kind": "log"})
    schedule: dict[str, Any] = field(default_factory=dict)

    @property
    def store_path(self) -> Path:
        return self.data_dir / "meter.db"

    @property
    def keys_path(self) -> Path:
        return self.data_dir / "keys.json"

    @property
    def counters_path(self) -> Path:
        return self.data_dir / "counters.json"

    @property
    def signing_key_path(self) -> Path:
        return self.data_dir / "signing.key"

    @property
    def pid_path(self) -> Path:
        return self.data_dir / "meteragent.pid"


_SECTIONS = ("transport", "energy", "display", "schedule")


def parse_config(text: str) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config is not valid TOML: {exc}") from None
    unknown = set(raw) - {"data_dir", "install_root", "log_level", *_SECTIONS}
    if unknown:
        raise ConfigError(f"unknown config keys: {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for key in ("data_dir", "install_root"):
        if key in raw:
            kwargs[key] = Path(str(raw[key]))
    if "log_level" in raw:
        kwargs["log_level"] = str(raw["log_level"]).upper()
    for section in _SECTIONS:
        if section in raw:
            if not isinstance(raw[section], dict):
                raise ConfigError(f"[{section}] must be a table")
            kwargs[section] = dict(raw[section])
    config = Config(**kwargs)
    if config.transport.get("kind", "modem") not in ("modem", "http"):
        raise ConfigError("transport.kind must be 'modem' or 'http'")
    if config.energy.get("source", "ade7953") not in ("ade7953", "simulated"):
        raise ConfigError("energy.source must be 'ade7953' or 'simulated'")
    return config


def load_config(path: Path | None) -> Config:
    if path is None:
        return parse_config(DEFAULT_PATH.read_text()) if DEFAULT_PATH.exists() else Config()
    try:
        return parse_config(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
