"""The content hash of a stored order or cart: what tells an identical re-import from a change."""

from __future__ import annotations

import hashlib
import marshal

from mailflow.records import Line

# A content hash of this scheme starts with this letter; the first scheme's (hex of the repr)
# never does, and is still recognised (same_content), so no stored order looks changed.
_SCHEME = "m"


def line_values(lines: list[Line]) -> list[tuple]:
    # a line's `shipped` counts only when known, so sources that never say keep their hashes
    return [(ln.sku, ln.name, ln.quantity, ln.price) if ln.shipped is None
            else (ln.sku, ln.name, ln.quantity, ln.price, ln.shipped) for ln in lines]


def content_hash(values: tuple, lines: list[tuple]) -> str:
    """`lines` as line_values gives them. marshal version 2 of str/int/None tuples is
    deterministic (no references, one type per value) and three times cheaper than their
    repr, which was most of the cost of this hash."""
    try:
        data = marshal.dumps((values, lines), 2)
    except ValueError:  # a value marshal cannot write: the first scheme takes any
        return _repr_hash(values, lines)
    return _SCHEME + hashlib.blake2b(data, digest_size=16).hexdigest()


def _repr_hash(values: tuple, lines: list[tuple]) -> str:
    text = repr((values, lines))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def same_content(stored: str, digest: str, values: tuple, lines: list[tuple]) -> bool:
    """Whether a stored record's hash says it holds these values, whichever scheme made it."""
    if stored == digest:
        return True
    return not stored.startswith(_SCHEME) and stored == _repr_hash(values, lines)
