"""`status` reads orders per status and messages per rule and status from counts SQLite keeps
itself (migration 0014_status_indexes), so that it answers at once on millions of orders
(bench/status.py). They must always be what the tables hold: through imports that change
statuses, sends, resends, dismissals and purges, and on a store made before the counts."""

from __future__ import annotations

import gc
import sqlite3

import pytest

ORDERS = (
    "order_id,email,status,created_at,total,line_sku,line_name,line_quantity,line_price\n"
    "A-1,ana@example.com,paid,2026-03-02 08:00,10.00,S1,Mug,1,10.00\n"
    "A-2,bob@example.com,paid,2026-03-02 08:05,12.00,S1,Mug,1,12.00\n"
    "A-3,chloe@example.com,pending_payment,2026-03-02 08:10,14.00,S2,Tasse,2,7.00\n"
    "A-4,,paid,2025-01-02 08:15,9.00,S3,Bol,1,9.00\n"
)
LATER = ORDERS.replace("A-1,ana@example.com,paid", "A-1,ana@example.com,shipped").replace(
    "A-3,chloe@example.com,pending_payment", "A-3,chloe@example.com,cancelled")


def counted(mf) -> tuple[dict, dict]:
    document = mf("status", "--json").json()
    return document["orders_by_status"], document["outbox"]


def in_tables(mf) -> tuple[dict, dict]:
    orders = {r["status"]: r["n"] for r in mf.query(
        "SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY status")}
    outbox: dict[str, dict[str, int]] = {}
    for r in mf.query("SELECT rule, status, count(*) AS n FROM outbox GROUP BY rule, status"
                      " ORDER BY 1, 2"):
        outbox.setdefault(r["rule"], {})[r["status"]] = r["n"]
    return orders, outbox


@pytest.fixture
def shop(mailflow, monkeypatch):
    mailflow("init", mailflow.folder / "shop")
    mailflow.config = mailflow.folder / "shop" / "rules.yaml"
    monkeypatch.setenv("MAILFLOW_SECRET", "test")
    return mailflow


def test_the_counts_status_shows_follow_every_change_to_orders_and_messages(shop):
    shop("import", shop.write("o.csv", ORDERS), "--now", "2026-03-02T08:30")
    assert counted(shop) == in_tables(shop)
    assert counted(shop)[0] == {"paid": 3, "pending_payment": 1}
    assert shop("status", "--json").json()["order_lines"] == 4  # counted for --json only
    assert "paid" in shop("status").stdout
    assert shop("send", "--now", "2026-03-02T09:00").exit_code in (0, 1)
    shop("import", shop.write("later.csv", LATER), "--now", "2026-03-02T10:00")
    assert shop("send", "--now", "2026-03-02T10:30").exit_code in (0, 1)
    orders, outbox = counted(shop)
    assert (orders, outbox) == in_tables(shop)
    assert orders == {"cancelled": 1, "paid": 2, "shipped": 1}
    assert outbox["order-confirmation"]["sent"] == 3  # not A-4: too old to confirm
    sent = shop.scalar("SELECT key FROM outbox WHERE status = 'sent' LIMIT 1")
    conn = sqlite3.connect(shop.db)
    conn.execute("UPDATE outbox SET status = 'unknown' WHERE key = ?", (sent,))
    conn.commit()
    conn.close()
    shop("resend", sent, "--now", "2026-03-02T11:00")
    assert counted(shop) == in_tables(shop)
    assert shop("purge", "--older-than", "365d", "--now", "2026-03-03T00:00").exit_code == 0
    assert counted(shop) == in_tables(shop)
    assert counted(shop)[0] == {"cancelled": 1, "paid": 1, "shipped": 1}


def test_a_store_made_before_the_counts_gets_them_from_its_rows(shop):
    shop("import", shop.write("o.csv", ORDERS), "--now", "2026-03-02T08:30")
    shop("send", "--now", "2026-03-02T09:00")
    gc.collect()
    conn = sqlite3.connect(shop.db)  # as a store of the mailflow before 0014 was
    for kind, name in conn.execute("SELECT type, name FROM sqlite_master WHERE name GLOB"
                                   " '*_counts*' OR name IN ('outbox_next_due',"
                                   " 'outbox_awaiting_human')").fetchall():
        if kind in ("table", "index", "trigger"):
            conn.execute(f"DROP {kind.upper()} IF EXISTS {name}")
    conn.execute("DELETE FROM migrations WHERE name = '0014_status_indexes'")
    conn.commit()
    conn.close()
    orders, outbox = counted(shop)
    assert (orders, outbox) == in_tables(shop)
    assert sum(orders.values()) == 4 and outbox
