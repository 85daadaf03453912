"""Named, append-only schema migrations. Never edit one that has shipped: add the next.

Timestamps are TEXT in UTC ISO 8601 with `Z`; amounts are TEXT decimals; e-mail
identity is `email_key`, the validated address lower-cased.
"""

from __future__ import annotations

from mailflow.store.later_migrations import LATER_MIGRATIONS

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

MIGRATIONS.extend(LATER_MIGRATIONS)
