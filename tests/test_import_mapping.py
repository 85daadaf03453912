"""`import --mapping`: the PrestaShop example, and what a wrong mapping or export does."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[1] / "examples" / "prestashop"
MAPPING = (EXAMPLE / "mapping.yaml").read_text(encoding="utf-8")
ORDERS = (EXAMPLE / "orders.csv").read_bytes()


def csv_text() -> str:
    return ORDERS.decode("cp1252")


def write_export(mailflow, text: str, name: str = "orders.csv") -> Path:
    return mailflow.write(name, text.encode("cp1252"))


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_the_example_is_what_shops_really_export():
    assert b"\r\n" in ORDERS and ORDERS.count(b"\r\n") == ORDERS.count(b"\n")
    assert ORDERS.split(b"\r\n")[0].count(b";") == 16
    assert "œ".encode("cp1252") in ORDERS  # Windows-1252, not Latin-1 nor UTF-8
    assert b"52,40" in ORDERS and b"22/03/2026 14:05" in ORDERS


def test_prestashop_example_imports(mailflow):
    export = mailflow.write("orders.csv", ORDERS)
    mapping = mailflow.write("mapping.yaml", MAPPING)

    result = mailflow("import", export, "--mapping", mapping, "--json")

    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert (report["files"][0]["format"], report["files"][0]["kind"]) == ("mapping", "orders")
    assert report["files"][0]["rows"] == 6
    assert report["orders"] == {"inserted": 5, "updated": 0}
    assert report["lines"] == 6
    orders = {o["id"]: o for o in mailflow.query("SELECT * FROM orders")}
    assert {k: o["status"] for k, o in orders.items()} == {
        "1041": "paid", "1042": "shipped", "1043": "pending_payment", "1044": "delivered",
        "1045": "cancelled"}
    assert (orders["1041"]["total"], orders["1041"]["shipping"], orders["1041"]["currency"]) == (
        "52.40", "4.90", "EUR")
    assert orders["1043"]["total"] == "1203.90"
    assert orders["1041"]["created_at"] == "2026-03-22T13:05:00Z"  # winter time in Paris
    assert orders["1044"]["created_at"] == "2026-04-02T07:30:00Z"  # summer time
    assert (orders["1042"]["email"], orders["1042"]["last_name"]) == ("marc.lefevre@example.fr", "Lefèvre")
    assert (orders["1042"]["carrier"], orders["1042"]["tracking_number"]) == ("Colissimo", "6A12345678901")
    assert orders["1045"]["payment_method"] == "Chèque"
    assert mailflow.query("SELECT sku, name, quantity, price FROM order_lines WHERE order_id = '1041'"
                          " ORDER BY position") == [
        {"sku": "SAV-OLV", "name": "Savon à l'huile d'olive", "quantity": 2, "price": "11.50"},
        {"sku": "CRM-KAR", "name": "Crème mains karité", "quantity": 1, "price": "24.50"}]
    assert mailflow.scalar("SELECT name FROM order_lines WHERE order_id = '1042'") == (
        "Coffret cœur de lavande")
    assert mailflow.scalar("SELECT count(*) FROM customers") == 5


@pytest.mark.parametrize(("good", "bad", "expected"), [
    ("  carrier: Transporteur", "  carier: Transporteur", "did you mean 'carrier'"),
    ("  Livré: delivered", "  Livré: delivred", "did you mean 'delivered'"),
    ("statuses:", "statutes:", "did you mean 'statuses'"),
])
def test_a_wrong_mapping_changes_nothing_and_names_its_line(mailflow, good, bad, expected):
    mailflow("import", mailflow.write("first.csv", ORDERS), "--mapping",
             mailflow.write("mapping.yaml", MAPPING))
    before = mailflow.dump()
    text = MAPPING.replace(f"\n{good}", f"\n{bad}", 1)
    assert text != MAPPING
    newer = csv_text().replace("Expédié", "Livré")  # would update order 1042 if it were read

    result = mailflow("import", write_export(mailflow, newer), "--mapping",
                      mailflow.write("mapping.yaml", text))

    assert result.exit_code == 2
    assert f"mapping.yaml:{line_of(text, bad.strip())}:" in result.stderr
    assert expected in result.stderr
    assert mailflow.dump() == before


def test_an_export_without_a_mapped_column_changes_nothing(mailflow):
    mapping = mailflow.write("mapping.yaml", MAPPING)
    mailflow("import", mailflow.write("first.csv", ORDERS), "--mapping", mapping)
    before = mailflow.dump()
    rows = [line.split(";") for line in csv_text().split("\r\n") if line]
    dropped = rows[0].index("Transporteur")
    text = "".join(";".join(r[:dropped] + r[dropped + 1:]) + "\r\n" for r in rows)
    text = text.replace("Expédié", "Livré")

    result = mailflow("import", write_export(mailflow, text), "--mapping", mapping)

    assert result.exit_code == 2
    assert "no column 'Transporteur'" in result.stderr
    assert mailflow.dump() == before


def test_a_status_label_missing_from_the_mapping_rejects_that_order_only(mailflow):
    text = csv_text().replace(";Livré;", ";Livré en point relais;")
    export = write_export(mailflow, text)

    result = mailflow("import", export, "--mapping", mailflow.write("mapping.yaml", MAPPING), "--json")

    assert result.exit_code == 1
    line = line_of(text, "Livré en point relais")
    assert [r["line"] for r in result.json()["files"][0]["rejected"]] == [line]
    assert f"orders.csv:{line}: status 'Livré en point relais' is not in" in result.stderr
    assert "statuses" in result.stderr
    assert mailflow.scalar("SELECT count(*) FROM orders") == 4
    assert mailflow.scalar("SELECT count(*) FROM orders WHERE id = '1044'") == 0


def test_a_status_already_in_mailflow_words_needs_no_mapping_entry(mailflow):
    text = csv_text().replace(";Livré;", ";delivered;")

    result = mailflow("import", write_export(mailflow, text), "--mapping",
                      mailflow.write("mapping.yaml", MAPPING))

    assert result.exit_code == 0, result.stderr
    assert mailflow.scalar("SELECT status FROM orders WHERE id = '1044'") == "delivered"
