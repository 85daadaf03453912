"""Migrations 0010 onward (tracking, import files, report indexes, products, status indexes,
purge, refunds, the outbox's reference), apart from migrations.py for length only: they run
after its own, in this order. Never edit one that has shipped: add the next.
"""

from __future__ import annotations

from mailflow.store.report_schema import REPORT_SCHEMA

LATER_MIGRATIONS: list[tuple[str, str]] = []

LATER_MIGRATIONS.append(
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

# How each imported file looked on disk, so that a tick recognises an unchanged export
# without reading it; the content hash in `imports` stays the identity (a file whose stat
# changed is hashed again). One row per path and the options it was read with.
LATER_MIGRATIONS.append(
    (
        "0011_import_files",
        """
        CREATE TABLE import_files (
            path TEXT NOT NULL,
            options TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            ctime_ns INTEGER NOT NULL,
            inode INTEGER NOT NULL,
            device INTEGER NOT NULL,
            import_id INTEGER NOT NULL,
            seen_at TEXT NOT NULL,
            PRIMARY KEY (path, options)
        );
        """,
    )
)

LATER_MIGRATIONS.append(("0012_report_indexes", REPORT_SCHEMA))

LATER_MIGRATIONS.append(
    (
        "0013_products",
        """
        CREATE TABLE products (
            key TEXT PRIMARY KEY,
            sku TEXT,
            name TEXT NOT NULL,
            url TEXT,
            image TEXT,
            price TEXT,
            currency TEXT,
            available INTEGER NOT NULL,
            content_hash TEXT NOT NULL,
            import_id INTEGER,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX order_lines_product ON order_lines(coalesce(sku, name));
        """,
    )
)

# What `mailflow status` shows, kept by SQLite itself as rows change (any code path, purge
# included), so that status reads a few rows instead of scanning millions: orders per status
# and messages per rule and status. Order lines are not counted so: a trigger per line made
# raw line inserts 1.6-2x slower (a micro-benchmark); `status --json` scans them instead.
LATER_MIGRATIONS.append(
    (
        "0014_status_indexes",
        """
        CREATE TABLE order_status_counts (
            status TEXT PRIMARY KEY,
            n INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO order_status_counts (status, n) SELECT status, count(*) FROM orders
            GROUP BY status;
        CREATE TRIGGER order_status_counts_insert AFTER INSERT ON orders BEGIN
            INSERT INTO order_status_counts (status, n) VALUES (NEW.status, 1)
                ON CONFLICT (status) DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER order_status_counts_delete AFTER DELETE ON orders BEGIN
            UPDATE order_status_counts SET n = n - 1 WHERE status = OLD.status;
        END;
        CREATE TRIGGER order_status_counts_update AFTER UPDATE OF status ON orders
            WHEN OLD.status IS NOT NEW.status BEGIN
            UPDATE order_status_counts SET n = n - 1 WHERE status = OLD.status;
            INSERT INTO order_status_counts (status, n) VALUES (NEW.status, 1)
                ON CONFLICT (status) DO UPDATE SET n = n + 1;
        END;

        CREATE TABLE outbox_counts (
            rule TEXT NOT NULL,
            status TEXT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (rule, status)
        ) WITHOUT ROWID;
        INSERT INTO outbox_counts (rule, status, n) SELECT rule, status, count(*) FROM outbox
            GROUP BY rule, status;
        CREATE TRIGGER outbox_counts_insert AFTER INSERT ON outbox BEGIN
            INSERT INTO outbox_counts (rule, status, n) VALUES (NEW.rule, NEW.status, 1)
                ON CONFLICT (rule, status) DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER outbox_counts_delete AFTER DELETE ON outbox BEGIN
            UPDATE outbox_counts SET n = n - 1 WHERE rule = OLD.rule AND status = OLD.status;
        END;
        CREATE TRIGGER outbox_counts_update AFTER UPDATE OF rule, status ON outbox
            WHEN OLD.rule IS NOT NEW.rule OR OLD.status IS NOT NEW.status BEGIN
            UPDATE outbox_counts SET n = n - 1 WHERE rule = OLD.rule AND status = OLD.status;
            INSERT INTO outbox_counts (rule, status, n) VALUES (NEW.rule, NEW.status, 1)
                ON CONFLICT (rule, status) DO UPDATE SET n = n + 1;
        END;

        CREATE INDEX outbox_next_due ON outbox(coalesce(next_attempt_at, due_at))
            WHERE status IN ('queued', 'deferred');
        CREATE INDEX outbox_awaiting_human ON outbox(rule, status)
            WHERE dismissed_at IS NULL AND (status = 'unknown' OR (status = 'failed'
                AND (reason GLOB 'render_error*' OR reason GLOB 'where_error*')));
        """,
    )
)

LATER_MIGRATIONS.append(
    (
        "0015_purge",
        """
        CREATE INDEX opens_purge_recipient ON opens(email_key);
        """,
    )
)

LATER_MIGRATIONS.append(
    (
        "0016_refunded_amount",
        """
        ALTER TABLE orders ADD COLUMN refunded_amount TEXT;
        """,
    )
)

# Each partial refund is an instance of its own (order.refunded, docs/rules.md "Refunds"):
# order_status_events holds one `partially_refunded` per order (UNIQUE (order_id, status)),
# so a second refund made no event and no e-mail. The first refund of each order moves here
# as seq 1 (its outbox key stays `RULE:order:ID:partially_refunded`), with the amount the
# order says it got back, unless it was refunded in full since (that amount is the whole).
LATER_MIGRATIONS.append(
    (
        "0017_refunds",
        """
        CREATE TABLE order_refunds (
            order_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            amount TEXT,
            total TEXT,
            at TEXT NOT NULL,
            source TEXT NOT NULL,
            import_id INTEGER,
            recorded_at TEXT NOT NULL,
            PRIMARY KEY (order_id, seq)
        ) WITHOUT ROWID;
        CREATE INDEX order_refunds_at ON order_refunds(at);
        INSERT INTO order_refunds (order_id, seq, amount, total, at, source, import_id,
                                   recorded_at)
            SELECT e.order_id, 1, CASE WHEN o.status != 'refunded' THEN o.refunded_amount END,
                   CASE WHEN o.status != 'refunded' THEN o.refunded_amount END, e.at, e.source,
                   e.import_id, e.recorded_at
            FROM order_status_events e JOIN orders o ON o.id = e.order_id
            WHERE e.status = 'partially_refunded';
        DELETE FROM order_status_events WHERE status = 'partially_refunded';
        """,
    )
)

# The reference a tracked message's tokens name it by (consent/tracking_tokens.py): an HMAC of
# its key, stored at the claim; NULL for the messages sent before, whose tokens hold the key.
LATER_MIGRATIONS.append(
    (
        "0018_outbox_reference",
        """
        ALTER TABLE outbox ADD COLUMN reference TEXT;
        CREATE INDEX outbox_reference ON outbox(reference) WHERE reference IS NOT NULL;
        """,
    )
)
