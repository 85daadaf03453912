"""Whatever bytes land in the exports folder, `mailflow import` answers 0, 1 or 2 and never
crashes; a refused file (2) leaves the store exactly as it was, an accepted one (0, 1) is
recorded whole.

The CLI runs with catch_exceptions=False, and its own guard turns any unexpected exception
into "internal error" on stderr: both count as a failure here. Hypothesis and pytest's
function-scoped fixtures do not mix, so every example gets its own folder from tempfile.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from conftest import PARIS_CONFIG, Mailflow
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NOW = "2026-02-01T12:00"
SEED = ("order_id,email,status,created_at,total,line_sku,line_name,line_quantity,line_price\n"
        "9001,seed@example.com,paid,2026-01-10 10:00,5.00,S-1,Seed,1,5.00\n")
CANONICAL = (
    "order_id", "email", "first_name", "last_name", "locale", "accepts_marketing", "status",
    "created_at", "paid_at", "shipped_at", "delivered_at", "cancelled_at", "currency", "subtotal",
    "shipping", "tax", "discount", "total", "payment_method", "shipping_method", "tracking_number",
    "tracking_url", "carrier", "pickup_point", "line_sku", "line_name", "line_quantity",
    "line_price", "cart_id", "updated_at", "recovery_url",
)
PROPERTY = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


_SEEDED: dict[str, bytes] = {}  # the seeded store's file, made once per test process


def seeded(mailflow: Mailflow) -> None:
    """Give `mailflow` a store that already holds one order (a copy: each example's import is
    all it runs, so a property test tries more examples in its time)."""
    if "db" not in _SEEDED:
        assert mailflow("import", mailflow.write("seed.csv", SEED), "--now", NOW).exit_code == 0
        _SEEDED["db"] = mailflow.db.read_bytes()  # closed: its WAL is in the file
    else:
        mailflow.db.write_bytes(_SEEDED["db"])


def check_import(content: bytes, name: str, *options: str) -> None:
    """Import `content` into a store that already holds one order; check the invariants."""
    with tempfile.TemporaryDirectory() as folder:
        mailflow = Mailflow(Path(folder))
        mailflow.write_config(PARIS_CONFIG)
        seeded(mailflow)
        before = mailflow.dump()
        path = mailflow.write(name, content)
        result = mailflow("import", path, *options, "--now", NOW, "--json")
        assert result.exit_code in (0, 1, 2), result.stderr
        assert "internal error" not in result.stderr
        assert "Traceback" not in result.stderr
        report = json.loads(result.stdout)
        (entry,) = report["files"]
        if result.exit_code == 2:
            assert entry["error"]
            assert result.stderr.strip().splitlines()[-1] == f"error: {entry['error']}"
            assert mailflow.dump() == before
            return
        assert "error" not in entry
        assert (result.exit_code == 1) == bool(entry["rejected"] or entry["warnings"])
        (recorded,) = mailflow.query("SELECT * FROM imports WHERE path = ?", (str(path),))
        assert (recorded["rows"], recorded["rejected"]) == (entry["rows"], len(entry["rejected"]))
        assert mailflow.scalar("SELECT count(*) FROM orders") == 1 + report["orders"]["inserted"]
        again = mailflow("import", path, *options, "--now", "2026-02-02T12:00", "--json")
        assert again.exit_code == 0 and again.json()["files"][0]["skipped"] == "already imported"


@PROPERTY
@given(prefix=st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"{", b"["]),
       body=st.binary(max_size=600))
def test_arbitrary_bytes_never_crash_and_refusals_change_nothing(prefix: bytes, body: bytes):
    check_import(prefix + body, "orders.csv")


_CELL_TEXT = st.text(alphabet=st.sampled_from(list('ab Zé€,;"\t|\n\r\'0123456789-:/.@')), max_size=12)
_DATES = ["2026-01-15 10:00", "2026-03-29 02:30", "2026-10-25 02:30", "15/01/2026 10:00",
          "2025-05-11 09:55:16 -0400", "2026-01-15T10:00:00Z", "31/02/2026", "0001-01-01",
          "9999-12-31T23:59:59-05:00", "hier", ""]
_AMOUNTS = ["12,50", "12.50", "1 234,56", "1.234,56", "1,234.56", "0", "-3", "1e5", "NaN", "€", ""]
_VALUES: dict[str, list[str]] = {
    "order_id": ["1001", "1001", "1002", "A-7", "9001", ""],
    "cart_id": ["c1", "c2", ""],
    "email": ["ana@example.com", "ANA@Example.COM", "zoé@exämple.fr", "not-an-address", ""],
    "status": ["paid", "shipped", "pending_payment", "Paid", "nope", ""],
    "accepts_marketing": ["oui", "no", "1", "maybe", ""],
    "line_quantity": ["1", "2", "2,0", "-1", "1,5", "99999999999999999999", ""],
    **dict.fromkeys(("created_at", "paid_at", "shipped_at", "delivered_at", "cancelled_at",
                     "updated_at"), _DATES),
    **dict.fromkeys(("subtotal", "shipping", "tax", "discount", "total", "line_price"), _AMOUNTS),
}
_ANY = st.sampled_from(sorted({v for values in _VALUES.values() for v in values} | {'""', "Zoé"}))


def _cell(column: str) -> st.SearchStrategy[str]:
    values = _VALUES.get(column)
    if values is None:
        return st.one_of(_ANY, _CELL_TEXT)
    return st.one_of(st.sampled_from(values), st.sampled_from(values), _ANY, _CELL_TEXT)


def _quoted(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"'


@st.composite
def csv_exports(draw: st.DrawFn) -> bytes:
    """A CSV as a shop, a spreadsheet or a clumsy script might write it."""
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    header = draw(st.lists(st.one_of(st.sampled_from(CANONICAL), _CELL_TEXT), min_size=1,
                           max_size=8))
    if draw(st.booleans()):
        header = ["order_id", "created_at", *header]
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        row = [draw(_cell(column)) for column in header]
        cut = draw(st.integers(-2, len(row) + 1))  # ragged rows: too short or too long
        rows.append(row[:cut] if cut < len(row) else row + [draw(_CELL_TEXT)] * (cut - len(row)))
    quoting = draw(st.sampled_from(["minimal", "minimal", "all", "raw"]))

    def render(cell: str) -> str:
        if quoting == "raw":
            return cell
        if quoting == "all" or any(c in cell for c in f'"{delimiter}\r\n'):
            return _quoted(cell)
        return cell

    text = newline.join(delimiter.join(map(render, row)) for row in [header, *rows])
    if draw(st.booleans()):
        text += newline
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    return text.encode(encoding, errors="replace")


@PROPERTY
@given(export=csv_exports())
def test_arbitrary_csv_never_crashes_and_refusals_change_nothing(export: bytes):
    check_import(export, "export.csv")


_JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
                          _ANY)
_JSON_ANY = st.recursive(_JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)


def _json_field(name: str) -> st.SearchStrategy[object]:
    values = _VALUES.get(name)
    return st.one_of(st.sampled_from(values), _JSON_ANY) if values else _JSON_ANY


_JSON_LINE = st.fixed_dictionaries({}, optional={
    "sku": _json_field("line_sku"), "name": _json_field("line_name"),
    "quantity": _json_field("line_quantity"), "price": _json_field("line_price")})
_JSON_ORDER = st.fixed_dictionaries(
    {"order_id": _json_field("order_id"), "created_at": _json_field("created_at")},
    optional={**{f: _json_field(f) for f in CANONICAL if f not in ("order_id", "created_at")},
              "lines": st.one_of(st.lists(_JSON_LINE, max_size=3), _JSON_ANY)})


@PROPERTY
@given(orders=st.lists(st.one_of(_JSON_ORDER, _JSON_ANY), max_size=5), wrapped=st.booleans())
def test_arbitrary_json_never_crashes_and_refusals_change_nothing(orders: list, wrapped: bool):
    document = {"orders": orders} if wrapped else orders
    check_import(json.dumps(document, indent=1).encode(), "orders.json")
