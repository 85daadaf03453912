"""rules.yaml: the shop's settings. This module reads the parts every command needs.

Without a rules.yaml, commands that only need the shop's timezone (import, status) use
the defaults below and say nothing; `mailflow init` writes a real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from mailflow.clock import timezone_named
from mailflow.errors import ConfigError, UsageError


@dataclass
class Shop:
    name: str = "My shop"
    url: str = "https://shop.example"
    address: str = ""
    timezone: str = "UTC"
    locale: str = "en"
    currency: str = "EUR"

    @property
    def tz(self) -> ZoneInfo:
        return timezone_named(self.timezone)


@dataclass
class Source:
    path: str
    kind: str | None = None
    format: str | None = None


@dataclass
class Config:
    path: Path
    exists: bool
    shop: Shop = field(default_factory=Shop)
    sources: list[Source] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.path.parent


def load_config(path: Path | str) -> Config:
    path = Path(path)
    if not path.exists():
        return Config(path, exists=False)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected the sections shop, sender, delivery, rules")
    shop_data = data.get("shop") or {}
    shop = Shop(**{k: str(v) for k, v in shop_data.items() if k in Shop.__dataclass_fields__})
    try:
        shop.tz  # noqa: B018 - validates the name now, not at first use
    except UsageError as exc:
        raise ConfigError(f"{path}: shop.timezone: {exc}") from None
    sources = [Source(str(s.get("path")), s.get("kind"), s.get("format"))
               for s in data.get("sources") or [] if isinstance(s, dict) and s.get("path")]
    return Config(path, True, shop, sources, data)
