"""Named, append-only schema migrations. Never edit one that has shipped: add the next.

Timestamps are TEXT in UTC ISO 8601 with `Z`; amounts are TEXT decimals; e-mail
identity is `email_key`, the validated address lower-cased.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
        CREATE TABLE imports (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            format TEXT NOT NULL,
            kind TEXT NOT NULL,
            imported_at TEXT NOT NULL,
            rows INTEGER NOT NULL DEFAULT 0,
            rejected INTEGER NOT NULL DEFAULT 0,
            summary TEXT
        );
        CREATE UNIQUE INDEX imports_sha256_kind ON imports(sha256, kind);
        CREATE INDEX imports_kind_at ON imports(kind, imported_at);

        CREATE TABLE customers (
            email_key TEXT PRIMARY KEY,
            email TEXT NOT NULL,
            first_name TEXT,
            last_name TEXT,
            locale TEXT,
            accepts_marketing INTEGER,
            consent_at TEXT,
            created_at TEXT,
            first_seen_at TEXT NOT NULL,
            last_order_at TEXT,
            updated_at TEXT NOT NULL
        );

        CREATE TABLE orders (
            id TEXT PRIMARY KEY,
            platform_id TEXT,
            source TEXT NOT NULL,
            email TEXT,
            email_key TEXT,
            email_raw TEXT,
            email_problem TEXT,
            first_name TEXT,
            last_name TEXT,
            locale TEXT,
            accepts_marketing INTEGER,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            paid_at TEXT,
            shipped_at TEXT,
            delivered_at TEXT,
            cancelled_at TEXT,
            currency TEXT,
            subtotal TEXT,
            shipping TEXT,
            tax TEXT,
            discount TEXT,
            total TEXT,
            payment_method TEXT,
            shipping_method TEXT,
            tracking_number TEXT,
            tracking_url TEXT,
            carrier TEXT,
            pickup_point TEXT,
            shipping_address TEXT,
            content_hash TEXT NOT NULL,
            first_seen_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            import_id INTEGER
        );
        CREATE INDEX orders_email_created ON orders(email_key, created_at);
        CREATE INDEX orders_created ON orders(created_at);
        CREATE INDEX orders_platform_id ON orders(platform_id);

        CREATE TABLE order_lines (
            order_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            sku TEXT,
            name TEXT,
            quantity INTEGER NOT NULL,
            price TEXT,
            PRIMARY KEY (order_id, position)
        ) WITHOUT ROWID;

        CREATE TABLE carts (
            id TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            email TEXT,
            email_key TEXT,
            email_raw TEXT,
            email_problem TEXT,
            first_name TEXT,
            last_name TEXT,
            locale TEXT,
            accepts_marketing INTEGER,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            completed_at TEXT,
            order_id TEXT,
            currency TEXT,
            total TEXT,
            recovery_url TEXT,
            content_hash TEXT NOT NULL,
            first_seen_at TEXT NOT NULL,
            import_id INTEGER
        );
        CREATE INDEX carts_email ON carts(email_key);

        CREATE TABLE cart_lines (
            cart_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            sku TEXT,
            name TEXT,
            quantity INTEGER NOT NULL,
            price TEXT,
            PRIMARY KEY (cart_id, position)
        ) WITHOUT ROWID;

        CREATE TABLE order_status_events (
            id INTEGER PRIMARY KEY,
            order_id TEXT NOT NULL,
            status TEXT NOT NULL,
            at TEXT NOT NULL,
            source TEXT NOT NULL,
            import_id INTEGER,
            recorded_at TEXT NOT NULL,
            UNIQUE (order_id, status)
        );
        CREATE INDEX order_status_events_status_at ON order_status_events(status, at);

        CREATE TABLE suppressions (
            email_key TEXT NOT NULL,
            email TEXT NOT NULL,
            reason TEXT NOT NULL,
            at TEXT NOT NULL,
            source TEXT NOT NULL,
            PRIMARY KEY (email_key, reason)
        );
        """,
    ),
]

MIGRATIONS.append(
    (
        "0002_outbox",
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            rule TEXT NOT NULL,
            subject_type TEXT NOT NULL,
            subject_id TEXT NOT NULL,
            email TEXT,
            email_key TEXT,
            status TEXT NOT NULL,
            reason TEXT,
            due_at TEXT NOT NULL,
            next_attempt_at TEXT,
            decided_at TEXT NOT NULL,
            claimed_at TEXT,
            sent_at TEXT,
            subject TEXT,
            message_id TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            run_id INTEGER
        );
        CREATE INDEX outbox_pending ON outbox(status, next_attempt_at);
        CREATE INDEX outbox_recipient ON outbox(email_key, rule, sent_at);
        CREATE INDEX outbox_rule_status ON outbox(rule, status);

        CREATE TABLE outbox_attempts (
            id INTEGER PRIMARY KEY,
            outbox_id INTEGER NOT NULL,
            at TEXT NOT NULL,
            outcome TEXT NOT NULL,
            detail TEXT
        );
        CREATE INDEX outbox_attempts_outbox ON outbox_attempts(outbox_id);

        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            command TEXT NOT NULL,
            now TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            counts TEXT
        );

        CREATE INDEX carts_activity ON carts(updated_at);
        CREATE INDEX customers_since ON customers(coalesce(created_at, first_seen_at));
        CREATE INDEX customers_last_order ON customers(last_order_at);
        """,
    )
)

MIGRATIONS.append(
    (
        "0003_payment_class_first_order",
        """
        ALTER TABLE orders ADD COLUMN payment_class TEXT;
        ALTER TABLE customers ADD COLUMN first_order_at TEXT;
        UPDATE customers SET first_order_at = (SELECT min(o.created_at) FROM orders o
                                                WHERE o.email_key = customers.email_key);
        DROP INDEX IF EXISTS customers_since;
        CREATE INDEX customers_welcome ON customers(coalesce(created_at, first_order_at))
        """,
    )
)

MIGRATIONS.append(
    (
        "0004_outbox_dismissed",
        """
        ALTER TABLE outbox ADD COLUMN dismissed_at TEXT;
        """,
    )
)

MIGRATIONS.append(
    (
        "0005_customers_listed",
        """
        ALTER TABLE customers ADD COLUMN listed_at TEXT;
        UPDATE customers SET listed_at = updated_at WHERE created_at IS NOT NULL
        """,
    )
)

MIGRATIONS.append(
    (
        "0006_partial_shipments",
        """
        ALTER TABLE order_lines ADD COLUMN shipped INTEGER;
        ALTER TABLE orders ADD COLUMN partially_shipped INTEGER;
        """,
    )
)

MIGRATIONS.append(
    (
        "0007_api_sources",
        """
        CREATE TABLE sources (
            name TEXT PRIMARY KEY,
            platform TEXT NOT NULL,
            watermark TEXT,
            first_pulled_at TEXT,
            pulled_at TEXT,
            failed_at TEXT,
            failure TEXT
        );
        ALTER TABLE orders ADD COLUMN history_before TEXT;
        ALTER TABLE orders ADD COLUMN platform_updated_at TEXT;
        ALTER TABLE carts ADD COLUMN history_before TEXT;
        ALTER TABLE customers ADD COLUMN history_before TEXT;

        CREATE TABLE webhook_events (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            platform TEXT NOT NULL,
            delivery_id TEXT NOT NULL,
            topic TEXT,
            received_at TEXT NOT NULL,
            body BLOB NOT NULL,
            processed_at TEXT,
            outcome TEXT,
            UNIQUE (source, delivery_id)
        );
        CREATE INDEX webhook_events_waiting ON webhook_events(id) WHERE processed_at IS NULL;
        """,
    )
)

MIGRATIONS.append(
    (
        "0009_offers_products",
        """
        CREATE TABLE offer_codes (
            id INTEGER PRIMARY KEY,
            pool TEXT NOT NULL,
            code TEXT NOT NULL UNIQUE,
            added_at TEXT NOT NULL,
            source TEXT,
            outbox_key TEXT,
            taken_at TEXT
        );
        CREATE UNIQUE INDEX offer_codes_taken ON offer_codes(outbox_key) WHERE outbox_key IS NOT NULL;
        CREATE INDEX offer_codes_free ON offer_codes(pool, id) WHERE outbox_key IS NULL;
        ALTER TABLE outbox ADD COLUMN offer_code TEXT;
        ALTER TABLE outbox ADD COLUMN offer_expires_at TEXT;
        """,
    )
)

MIGRATIONS.append(
    (
        "0010_tracking",
        """
        ALTER TABLE outbox ADD COLUMN locale TEXT;
        ALTER TABLE outbox ADD COLUMN tracked INTEGER;

        CREATE TABLE clicks (
            id INTEGER PRIMARY KEY,
            outbox_key TEXT NOT NULL,
            url TEXT NOT NULL,
            email_key TEXT,
            rule TEXT NOT NULL,
            first_at TEXT NOT NULL,
            last_at TEXT NOT NULL,
            count INTEGER NOT NULL DEFAULT 1,
            UNIQUE (outbox_key, url)
        );
        CREATE INDEX clicks_recipient ON clicks(email_key, first_at);
        CREATE INDEX clicks_rule ON clicks(rule, first_at);

        CREATE TABLE opens (
            outbox_key TEXT PRIMARY KEY,
            email_key TEXT,
            rule TEXT NOT NULL,
            first_at TEXT NOT NULL,
            human_at TEXT,
            machine_at TEXT
        );
        CREATE INDEX opens_rule ON opens(rule, first_at);

        CREATE TABLE attributions (
            order_id TEXT PRIMARY KEY,
            outbox_key TEXT NOT NULL,
            rule TEXT NOT NULL,
            how TEXT NOT NULL,
            attributed_at TEXT NOT NULL
        );
        CREATE INDEX attributions_rule ON attributions(rule, how);
        CREATE INDEX attributions_message ON attributions(outbox_key);
        """,
    )
)

# What the report counts is kept beside what it counts, so that `report` reads one index
# instead of probing the outbox and the orders for every click, open and attributed order
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

MIGRATIONS.append(
    (
        "0012_report_indexes",
        f"""
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
        """,
    )
)
