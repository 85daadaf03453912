"""Purge really forgets: in batches that a kill cannot leave half-done, with what hangs off a
message or an order (clicks, opens, attributions), down to the bytes of the database file."""

from __future__ import annotations

import sqlite3

import pytest

from mailflow.store import Store
from mailflow.store.purging import _OLD_MESSAGES, PURGE_STEPS

RULES = """\
shop: {name: Boutique, url: "https://boutique.example", timezone: UTC, locale: fr}
sender: {from: "Boutique <bonjour@boutique.example>"}
delivery: {transport: file, dir: outbox}
rules:
  - {name: confirmation, on: order.placed, template: order_confirmation}
"""
ORDERS = ("order_id,email,first_name,last_name,status,created_at,currency,total,line_name,"
          "line_quantity,line_price\n")
GONE_EMAIL = "philomene.zabriskie@example.com"
GONE_NAME = "Quartermaine"


@pytest.fixture
def shop(mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_SECRET", "s")
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    mailflow.config.write_text(RULES)
    return mailflow


def import_orders(shop, name: str, rows: list[str], now: str) -> None:
    result = shop("import", shop.write(name, ORDERS + "\n".join(rows) + "\n"), "--now", now)
    assert result.exit_code == 0, result.stderr


def database_bytes(shop) -> bytes:
    """The database file and its WAL as they lie on the disk, once every connection is closed."""
    wal = shop.db.with_name(shop.db.name + "-wal")
    return shop.db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_a_purged_customer_is_nowhere_in_the_database_file(shop):
    import_orders(shop, "old.csv", [
        f"OLD-1,{GONE_EMAIL},Philomène,{GONE_NAME},paid,2025-01-10 10:00,EUR,5.00,Mug,1,5.00",
        f"OLD-2,{GONE_EMAIL.upper()},Philomène,{GONE_NAME},paid,2025-01-12 10:00,EUR,7.00,Bol,1,7",
        "OLD-3,other.old@example.com,Ana,Vieux,paid,2025-01-11 10:00,EUR,5.00,Mug,1,5.00"],
        "2025-01-12T10:01")
    assert shop("send", "--now", "2025-01-12T10:05").exit_code == 0
    import_orders(shop, "new.csv", [
        f"NEW-{i},new{i}@example.com,Bea,Neuf,paid,2026-03-01 10:00,EUR,5.00,Mug,1,5.00"
        for i in range(40)], "2026-03-01T10:01")
    assert shop("send", "--now", "2026-03-01T10:05").exit_code == 0
    assert GONE_EMAIL.encode() in database_bytes(shop)

    result = shop("purge", "--older-than", "365d", "--now", "2026-03-01T11:00", "--json")

    assert result.exit_code == 0, result.stderr
    done = result.json()
    assert (done["orders"], done["customers"], done["messages"]) == (3, 2, 3)
    assert done["message_files"] >= 1
    stored = database_bytes(shop).lower()
    for forgotten in (GONE_EMAIL, GONE_NAME, "philomène", "other.old@example.com"):
        assert forgotten.lower().encode() not in stored, forgotten
    assert b"new39@example.com" in stored  # what is younger stays
    outbox = shop.config.parent / "outbox"
    assert not [f for f in outbox.glob("*.eml") if GONE_EMAIL in f.read_text(errors="replace")]
    assert shop.scalar("SELECT count(*) FROM orders") == 40


def test_clicks_opens_attributions_and_old_webhook_deliveries_go_with_what_they_name(shop):
    import_orders(shop, "o.csv", [
        "OLD,old@example.com,Ana,Vieux,paid,2025-01-10 10:00,EUR,5.00,Mug,1,5.00"],
        "2025-01-10T10:01")
    assert shop("send", "--now", "2025-01-10T10:05").exit_code == 0
    import_orders(shop, "n.csv", [
        "NEW,new@example.com,Bea,Neuf,paid,2026-03-01 10:00,EUR,5.00,Mug,1,5.00"],
        "2026-03-01T10:01")
    assert shop("send", "--now", "2026-03-01T10:05").exit_code == 0
    keys = {r["subject_id"]: r["key"] for r in shop.query("SELECT subject_id, key FROM outbox")}
    conn = sqlite3.connect(shop.db)
    with conn:
        for order, who in (("OLD", "old"), ("NEW", "new")):
            key = keys[order]
            conn.execute("INSERT INTO clicks (outbox_key, url, email_key, rule, first_at, last_at)"
                         " VALUES (?, 'https://boutique.example/p', ?, 'confirmation', 'x', 'x')",
                         (key, f"{who}@example.com"))
            conn.execute("INSERT INTO opens (outbox_key, email_key, rule, first_at)"
                         " VALUES (?, ?, 'confirmation', 'x')", (key, f"{who}@example.com"))
            conn.execute("INSERT INTO attributions (order_id, outbox_key, rule, how, attributed_at)"
                         " VALUES (?, ?, 'confirmation', 'click', 'x')", (order, key))
            conn.execute("INSERT INTO webhook_events (source, platform, delivery_id, received_at,"
                         " body, processed_at) VALUES ('shop', 'shopify', ?, ?, ?, ?)",
                         (order, "2025-01-10T10:00:00Z" if order == "OLD" else "2026-03-01T10:00:00Z",
                          f'{{"email": "{who}@example.com"}}'.encode(), "2026-03-01T10:00:00Z"))
    conn.close()

    done = shop("purge", "--older-than", "365d", "--now", "2026-03-01T11:00", "--json").json()

    assert (done["messages"], done["orders"], done["webhook_events"]) == (1, 1, 1)
    for table in ("clicks", "opens"):
        assert [r["email_key"] for r in shop.query(f"SELECT email_key FROM {table}")] == [
            "new@example.com"]
    assert [r["order_id"] for r in shop.query("SELECT order_id FROM attributions")] == ["NEW"]
    assert [r["delivery_id"] for r in shop.query("SELECT delivery_id FROM webhook_events")] == ["NEW"]


def test_a_purge_stopped_between_batches_leaves_whole_orders_and_the_next_one_finishes(shop):
    import_orders(shop, "o.csv", [
        f"OLD-{i},old{i}@example.com,Ana,Vieux,paid,2025-01-10 10:00,EUR,5.00,Mug,1,5.00"
        for i in range(7)] + ["NEW,new@example.com,Bea,Neuf,paid,2026-03-01 10:00,EUR,5,Mug,1,5"],
        "2026-03-01T10:01")

    class Stopped(Exception):
        pass

    def stop() -> None:
        raise Stopped

    store = Store.open(shop.db)
    with pytest.raises(Stopped):
        store.purge_before("2025-03-01T00:00:00Z", lambda keys: None, batch=3, after_batch=stop)
    store.close()
    assert shop.scalar("SELECT count(*) FROM orders") == 5  # one batch of 3 went, whole
    assert shop.scalar("SELECT count(*) FROM order_lines l WHERE NOT EXISTS"
                       " (SELECT 1 FROM orders o WHERE o.id = l.order_id)") == 0

    done = shop("purge", "--older-than", "365d", "--now", "2026-03-01T11:00", "--json").json()

    assert (done["orders"], done["customers"]) == (4, 7)
    assert [r["id"] for r in shop.query("SELECT id FROM orders")] == ["NEW"]
    assert shop.scalar("SELECT count(*) FROM order_lines") == 1


def old_orders(shop, name: str, count: int) -> None:
    import_orders(shop, name, [
        f"{name}-{i},old{i}@example.com,Ana,{'Vieux' * 40},paid,2025-01-10 10:00,EUR,5,Mug,1,5"
        for i in range(count)] + ["NEW,new@example.com,Bea,Neuf,paid,2026-03-01 10:00,EUR,5,Mug,1,5"],
        "2026-03-01T10:01")


def test_the_file_shrinks_after_a_purge_and_an_older_store_once_by_vacuum(shop):
    old_orders(shop, "a", 300)
    shrunk = shop("purge", "--older-than", "365d", "--now", "2026-03-01T11:00", "--json").json()
    assert shrunk["bytes_after"] < shrunk["bytes_before"] / 2
    assert (shrunk["bytes_free_inside"], shrunk["auto_vacuum"]) == (0, "incremental")
    assert shop.scalar("PRAGMA auto_vacuum") == 2  # incremental still, for the other commands
    old_orders(shop, "b", 300)
    conn = sqlite3.connect(shop.db, isolation_level=None)
    conn.execute("PRAGMA auto_vacuum = NONE")
    conn.execute("VACUUM")  # as every store was before 0015_purge
    conn.close()

    kept = shop("purge", "--older-than", "365d", "--now", "2026-03-01T11:00")

    assert kept.exit_code == 0, kept.stderr
    assert "run this purge once with --vacuum" in kept.stdout
    old_orders(shop, "c", 300)
    rebuilt = shop("purge", "--older-than", "365d", "--now", "2026-03-01T11:00", "--vacuum",
                   "--json").json()
    assert rebuilt["bytes_after"] < rebuilt["bytes_before"] / 2
    assert (rebuilt["auto_vacuum"], rebuilt["bytes_free_inside"]) == ("incremental", 0)
    later = shop("purge", "--older-than", "365d", "--now", "2026-03-01T11:00")
    assert "--vacuum" not in later.stdout


def test_every_purge_statement_is_a_range_of_rowids_or_an_index_search(tmp_path):
    store = Store.open(tmp_path / "s.db")
    for table, statements in PURGE_STEPS:
        extra = [f"SELECT key {_OLD_MESSAGES}"] if table == "outbox" else []
        for statement in [s for _, s in statements] + extra:
            plan = [row[3] for row in store.conn.execute(
                f"EXPLAIN QUERY PLAN {statement}", {"after": 0, "upto": 1, "cutoff": "x"})]
            scans = [step for step in plan if step.startswith("SCAN")]
            assert not scans, (statement, plan)
            assert f"SEARCH {table} USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in plan
    store.close()
