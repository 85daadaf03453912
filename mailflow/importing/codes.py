"""`mailflow codes import FILE --pool NAME`: single-use discount codes into an offer's pool.

Whatever exported them: a CSV whose code column has one of the usual names (Shopify apps'
and Matrixify's `Code`, WooCommerce coupon exports' `post_title` or `Coupon code`, a home-made
`code`), or a plain list, one code per line, without a header. A code the file says was
already used (`Used Count`, `usage_count`… above 0) is left out. One transaction: the file
imports whole or not at all; importing it again adds nothing (every code is unique, in
every pool). See docs/import.md, "Offer codes".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mailflow.clock import iso
from mailflow.errors import NotAnExport, UsageError
from mailflow.importing.columns import Columns
from mailflow.importing.source import open_csv, open_source
from mailflow.records import ExitCode
from mailflow.store import Store

POOL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ALIASES = {
    "code": ("code", "codes", "discount code", "coupon code", "coupon", "code promo",
             "code de réduction", "redeem code", "post_title"),
    "used": ("code used count", "used count", "usage count", "times used", "usage_count",
             "utilisations"),
}
_MAX_LENGTH = 255  # Shopify's limit for a discount code


@dataclass
class CodesReport:
    path: str
    pool: str
    added: int = 0
    already: int = 0  # in this pool already (the same file imported again)
    used: int = 0  # the file says they were used: left out
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {line, reason}
    left: int = 0  # codes of the pool nobody got yet, after the import

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.ATTENTION if self.rejected else ExitCode.OK

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "pool": self.pool, "added": self.added,
                "already": self.already, "used": self.used, "rejected": self.rejected,
                "left": self.left}


def import_codes(store: Store, path: Path, pool: str, now: datetime) -> CodesReport:
    if not POOL_NAME.match(pool):
        raise UsageError(f"--pool {pool!r}: use lower-case letters, digits, - and _ (the name"
                         " a rule's offer.pool gives)")
    source = open_source(path)
    if source.looks_like_json:
        raise NotAnExport(f"{source.name}: a JSON file; codes come as a CSV or a list, one code"
                          " per line")
    report = CodesReport(source.name, pool)
    table = open_csv(source)
    try:
        columns = Columns(table.header, _ALIASES)
        codes: list[tuple[int, str]] = []
        if "code" in columns.at:
            rows = ((line, columns.reader(cells)) for line, cells in table.rows())
            for line, get in rows:
                used = get("used")
                if used and used.isdigit() and int(used) > 0:
                    report.used += 1
                    continue
                _collect(get("code"), line, codes, report)
        elif len(table.header) == 1:  # a plain list: its first line is a code too
            _collect(table.header[0], 1, codes, report)
            for line, cells in table.rows():
                _collect(cells[0], line, codes, report)
        else:
            raise NotAnExport(f"{source.name}:1: no code column (Code, Discount code, Coupon"
                              " code, post_title…) and more than one column: which one holds"
                              " the codes?")
    finally:
        table.close()
    with store.transaction():
        added, known = store.add_codes(pool, codes, iso(now), source.name)
    report.added = added
    for line, code, owner in known:
        if owner == pool:
            report.already += 1
        else:
            report.rejected.append({"line": line, "reason": f"code {code!r} is already in"
                                    f" pool {owner!r}: a code goes to one person only"})
    report.left = store.codes_left(pool)
    return report


def _collect(value: str | None, line: int, codes: list[tuple[int, str]],
             report: CodesReport) -> None:
    code = (value or "").strip().strip('"').strip()
    if not code:
        return
    if any(c.isspace() for c in code) or len(code) > _MAX_LENGTH:
        report.rejected.append({"line": line, "reason": f"{code[:40]!r} is not a code (spaces,"
                                f" or longer than {_MAX_LENGTH} characters)"})
        return
    codes.append((line, code))


def pools_status(store: Store, wanted: dict[str, int]) -> list[dict[str, Any]]:
    """Every pool the store holds or a rule names: codes, given, left, and the rules' warn_below."""
    held = store.pools()
    return [{"pool": pool, **held.get(pool, {"codes": 0, "given": 0, "left": 0}),
             "warn_below": wanted.get(pool)} for pool in sorted({*held, *wanted})]
