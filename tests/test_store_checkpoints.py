"""A send batch spaces the WAL's checkpoints (store.spaced_checkpoints), and gives the
connection back as it found it, also when the batch fails."""

from __future__ import annotations

import pytest

from mailflow.store import BATCH_CHECKPOINT_PAGES, Store


def _pages(store: Store) -> int:
    return store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]


def test_checkpoints_are_spaced_during_a_batch_and_restored_after_it(tmp_path):
    store = Store.open(tmp_path / "mailflow.db")
    try:
        assert _pages(store) == 1000  # SQLite's default
        with store.spaced_checkpoints():
            assert _pages(store) == BATCH_CHECKPOINT_PAGES
        assert _pages(store) == 1000
        with pytest.raises(RuntimeError), store.spaced_checkpoints():
            raise RuntimeError("the batch stopped")
        assert _pages(store) == 1000
    finally:
        store.close()
