"""A send batch spaces the WAL's checkpoints (store.spaced_checkpoints), a big import or a
purge takes a larger page cache (store.bulk_cache), and each gives the connection back as
it found it, also when the batch fails: a `run` does not send with an import's cache."""

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


def _cache(store: Store) -> int:
    return store.conn.execute("PRAGMA cache_size").fetchone()[0]


def test_a_bulk_cache_is_the_connections_own_again_after_it(tmp_path):
    store = Store.open(tmp_path / "mailflow.db")
    try:
        default = _cache(store)
        with store.bulk_cache(64):
            assert _cache(store) == -64 * 1024  # KiB, as PRAGMA cache_size says it
        assert _cache(store) == default
        with pytest.raises(RuntimeError), store.bulk_cache():
            raise RuntimeError("the import stopped")
        assert _cache(store) == default
    finally:
        store.close()
