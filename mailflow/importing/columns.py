"""Finding columns by name (never by position) and grouping an order's rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from mailflow.records import Rejected


def normalize(name: str) -> str:
    return " ".join(name.replace("\ufeff", "").replace("_", " ").strip().lower().split())


class Columns:
    """Where each field is in a header, given the names each field goes by."""

    def __init__(self, header: list[str], aliases: dict[str, tuple[str, ...]]) -> None:
        positions: dict[str, int] = {}
        for i, name in enumerate(header):
            positions.setdefault(normalize(name), i)
        self.at: dict[str, int] = {}
        for field, names in aliases.items():
            for name in names:
                at = positions.get(normalize(name))
                if at is not None:
                    self.at[field] = at
                    break

    def reader(self, row: list[str]) -> Callable[[str], str | None]:
        """`get(field)`: the stripped cell, or None when empty, absent or `""`."""
        at = self.at
        width = len(row)

        def get(field: str) -> str | None:
            i = at.get(field)
            if i is None or i >= width:
                return None
            value = row[i].strip()
            return value or None

        return get


def group_rows(rows: Iterator[tuple[int, list[str]]], key_at: int,
               what: str) -> Iterator[tuple[int, list[list[str]]] | Rejected]:
    """Consecutive rows that share a key (one order, its line items) as one group."""
    current_key: str | None = None
    start = 0
    group: list[list[str]] = []
    for line, cells in rows:
        key = cells[key_at].strip() if key_at < len(cells) else ""
        if not key:
            if any(c.strip() for c in cells):  # a row of blank cells is no row at all
                yield Rejected(line, f"no {what}")
            continue
        if key != current_key:
            if group:
                yield start, group
            current_key, start, group = key, line, []
        group.append(cells)
    if group:
        yield start, group


def strip_excel_guard(value: str | None) -> str | None:
    """Excel's leading `'` that keeps zip codes and phone numbers as text."""
    if value and value.startswith("'"):
        return value[1:] or None
    return value
