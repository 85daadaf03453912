"""A second partial refund, as each platform reports it, gets its own e-mail naming that
refund and the total so far (issue 15 review): Shopify's orders CSV (`Refunded Amount`, the
money given back so far), Shopify's JSON (`refunds[]`, each dated), WooCommerce (`refunds[]`,
undated) and a PrestaShop SQL export mapping a credit-slip total onto `refunded_amount`.

Each starts from a fixture of tests/fixtures/decisions/ (SOURCES.md) and changes only what
the platform would change for the next refund, in a copy written here.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from decisions_shop import FIXTURES, Shop
from test_refunds import mails, only

MAPPING = Path(__file__).parent.parent / "examples" / "prestashop" / "mapping.yaml"
SEND = "would_send"


@pytest.fixture
def shop(mailflow, monkeypatch) -> Shop:
    return Shop(mailflow, monkeypatch)


def variant(shop: Shop, fixture: str, name: str, change: Callable[[str], str], *options: str,
            now: str, encoding: str = "utf-8", exit_code: int = 0) -> None:
    """Import a copy of `fixture` as `name`, changed by `change`."""
    text = (FIXTURES / fixture).read_bytes().decode(encoding)  # CRLF kept as it is
    target = shop.folder / "exports" / name
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(change(text).encode(encoding))
    result = shop.mf("import", target, "--now", now, *options)
    assert result.exit_code == exit_code, (result.stdout, result.stderr)


def refunds(shop: Shop, order_id: str) -> list[tuple]:
    return [tuple(r.values()) for r in shop.mf.query(
        "SELECT seq, amount, total, at, source FROM order_refunds WHERE order_id = ?"
        " ORDER BY seq", (order_id,))]


def keys(shop: Shop, order_id: str) -> list[tuple[str, str]]:
    return [tuple(r.values()) for r in shop.mf.query(
        "SELECT key, status FROM outbox WHERE rule = 'refund' AND subject_id = ? ORDER BY id",
        (order_id,))]


def shopify_refunded(amount: str) -> Callable[[str], str]:
    """#1208's first row with `Refunded Amount` set to `amount` (still partially_refunded)."""
    def change(text: str) -> str:
        rows = list(csv.reader(io.StringIO(text)))
        at = rows[0].index("Refunded Amount")
        for cells in rows[1:]:
            if cells[0] == "#1208" and cells[2]:
                cells[at] = amount
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue()
    return change


def test_shopify_csv_a_second_partial_refund_then_the_rest(shop):
    shop.import_("shopify_orders_export_1.csv", now="2026-05-12T10:00")
    shop.decide("2026-05-12T10:00")
    shop.import_("shopify_orders_export_3.csv", now="2026-05-14T12:00")
    shop.decide("2026-05-14T12:00")
    shop.import_("shopify_orders_export_4.csv", now="2026-05-15T09:00")  # the lip balm: 6.50
    assert shop.decide("2026-05-15T09:00")[0] == {"#1208": [("refund", SEND, None)]}
    # the afternoon: the cream goes back too (24.50), the order still goes on
    variant(shop, "shopify_orders_export_4.csv", "orders_export_4b.csv", shopify_refunded("31.00"),
            now="2026-05-15T15:00")
    assert shop.decide("2026-05-15T15:00") == ({"#1208": [("refund", SEND, None)]}, {})
    # the same afternoon export again: nothing
    variant(shop, "shopify_orders_export_4.csv", "orders_export_4c.csv", shopify_refunded("31.00"),
            now="2026-05-15T16:00")
    assert shop.decide("2026-05-15T16:00") == ({}, {})
    shop.import_("shopify_orders_export_5.csv", now="2026-05-16T09:00")  # the rest: 42.40
    assert shop.decide("2026-05-16T09:00") == ({"#1208": [("refund", SEND, None)]}, {})

    assert refunds(shop, "#1208") == [(1, "6.50", "6.50", "2026-05-15T07:00:00Z", "import"),
                                      (2, "24.50", "31.00", "2026-05-15T13:00:00Z", "import")]
    assert keys(shop, "#1208") == [("refund:order:#1208:partially_refunded", "sent"),
                                   ("refund:order:#1208:partially_refunded:2", "sent"),
                                   ("refund:order:#1208:refunded", "sent")]
    found = mails(shop.mf)
    first = only(found, "refund:order:#1208:partially_refunded")[1]
    second = only(found, "refund:order:#1208:partially_refunded:2")[1]
    full = only(found, "refund:order:#1208:refunded")[1]
    assert "Nous vous avons remboursé 6,50 € sur votre commande #1208" in first
    assert "Nous vous avons remboursé 24,50 € sur votre commande #1208" in second
    assert "cela fait 31,00 € remboursés à ce jour" in second
    assert "Nous avons remboursé votre commande #1208 du 11 mai 2026 : 11,40 €" in full
    assert "Avec les 31,00 € remboursés précédemment, 42,40 € vous ont été remboursés" in full


def shopify_second_refund(text: str) -> str:
    data = json.loads(text)
    order = data["orders"][0]
    order["updated_at"] = "2026-05-15T16:01:00+02:00"
    order["refunds"].append({
        "id": 5920115350001, "created_at": "2026-05-15T16:00:00+02:00",
        "processed_at": "2026-05-15T16:00:00+02:00", "note": "Crème mains: flacon fendu",
        "order_id": order["id"], "restock": False,
        "transactions": [{"amount": "10.00", "kind": "refund", "status": "success"}]})
    return json.dumps(data)


def test_shopify_json_a_second_refund_is_dated_by_it(shop):
    shop.import_("shopify_orders_1.json", now="2026-05-12T10:00")
    shop.decide("2026-05-12T10:00")
    shop.import_("shopify_orders_refund.json", now="2026-05-14T10:30")
    assert shop.decide("2026-05-14T10:30")[0]["#1308"] == [("refund", SEND, None)]
    variant(shop, "shopify_orders_refund.json", "orders_refund_2.json", shopify_second_refund,
            now="2026-05-15T17:00")
    assert shop.decide("2026-05-15T17:00")[0]["#1308"] == [("refund", SEND, None)]
    assert refunds(shop, "#1308") == [(1, "6.50", "6.50", "2026-05-14T08:00:00Z", "export"),
                                      (2, "10.00", "16.50", "2026-05-15T14:00:00Z", "export")]
    text = only(mails(shop.mf), "refund:order:#1308:partially_refunded:2")[1]
    assert "Nous vous avons remboursé 10,00 € sur votre commande #1308" in text
    assert "cela fait 16,50 € remboursés à ce jour" in text
    # the older pull's page again (the webhooks may come out of order): nothing
    shop.import_("shopify_orders_refund.json", now="2026-05-15T18:00")
    assert "#1308" not in shop.decide("2026-05-15T18:00")[0]


def woocommerce_second_refund(text: str) -> str:
    data = json.loads(text)
    data[0]["refunds"].insert(0, {"id": 2125, "reason": "Savon cassé", "total": "-4.00"})
    data[0]["date_modified"] = "2026-05-15T11:00:00"
    data[0]["date_modified_gmt"] = "2026-05-15T09:00:00"
    return json.dumps(data)


def test_woocommerce_a_second_refund_gets_its_own_email(shop):
    shop.import_("woocommerce_orders_1.json", now="2026-05-12T10:00")
    shop.decide("2026-05-12T10:00")
    shop.import_("woocommerce_orders_refund.json", now="2026-05-14T11:30")
    assert shop.decide("2026-05-14T11:30")[0]["2108"] == [("refund", SEND, None)]
    variant(shop, "woocommerce_orders_refund.json", "orders_refund_2.json",
            woocommerce_second_refund, now="2026-05-15T11:30")
    assert shop.decide("2026-05-15T11:30")[0]["2108"] == [("refund", SEND, None)]
    assert refunds(shop, "2108") == [(1, "6.50", "6.50", "2026-05-14T09:30:00Z", "import"),
                                     (2, "4.00", "10.50", "2026-05-15T09:30:00Z", "import")]
    text = only(mails(shop.mf), "refund:order:2108:partially_refunded:2")[1]
    assert "Nous vous avons remboursé 4,00 € sur votre commande n° 2108" in text
    assert "cela fait 10,50 € remboursés à ce jour" in text


def with_refunds(refunded: dict[str, str]) -> Callable[[str], str]:
    """A `Montant remboursé` column (the order's credit slips, summed by the SQL query)."""
    def change(text: str) -> str:
        lines = text.split("\r\n")
        lines[0] += ";Montant remboursé"
        for i, line in enumerate(lines[1:], 1):
            if line:
                lines[i] += ";" + refunded.get(line.split(";", 1)[0], "")
        return "\r\n".join(lines)
    return change


def test_prestashop_credit_slips_mapped_as_refunded_amount(shop):
    mapping = shop.folder / "mapping.yaml"
    mapping.write_text(MAPPING.read_text(encoding="utf-8").replace(
        "  line_price: Prix unitaire\n",
        "  line_price: Prix unitaire\n  refunded_amount: Montant remboursé\n"), encoding="utf-8")
    options = ("--mapping", str(mapping))
    variant(shop, "prestashop_orders_1.csv", "ps_1.csv", with_refunds({}), *options,
            now="2026-05-12T10:00", encoding="cp1252", exit_code=1)  # 1: no consent column
    shop.decide("2026-05-12T10:00")
    # 3099 (Expédié, 40,40): a credit slip of 5,00, then one more of 7,00
    variant(shop, "prestashop_orders_2.csv", "ps_2.csv", with_refunds({"3099": "5,00"}),
            *options, now="2026-05-13T09:30", encoding="cp1252", exit_code=1)
    assert shop.decide("2026-05-13T09:30")[0]["3099"] == [("refund", SEND, None)]
    variant(shop, "prestashop_orders_2.csv", "ps_3.csv", with_refunds({"3099": "12,00"}),
            *options, now="2026-05-14T09:30", encoding="cp1252", exit_code=1)
    assert shop.decide("2026-05-14T09:30")[0]["3099"] == [("refund", SEND, None)]
    assert [r[:3] for r in refunds(shop, "3099")] == [(1, "5.00", "5.00"), (2, "7.00", "12.00")]
    text = only(mails(shop.mf), "refund:order:3099:partially_refunded:2")[1]
    assert "Nous vous avons remboursé 7,00 € sur votre commande n° 3099" in text
