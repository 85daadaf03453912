"""YAML as mailflow reads it (rules.yaml, mapping files): a node tree that keeps its line
numbers, and typed values whose every error names `FILE:LINE` and the nearest valid word."""

from __future__ import annotations

import re
from datetime import timedelta
from difflib import get_close_matches
from pathlib import Path

import yaml

from mailflow.clock import parse_duration
from mailflow.errors import ConfigError


def compose_yaml(path: Path, shown: str) -> yaml.Node | None:
    """The YAML node tree (which keeps line numbers), or a ConfigError naming `shown:LINE`."""
    try:
        return yaml.compose(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{shown}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None


def nearest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """` (did you mean '…'?)`, else the valid words: the end of a message about `word`."""
    close = get_close_matches(str(word), list(choices), n=1, cutoff=0.5)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (expected one of: {', '.join(choices)})" if choices else ""


class Reader:
    """Typed values of a YAML node tree; every error is a ConfigError naming FILE:LINE.
    An entry is (node, value): the node for its line, the value as YAML reads it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, node: yaml.Node, message: str) -> ConfigError:
        return ConfigError(f"{self.path.name}:{node.start_mark.line + 1}: {message}")

    def mapping(self, node: yaml.Node, where: str, allowed: tuple[str, ...]) -> dict[str, tuple]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{where} should be a set of `key: value` lines")
        found: dict[str, tuple] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key not in allowed:
                raise self.fail(key_node, f"unknown key {key!r} in {where}" + nearest(key, allowed))
            if key in found:
                raise self.fail(key_node, f"{key!r} appears twice in {where}")
            found[key] = (value_node, yaml.safe_load(yaml.serialize(value_node)))
        return found

    def text(self, entry: tuple, where: str) -> str:
        node, value = entry
        if value is None or isinstance(value, dict | list):
            raise self.fail(node, f"{where} needs a single value")
        return str(value)

    def duration(self, entry: tuple, where: str) -> timedelta:
        try:
            return parse_duration(entry[1])
        except ValueError as exc:
            raise self.fail(entry[0], f"{where}: {exc}") from None

    def per(self, entry: tuple, where: str, pattern: re.Pattern, example: str) -> tuple:
        match = pattern.match(str(entry[1]))
        if not match:
            raise self.fail(entry[0], f"{where} {entry[1]!r}: write it like {example!r}")
        window = match.group(2)
        if window.isalpha():  # "200/h", "1 per d": one of that unit
            window = f"1{window}"
        try:
            return int(match.group(1)), parse_duration(window)
        except ValueError as exc:
            raise self.fail(entry[0], f"{where}: {exc}") from None

    def whole(self, entry: tuple, where: str, lowest: int, highest: int) -> int:
        node, value = entry
        if isinstance(value, str) and value.strip().isdigit():  # port: "587"
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
            raise self.fail(node, f"{where} {value!r}: a whole number from {lowest} to {highest}")
        return value

    def choice(self, entry: tuple, where: str, choices: tuple[str, ...]) -> str:
        value = str(entry[1])
        if value not in choices:
            raise self.fail(entry[0], f"{where} {value!r} is not valid" + nearest(value, choices))
        return value
