"""A fake PrestaShop Webservice: `/api/<resource>` as devdocs.prestashop-project.org describes
it (tests/fixtures/api/prestashop/SOURCES.md): the key as the HTTP Basic user with an
empty password, JSON output only, `display`, `filter[field]` (literal, `[a|b]`, `[A,B]`,
`>[…]`, `<[…]`; a date field only with `date=1`), `sort=[field_ASC]`, `limit=[offset,]count`,
`[]` for an empty list and the `{"errors": [...]}` document for what it refuses. Entries are
those of tests/fixtures/api/prestashop/*.json."""

from __future__ import annotations

import copy
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from fakes.server import Answer, FakeShop, Request, json_answer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "api" / "prestashop"
KEY = "UCCLLQ9N2ARSHWCXLT74KUKSSK34BFKX"
RESOURCES = ("orders", "order_states", "customers", "carts", "products", "currencies", "languages")
DATES = ("date_add", "date_upd", "invoice_date", "delivery_date", "newsletter_date_add")
SHOP_OFFSET = timedelta(hours=1)  # the shop's local time (Europe/Paris in March) against UTC
_FILTER = re.compile(r"filter\[(\w+)\]")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def errors(*said: tuple[int, str]) -> dict:
    return {"errors": [{"code": code, "message": message} for code, message in said]}


class FakePrestaShop(FakeShop):
    def __init__(self, **data: list[dict]) -> None:
        super().__init__()
        self.data = {name: data[name] if name in data else fixture(name)[name]
                     for name in RESOURCES}

    # --- what a test changes between two pages --------------------------------------------

    def local_now(self) -> str:
        return (self.now + SHOP_OFFSET).strftime("%Y-%m-%d %H:%M:%S")

    def entry(self, resource: str, entry_id: int) -> dict:
        return next(e for e in self.data[resource] if e["id"] == entry_id)

    def modify(self, resource: str, entry_id: int, **fields: Any) -> dict:
        entry = self.entry(resource, entry_id)
        entry.update(fields, date_upd=self.local_now())
        return entry

    def create(self, resource: str, like: int, new_id: int, **fields: Any) -> dict:
        entry = copy.deepcopy(self.entry(resource, like))
        entry.update(fields, id=new_id, date_add=self.local_now(), date_upd=self.local_now())
        self.data[resource].append(entry)
        return entry

    def delete(self, resource: str, entry_id: int) -> None:
        self.data[resource].remove(self.entry(resource, entry_id))

    # --- answers --------------------------------------------------------------------------

    def refusal(self) -> Answer:
        return json_answer(errors((17, "Authentication key is empty")), 401)

    def server_error(self) -> Answer:
        return json_answer(errors((0, "Internal error")), 500)

    def respond(self, request: Request) -> Answer:
        if request.user != KEY or request.password:
            return self.refusal() if not request.user else json_answer(
                errors((18, "Authentication key does not exist")), 401)
        resource = request.path.removeprefix("/api/")
        if resource not in RESOURCES:
            return json_answer(errors((22, f"Resource of type \"{resource}\" does not exist")), 404)
        params = dict(request.params)
        if params.pop("output_format", None) != "JSON":
            return json_answer(errors((0, "this fake only answers output_format=JSON")), 400)
        try:
            found = self._list(resource, params)
        except ValueError as exc:
            return json_answer(errors((int(exc.args[0]), str(exc.args[1]))), 400)
        if not found:
            return Answer(200, b"[]")
        return json_answer({resource: found})

    def _list(self, resource: str, params: dict[str, str]) -> list[dict]:
        dated = params.pop("date", None) == "1"
        display = params.pop("display", None)
        sort = params.pop("sort", None)
        limit = params.pop("limit", None)
        entries = list(self.data[resource])
        for name in list(params):
            match = _FILTER.fullmatch(name)
            if not match:
                raise ValueError(35, f"unknown parameter {name}")
            field = match.group(1)
            if entries and field not in entries[0]:
                raise ValueError(32, f"This filter does not exist: {field}")
            if field in DATES and not dated:
                raise ValueError(37, f"to filter by {field}, add date=1")
            keep = _test(params.pop(name))
            entries = [e for e in entries if keep(str(e.get(field, "")))]
        if sort:
            for part in reversed(sort.strip("[]").split(",")):
                field, _, way = part.rpartition("_")
                if field in DATES and not dated:
                    raise ValueError(38, f"to sort by {field}, add date=1")
                if way not in ("ASC", "DESC"):
                    raise ValueError(39, f"bad sort {part}")
                entries.sort(key=lambda e, f=field: _key(str(e.get(f, ""))), reverse=way == "DESC")
        if limit:
            offset, _, count = limit.rpartition(",")
            if not count.isdigit() or not (offset or "0").isdigit():
                raise ValueError(40, f"bad limit {limit}")
            entries = entries[int(offset or 0):int(offset or 0) + int(count)]
        if display is None:
            return [{"id": e["id"]} for e in entries]
        if display == "full":
            return copy.deepcopy(entries)
        fields = display.strip("[]").split(",")
        return [{f: copy.deepcopy(e[f]) for f in fields if f in e} for e in entries]


def _key(value: str) -> tuple:
    return (0, int(value), "") if value.isdigit() else (1, 0, value)


def _test(text: str):
    """What a `filter[field]` value keeps: literal, `[a|b]`, `[A,B]`, `>[v]`, `<[v]`, `![v]`."""
    if text[:1] in "<>!" and text[1:2] == "[":
        op, inner = text[0], text[2:-1]
        values = inner.split("|")
        if op == "!":
            return lambda v: v not in values
        return (lambda v: _key(v) > _key(inner)) if op == ">" else (lambda v: _key(v) < _key(inner))
    if not (text.startswith("[") and text.endswith("]")):
        return lambda v: v.lower() == text.lower()
    inner = text[1:-1]
    if "," in inner:
        low, high = inner.split(",", 1)
        return lambda v: _key(low) <= _key(v) <= _key(high)
    values = [x.lower() for x in inner.split("|")]
    return lambda v: v.lower() in values
