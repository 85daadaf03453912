"""Offer codes: pools of single-use discount codes, each given to one message, once.

A code is taken for a message inside the transaction that claims the message (delivery's
BEGIN IMMEDIATE), so two runs can never give one code to two messages: `outbox_key` is
unique. The code stays with that message's key while it may still go out (deferred,
sending, unknown, sent) and is given back when the message is known not to have gone
(a skip, a render failure, a refusal by the server)."""

from __future__ import annotations

import json

from mailflow.store.connected import Connected


class OfferQueries(Connected):
    """Mixed into Store: the `offer_codes` table and the outbox's offer columns."""

    def add_codes(self, pool: str, codes: list[tuple[int, str]], now: str, source: str
                  ) -> tuple[int, list[tuple[int, str, str]]]:
        """Add (line, code) pairs to `pool`; returns how many were added, and (line, code,
        pool) for each code already known (in this pool or another). Call inside
        `transaction()`."""
        known = {code: owner for code, owner in self.conn.execute(
            "SELECT code, pool FROM offer_codes WHERE code IN (SELECT value FROM json_each(?))",
            (json.dumps([code for _, code in codes]),))}
        added, duplicates, seen = 0, [], set(known)
        for line, code in codes:
            if code in seen:
                duplicates.append((line, code, known.get(code, pool)))
                continue
            seen.add(code)
            self.conn.execute("INSERT INTO offer_codes (pool, code, added_at, source)"
                              " VALUES (?, ?, ?, ?)", (pool, code, now, source))
            added += 1
        return added, duplicates

    def codes_left(self, pool: str) -> int:
        return self.conn.execute("SELECT count(*) FROM offer_codes WHERE pool = ? AND"
                                 " outbox_key IS NULL", (pool,)).fetchone()[0]

    def pools(self) -> dict[str, dict[str, int]]:
        """pool -> {"codes", "given", "left"}"""
        return {pool: {"codes": total, "given": given, "left": total - given}
                for pool, total, given in self.conn.execute(
                    "SELECT pool, count(*), count(outbox_key) FROM offer_codes GROUP BY pool"
                    " ORDER BY pool")}

    def free_codes(self, pool: str, limit: int) -> list[str]:
        """The next `limit` codes `take_code` would give, in that order (without taking them)."""
        return [row[0] for row in self.conn.execute(
            "SELECT code FROM offer_codes WHERE pool = ? AND outbox_key IS NULL ORDER BY id"
            " LIMIT ?", (pool, limit))]

    def code_of(self, key: str) -> str | None:
        """The code a message already holds (from an earlier claim), if any."""
        row = self.conn.execute("SELECT code FROM offer_codes WHERE outbox_key = ?",
                                (key,)).fetchone()
        return row[0] if row else None

    def take_code(self, pool: str, key: str, now: str, prefer: str | None = None) -> str | None:
        """The code of message `key`: the one it holds, else `prefer` if still free (what
        planning showed), else the pool's next free one; None when the pool is empty. Call
        inside the transaction that claims the message."""
        held = self.code_of(key)
        if held is not None:
            return held
        row = None
        if prefer is not None:
            row = self.conn.execute("SELECT id, code FROM offer_codes WHERE pool = ? AND code = ?"
                                    " AND outbox_key IS NULL", (pool, prefer)).fetchone()
        if row is None:
            row = self.conn.execute("SELECT id, code FROM offer_codes WHERE pool = ? AND"
                                    " outbox_key IS NULL ORDER BY id LIMIT 1", (pool,)).fetchone()
        if row is None:
            return None
        self.conn.execute("UPDATE offer_codes SET outbox_key = ?, taken_at = ? WHERE id = ?",
                          (key, now, row[0]))
        return row[1]

    def give_back_code(self, key: str) -> None:
        """Message `key` did not go out and will not as it is (skipped, failed): its code,
        which nobody saw, goes back to its pool."""
        self.conn.execute("UPDATE offer_codes SET outbox_key = NULL, taken_at = NULL"
                          " WHERE outbox_key = ?", (key,))
        self.conn.execute("UPDATE outbox SET offer_code = NULL, offer_expires_at = NULL"
                          " WHERE key = ? AND offer_code IS NOT NULL", (key,))

    def record_offer(self, outbox_id: int, code: str | None, expires_at: str | None) -> None:
        """The offer a claimed message carries, as its e-mail shows it."""
        self.conn.execute("UPDATE outbox SET offer_code = ?, offer_expires_at = ? WHERE id = ?",
                          (code, expires_at, outbox_id))

    def offer_of(self, key: str) -> tuple[str | None, str | None] | None:
        """(code, expires_at) recorded for message `key` when it was claimed, if it was."""
        row = self.conn.execute("SELECT offer_code, offer_expires_at FROM outbox WHERE key = ?"
                                " AND (offer_code IS NOT NULL OR offer_expires_at IS NOT NULL)",
                                (key,)).fetchone()
        return (row[0], row[1]) if row else None
