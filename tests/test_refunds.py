"""Refunds from a canonical (or mapped) export: `refunded_amount` is the money given back so
far; below the total the order keeps its status and gets one partial-refund e-mail, the full
refund another; `0.00` is no refund (issue 14, item 5)."""

from __future__ import annotations

RULES = """\
shop: {name: Savonnerie Test, url: "https://savonnerie-test.example", timezone: Europe/Paris,
       locale: fr, currency: EUR}
sender: {from: "Savonnerie Test <bonjour@savonnerie-test.example>"}
rules:
  - {name: refund, on: order.refunded, template: order_refunded}
"""
HEADER = ("order_id,email,first_name,status,created_at,total,refunded_amount,line_name,"
          "line_quantity,line_price\n")


def orders(mailflow, rows: str, now: str) -> None:
    result = mailflow("import", mailflow.write(f"o-{now[:13]}.csv", HEADER + rows), "--now", now)
    assert result.exit_code == 0, result.stderr


def due(mailflow, now: str) -> list[tuple[str, str]]:
    result = mailflow("send", "--json", "--now", now)
    assert result.exit_code == 0, result.stderr
    return [(m["key"], m["subject"]) for m in result.json()["messages"]]


def test_a_partial_then_a_full_refund_from_a_canonical_export(mailflow):
    assert mailflow("init", mailflow.folder / "p").exit_code == 0
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    mailflow.config.write_text(RULES, encoding="utf-8")
    orders(mailflow, "R-1,ana@example.com,Ana,shipped,2026-03-02 10:00,40.00,0.00,Savon,2,20.00\n"
                     "R-2,bob@example.com,Bob,paid,2026-03-02 10:00,30.00,,Bougie,1,30.00\n",
           "2026-03-03T09:00")
    assert due(mailflow, "2026-03-03T09:00") == []  # 0.00 and empty: no refund

    orders(mailflow, "R-1,ana@example.com,Ana,shipped,2026-03-02 10:00,40.00,\"20,00\",Savon,2,20.00\n",
           "2026-03-04T09:00")
    assert mailflow.scalar("SELECT status FROM orders WHERE id = 'R-1'") == "shipped"
    assert due(mailflow, "2026-03-04T09:00") == [
        ("refund:order:R-1:partially_refunded", "Remboursement partiel de votre commande n° R-1")]
    text = mailflow("preview", "refund", "--order", "R-1", "--format", "text").stdout
    assert "Nous vous avons remboursé 20,00 € sur votre commande n° R-1" in text

    orders(mailflow, "R-1,ana@example.com,Ana,refunded,2026-03-02 10:00,40.00,40.00,Savon,2,20.00\n",
           "2026-03-05T09:00")
    assert due(mailflow, "2026-03-05T09:00") == [
        ("refund:order:R-1:refunded", "Commande n° R-1 remboursée")]
    assert due(mailflow, "2026-03-05T10:00") == []
