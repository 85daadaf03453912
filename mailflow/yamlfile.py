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

LONGEST_WINDOW = timedelta(days=3660)  # after, expire_after, cap windows…: ten years
MAX_BYTES = 1 << 20  # a rules.yaml is a few KB: more is a mistake, or an attack
MAX_VALUES = 20_000  # values once aliases are expanded (the starter's has about 300)


def compose_yaml(path: Path, shown: str) -> yaml.Node | None:
    """The YAML node tree (which keeps line numbers), or a ConfigError naming `shown:LINE`:
    also for a file too big, not UTF-8, or whose aliases expand beyond MAX_VALUES."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(f"{shown}:1: the file is {size / 1e6:.1f} MB, more than a rules or"
                              f" mapping file ever needs ({MAX_BYTES >> 10} KB at most)")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read: {exc.strerror}") from None
    text = _utf8(data, shown)
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{shown}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise ConfigError(f"{shown}: not valid YAML: nested too deeply") from None
    if root is not None:
        _expanded_size(root, shown, {}, set())
    return root


def _utf8(data: bytes, shown: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4096]:
        raise ConfigError(f"{shown}:1: UTF-16 text: save the file as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start]
        guess = " (Windows-1252, as Excel or Notepad save it?)" if byte >= 0x80 else ""
        raise ConfigError(f"{shown}:{line}: not UTF-8 text: byte 0x{byte:02x}{guess}; save the"
                          " file as UTF-8") from None


def _expanded_size(node: yaml.Node, shown: str, sizes: dict[int, int], open_: set[int]) -> int:
    """How many values `node` stands for once every alias is expanded (each node counted
    once per use: a YAML alias bomb is a few lines that expand to billions)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        raise ConfigError(f"{shown}:{node.start_mark.line + 1}: an alias refers to the value"
                          " that holds it: it never ends")
    open_.add(key)
    total = 1
    if isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_size(child, shown, sizes, open_) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total += sum(_expanded_size(k, shown, sizes, open_) + _expanded_size(v, shown, sizes, open_)
                     for k, v in node.value)
    open_.discard(key)
    if total > MAX_VALUES:
        raise ConfigError(f"{shown}:{node.start_mark.line + 1}: its aliases expand to more than"
                          f" {MAX_VALUES:,} values: write the values out (is this a YAML alias"
                          " bomb?)")
    sizes[key] = total
    return total


def nearest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """` (did you mean '…'?)`, else the valid words: the end of a message about `word`."""
    close = get_close_matches(str(word), list(choices), n=1, cutoff=0.5)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (expected one of: {', '.join(choices)})" if choices else ""


def _shown(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


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

    def duration(self, entry: tuple, where: str, *, shortest: timedelta = timedelta(0),
                 longest: timedelta = LONGEST_WINDOW) -> timedelta:
        """A duration within [shortest, longest]: ten years at most by default, so that every
        date a rule computes from it stays a date."""
        try:
            value = parse_duration(entry[1])
        except ValueError as exc:
            raise self.fail(entry[0], f"{where}: {exc}") from None
        if value > longest:
            raise self.fail(entry[0], f"{where}: {entry[1]!r} is longer than {_shown(longest)}")
        if value < shortest:
            raise self.fail(entry[0], f"{where}: {entry[1]!r} is shorter than {_shown(shortest)}")
        return value

    def per(self, entry: tuple, where: str, pattern: re.Pattern, example: str) -> tuple:
        match = pattern.match(str(entry[1]))
        if not match:
            raise self.fail(entry[0], f"{where} {entry[1]!r}: write it like {example!r}")
        window = match.group(2)
        if window.isalpha():  # "200/h", "1 per d": one of that unit
            window = f"1{window}"
        window_entry = (entry[0], window)
        return int(match.group(1)), self.duration(window_entry, where)

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
