"""What an import stores, row for row: a generated set of Shopify exports (three header
vintages, refunds, cancellations, rejected rows, a newer export of the same orders and a
re-import) gives the same dump of every table as the golden file made before the import's
speed work (issue 15, 1). After a deliberate change of what an import stores:
`pytest tests/test_import_dump.py --update-golden`, then read the diff before committing it."""

from __future__ import annotations

import csv
import io
import json
import random
import sqlite3
from pathlib import Path

import pytest

SHOPIFY = Path(__file__).parent / "fixtures" / "shopify"
GOLDEN = Path(__file__).parent / "golden" / "import_dump.txt"
NOW = ("2026-01-15T10:00:00+01:00", "2026-01-20T10:00:00+01:00", "2026-01-21T10:00:00+01:00")
# Not what an import decides: when the schema was made, and how the files looked on disk.
SKIPPED = {"migrations": None, "import_files": None, "order_status_events": {"id"}}


def _header(name: str) -> list[str]:
    return next(csv.reader(io.StringIO((SHOPIFY / name).read_text(encoding="utf-8"))))


H79 = _header("orders_export_devstore_forezia.csv")
H48 = _header("orders_export_48_columns.csv")
TRANSPORTER = _header("shopify_transporter_orders_template.csv")

FINANCIAL = ["paid", "paid", "paid", "pending", "authorized", "partially_paid",
             "partially_refunded", "refunded", "voided", "expired"]
FULFILLMENT = ["fulfilled", "unfulfilled", "partial", "", "fulfilled"]
METHODS = ["Shopify Payments", "Bank Deposit", "Cash on Delivery (COD)", "Virement bancaire",
           "manual", "PayPal Express Checkout", ""]
EMAILS = ["lea.martin@example.com", "Lea.Martin@Example.com", "jose@exämple.fr",
          "not-an-email", "", "  paul@example.org ", '"fred bloggs"@example.com',
          "x@localhost"]
PRODUCTS = [("Mug Bleu", "MUG-B", "12.50"), ("Tasse Rouge", "TAS-R", "9,90"),
            ("Théière", "THE-1", "34.00"), ("Sous-tasse", "", "4.50"),
            ("Plateau", "PLA-2", "1,019.00"), ("", "CUI-3", "3.20")]


def _orders(rng: random.Random, count: int, prefix: str, later: bool = False) -> list[dict]:
    """Each order as its rows' cells by column name; `later`: the same orders some days on."""
    orders = []
    for n in range(count):
        day = 1 + n % 27
        stamp = f"2025-{1 + n % 12:02d}-{day:02d} {8 + n % 12:02d}:{n % 60:02d}:00 +0100"
        financial = FINANCIAL[rng.randrange(len(FINANCIAL))]
        fulfillment = FULFILLMENT[rng.randrange(len(FULFILLMENT))]
        if later and n % 3 == 0:
            financial = {"pending": "paid", "authorized": "paid", "paid": "partially_refunded",
                         "partially_refunded": "refunded"}.get(financial, financial)
            fulfillment = {"unfulfilled": "partial", "partial": "fulfilled",
                           "": "fulfilled"}.get(fulfillment, fulfillment)
        cancelled = (n % 11 == 0) or (later and n % 13 == 0)
        email = EMAILS[rng.randrange(len(EMAILS))] if n % 5 == 0 else \
            f"client{rng.randrange(80)}@example.com"
        items = [PRODUCTS[rng.randrange(len(PRODUCTS))] for _ in range(1 + rng.randrange(4))]
        if later and n % 7 == 0:
            items = items[:-1] or items
        refunded = {"refunded": "52.40", "partially_refunded": "5.00"}.get(financial, "0.00")
        first = {
            "Name": f"{prefix}{1000 + n}", "Email": email, "Financial Status": financial,
            "Paid at": stamp if financial not in ("pending", "authorized", "voided") else "",
            "Fulfillment Status": fulfillment,
            "Fulfilled at": stamp.replace(" 08:", " 18:") if fulfillment == "fulfilled" else "",
            "Accepts Marketing": ["yes", "no", ""][n % 3], "Buyer Accepts Marketing":
                ["true", "false", ""][n % 3], "Currency": "EUR" if n % 9 else "USD",
            "Subtotal": "47.40", "Shipping": "4,90" if n % 4 == 0 else "4.90", "Taxes": "7.88",
            "Total Tax": "7.88", "Total": "52.30", "Discount Amount": "0.00" if n % 6 else "5",
            "Shipping Method": "Colissimo" if n % 2 else "", "Created at": stamp,
            "Processed At": stamp, "Billing Name": ["Léa Martin", "", "Paul", "Jean de la Tour"][n % 4],
            "Shipping Name": "Léa Martin" if n % 3 else "", "Shipping First Name": "Léa",
            "Shipping Last Name": "Martin" if n % 2 else "",
            "Shipping Address1": f"{n % 90 + 1} rue des Lilas" if n % 5 else "",
            "Shipping Street": f"{n % 90 + 1} rue des Lilas", "Shipping City": "Lyon",
            "Shipping Zip": "'69001" if n % 2 else "69002", "Shipping Country": "FR",
            "Shipping Province": "Rhône" if n % 7 == 0 else "",
            "Cancelled at": stamp.replace(" 08:", " 20:") if cancelled else "",
            "Cancelled At": stamp.replace(" 08:", " 20:") if cancelled else "",
            "Payment Method": METHODS[n % len(METHODS)],
            "Payment Terms Name": "Net 7" if n % 17 == 0 else "",
            "Refunded Amount": refunded, "Id": str(5_000_000_000 + n),
            "Shipping line title": "Colissimo" if n % 2 else "",
            "Shipping line price": "4.90" if n % 2 else "",
        }
        rows = []
        for i, (name, sku, price) in enumerate(items):
            line_state = "fulfilled" if fulfillment == "fulfilled" or (
                fulfillment == "partial" and i == 0) else "pending"
            cells = first if i == 0 else {"Name": first["Name"], "Email": email,
                                          "Created at": stamp, "Processed At": stamp}
            rows.append({**cells, "Lineitem name": name, "Lineitem sku": sku,
                         "Lineitem quantity": str(1 + (n + i) % 3), "Lineitem price": price,
                         "Lineitem fulfillment status": line_state if n % 10 else ""})
        orders.append(rows)
    # rows a shop's export really holds that cannot be used
    broken = [dict(orders[1][0], **{"Created at": "", "Processed At": ""}),
              dict(orders[2][0], **{"Lineitem quantity": "two"}),
              dict(orders[3][0], **{"Financial Status": "lost"}),
              dict(orders[4][0], **{"Created at": "yesterday", "Processed At": "yesterday"})]
    for n, row in enumerate(broken, 1):
        orders[n] = [row]
    orders.append(orders[5])  # the same order again, further down the file
    return [row for rows in orders for row in rows]


def _export(path: Path, header: list[str], rows: list[dict]) -> Path:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([row.get(name, "") for name in header] for row in rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def _dump(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        lines = []
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for table in tables:
            if table in SKIPPED and SKIPPED[table] is None:
                continue
            cursor = conn.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cursor.description]
            keep = [i for i, n in enumerate(names) if n not in (SKIPPED.get(table) or ())]
            rows = sorted(json.dumps([row[i] for i in keep], ensure_ascii=False) for row in cursor)
            lines.append(f"== {table} ({', '.join(names[i] for i in keep)}): {len(rows)} rows")
            lines += rows
        return lines
    finally:
        conn.close()


def test_an_import_stores_what_it_stored_before(mailflow, monkeypatch, update_golden):
    monkeypatch.chdir(mailflow.folder)  # the files as the user names them: relative
    rng = random.Random(15)
    files = [_export(Path("orders_79.csv"), H79, _orders(rng, 120, "#")),
             _export(Path("orders_48.csv"), H48, _orders(rng, 90, "#A")),
             _export(Path("transporter.csv"), TRANSPORTER, _orders(rng, 60, "#MA-"))]
    reports = []
    for path in files:
        reports.append(mailflow("import", str(path), "--json", "--now", NOW[0]).json())
    newer = _export(Path("orders_79_later.csv"), H79, _orders(random.Random(15), 120, "#", True))
    reports.append(mailflow("import", str(newer), "--json", "--now", NOW[1]).json())
    before = _dump(mailflow.db)
    again = mailflow("import", str(newer), str(files[0]), "--json", "--now", NOW[2]).json()
    assert _dump(mailflow.db) == before  # each is already imported: nothing changes
    assert [f["skipped"] for f in again["files"]] == ["already imported"] * 2
    # the same rows under another name (a fresh export of the same orders) change nothing
    copy = Path("orders_79_copy.csv")
    copy.write_text(newer.read_text(encoding="utf-8") + "\r\n", encoding="utf-8")
    reports.append(mailflow("import", str(copy), "--json", "--now", NOW[2]).json())
    assert reports[-1]["orders"] == {"inserted": 0, "updated": 0}
    assert reports[-1]["status_changes"] == 0
    actual = [json.dumps(r, ensure_ascii=False, sort_keys=True) for r in reports]
    actual += _dump(mailflow.db)
    text = "\n".join(actual) + "\n"
    if update_golden or not GOLDEN.exists():
        if not update_golden:
            pytest.fail(f"{GOLDEN} is missing: run pytest --update-golden and review it")
        GOLDEN.write_text(text, encoding="utf-8")
    expected = GOLDEN.read_text(encoding="utf-8").splitlines()
    for n, (got, want) in enumerate(zip(actual, expected, strict=False), 1):
        assert got == want, f"{GOLDEN.name}:{n} differs"
    assert len(actual) == len(expected)
