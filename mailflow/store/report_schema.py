"""The schema of migration 0012_report_indexes (later_migrations.py), apart because it is long:
what `report` and the attribution pass need (store/measures.py, store/attribution.py)."""

from __future__ import annotations

# What the report counts is kept beside what it counts, so that `report` reads counts instead
# of probing the outbox and the orders for every message, click, open and attributed order
# (bench/report.py): a message's first click and open flag its outbox row; an attribution or
# a recovered cart copies what it needs of its message and order, and triggers keep the order's
# status, total and currency there in step with the order.
_ORDER_STATUS_NOW = (
    "CASE WHEN NEW.payment_class = 'on_delivery' AND NEW.paid_at IS NULL"
    " AND NEW.status NOT IN ('cancelled', 'refunded', 'failed') THEN 'pending_payment'"
    " ELSE NEW.status END")
_ORDER_CENTS = "CAST(round(CAST(NEW.total AS REAL) * 100) AS INTEGER)"
# report_counts: how many messages each (rule, language, status, reason, tracked, clicked,
# opened, day) has, kept by triggers on the outbox, so that `report` reads a few thousand rows
# instead of every message. Only a skip's reason is kept (a failure's quotes the SMTP reply,
# which may name the address: no personal data here).
_GROUP = ("rule", "locale", "status", "reason", "tracked", "clicked", "opened", "day")
_ON_THE_WAY = "'queued', 'sending'"


def _counted(row: str) -> str:
    return (f"{row}rule, coalesce({row}locale, ''), {row}status,"
            f" CASE WHEN {row}status = 'skipped' THEN coalesce({row}reason, '') ELSE '' END,"
            f" coalesce({row}tracked, 0), coalesce({row}clicked, 0), coalesce({row}opened, ''),"
            f" coalesce(substr(coalesce({row}sent_at, {row}decided_at), 1, 10), '')")


def _count(row: str, change: str) -> str:
    """Messages on their way (queued, sending) are not counted: a send then costs one count."""
    return (f"INSERT INTO report_counts SELECT {_counted(row)}, 0 {change}"
            f" WHERE {row}status NOT IN ({_ON_THE_WAY})"
            f" ON CONFLICT ({', '.join(_GROUP)}) DO UPDATE SET n = n {change}")


def _moved() -> str:
    columns = ("status", "reason", "locale", "tracked", "clicked", "opened", "sent_at",
               "decided_at")
    return " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)


REPORT_SCHEMA = f"""
        CREATE TABLE attribution_passes (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            order_rowid INTEGER NOT NULL,
            order_id TEXT,
            at TEXT NOT NULL
        );
        INSERT INTO attribution_passes (id, order_rowid, order_id, at) VALUES (1, 0, NULL, '');

        ALTER TABLE outbox ADD COLUMN clicked INTEGER;
        ALTER TABLE outbox ADD COLUMN opened TEXT;
        UPDATE outbox SET clicked = 1 WHERE key IN (SELECT outbox_key FROM clicks);
        UPDATE outbox SET opened = (SELECT CASE WHEN p.human_at IS NOT NULL THEN 'human'
                                    ELSE 'machine' END FROM opens p WHERE p.outbox_key = outbox.key)
            WHERE key IN (SELECT outbox_key FROM opens);
        CREATE INDEX outbox_when ON outbox(coalesce(sent_at, decided_at));
        CREATE TABLE report_counts (
            rule TEXT NOT NULL, locale TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
            tracked INTEGER NOT NULL, clicked INTEGER NOT NULL, opened TEXT NOT NULL,
            day TEXT NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY (rule, locale, status, reason, tracked, clicked, opened, day)
        ) WITHOUT ROWID;
        INSERT INTO report_counts SELECT {_counted("outbox.")}, count(*) FROM outbox
            WHERE status NOT IN ({_ON_THE_WAY}) GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
        CREATE TRIGGER outbox_counted AFTER INSERT ON outbox BEGIN
            {_count("NEW.", "+ 1")};
        END;
        CREATE TRIGGER outbox_recounted AFTER UPDATE OF status, reason, locale, tracked, clicked,
            opened, sent_at, decided_at ON outbox WHEN {_moved()} BEGIN
            {_count("OLD.", "- 1")};
            {_count("NEW.", "+ 1")};
        END;
        CREATE TRIGGER outbox_uncounted AFTER DELETE ON outbox BEGIN
            {_count("OLD.", "- 1")};
        END;
        CREATE TRIGGER clicks_flag AFTER INSERT ON clicks BEGIN
            UPDATE outbox SET clicked = 1 WHERE key = NEW.outbox_key AND clicked IS NULL;
        END;
        CREATE TRIGGER clicks_unflag AFTER DELETE ON clicks
            WHEN NOT EXISTS (SELECT 1 FROM clicks WHERE outbox_key = OLD.outbox_key) BEGIN
            UPDATE outbox SET clicked = NULL WHERE key = OLD.outbox_key;
        END;
        CREATE TRIGGER opens_flag AFTER INSERT ON opens BEGIN
            UPDATE outbox SET opened = CASE WHEN NEW.human_at IS NOT NULL THEN 'human'
                                       ELSE 'machine' END WHERE key = NEW.outbox_key;
        END;
        CREATE TRIGGER opens_human AFTER UPDATE OF human_at ON opens
            WHEN NEW.human_at IS NOT NULL AND OLD.human_at IS NULL BEGIN
            UPDATE outbox SET opened = 'human' WHERE key = NEW.outbox_key;
        END;
        CREATE TRIGGER opens_unflag AFTER DELETE ON opens BEGIN
            UPDATE outbox SET opened = NULL WHERE key = OLD.outbox_key;
        END;

        ALTER TABLE attributions ADD COLUMN locale TEXT;
        ALTER TABLE attributions ADD COLUMN sent_at TEXT;
        ALTER TABLE attributions ADD COLUMN currency TEXT;
        ALTER TABLE attributions ADD COLUMN cents INTEGER;
        ALTER TABLE attributions ADD COLUMN status_now TEXT;
        CREATE INDEX attributions_report ON attributions(rule, locale, how, currency, sent_at,
                                                         status_now, cents);
        CREATE TABLE cart_recoveries (
            reminder_key TEXT NOT NULL,
            order_id TEXT NOT NULL,
            sent_at TEXT NOT NULL,
            day TEXT NOT NULL,
            currency TEXT,
            cents INTEGER,
            status_now TEXT NOT NULL,
            latest INTEGER NOT NULL,
            PRIMARY KEY (reminder_key, order_id)
        ) WITHOUT ROWID;
        CREATE INDEX cart_recoveries_order ON cart_recoveries(order_id);
        CREATE TRIGGER orders_revenue AFTER UPDATE OF status, paid_at, payment_class, total,
            currency ON orders WHEN OLD.status IS NOT NEW.status OR OLD.paid_at IS NOT NEW.paid_at
            OR OLD.payment_class IS NOT NEW.payment_class OR OLD.total IS NOT NEW.total
            OR OLD.currency IS NOT NEW.currency BEGIN
            UPDATE attributions SET status_now = {_ORDER_STATUS_NOW}, cents = {_ORDER_CENTS},
                currency = NEW.currency WHERE order_id = NEW.id;
            UPDATE cart_recoveries SET status_now = {_ORDER_STATUS_NOW}, cents = {_ORDER_CENTS},
                currency = NEW.currency WHERE order_id = NEW.id;
        END;
        CREATE TRIGGER orders_forgotten AFTER DELETE ON orders BEGIN
            DELETE FROM attributions WHERE order_id = OLD.id;
            DELETE FROM cart_recoveries WHERE order_id = OLD.id;
        END;
        """
