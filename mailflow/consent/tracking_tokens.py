"""Signed tokens of the tracked links (`/c/<token>`) and of the open pixel (`/o/<token>.gif`).

A click token carries the message's reference and the exact URL it redirects to, signed with
an HMAC-SHA256 under a key derived from the shop's secret (`unsubscribe.secret_env`): `serve`
redirects only to a URL some message contained, and nobody can make a token for another URL
without the secret. The signature is checked before anything is decompressed. An open token
carries the reference alone.

The reference (`message_reference`) is an HMAC of the outbox key, 96 bits: it names no one
(the key of a welcome or win-back holds the customer's address, and a token is only signed,
not encrypted: whoever holds the e-mail can decode it). It depends on the key alone, so a
render worker computes it before the claim stores it (outbox.reference). Tokens sent before
it carry the key itself, deflated with the URL: they are still read (`NamedMessage.key`).
The URL is deflated against a fixed dictionary of what such links always hold (`https://`,
the UTM parameters): a normal link's token is 70-110 characters.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import zlib
from dataclasses import dataclass

MAC_BYTES = 16
REFERENCE_BYTES = 12  # 96 bits: 16 base64url characters
MAX_PAYLOAD = 8192  # bytes once inflated: a key and a URL are a few hundred
# the payload's first byte: the URL (or, before references, the key and URL) stored as it is,
# or deflated; or a reference, then the URL so packed
_RAW, _DEFLATED, _REFERENCED = b"r", b"d", b"m"
_CLICK, _OPEN, _REFERENCE = b"click", b"open", b"reference"
# Never change it: the tokens already sent are inflated with it. Most frequent last (zlib).
# (The keys' parts served the tokens sent before references; they cost nothing now.)
_DICTIONARY = (b"/collections//account/orders/cart/checkouts/?variant=&ref=review"
               b"abandoned-cartreview-requestwin-backwelcomeorder-confirmationshipped"
               b":customer::cart::order:@T00:00:00Z.html/products/https://www."
               b"?utm_source=mailflow&utm_campaign=")


class BadTrackingToken(Exception):
    """Malformed, or not signed with this shop's secret."""


@dataclass(frozen=True)
class NamedMessage:
    """The message a token names: by its reference, or (a token sent before references) by its
    outbox key."""

    reference: str | None = None
    key: str | None = None


@functools.lru_cache(maxsize=8)
def _key(secret: bytes, purpose: bytes) -> bytes:
    """A key of its own per purpose: no click token is ever an unsubscribe or open token."""
    return hmac.new(secret, b"mailflow-tracking-" + purpose, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or any(c not in _ALPHABET for c in text):
        raise BadTrackingToken
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise BadTrackingToken from None
    if _b64(data) != text:  # unused low bits set: one character changed, the same bytes
        raise BadTrackingToken
    return data


_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _pack(text: str) -> bytes:
    raw = text.encode()
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=_DICTIONARY)
    deflated = squeeze.compress(raw) + squeeze.flush()
    return _DEFLATED + deflated if len(deflated) < len(raw) else _RAW + raw


def _unpack(data: bytes) -> str:
    kind, body = data[:1], data[1:]
    if kind == _RAW:
        raw = body
    elif kind == _DEFLATED:
        inflate = zlib.decompressobj(-15, zdict=_DICTIONARY)
        try:
            raw = inflate.decompress(body, MAX_PAYLOAD)
        except zlib.error:
            raise BadTrackingToken from None
        if inflate.unconsumed_tail or not inflate.eof:
            raise BadTrackingToken
    else:
        raise BadTrackingToken
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise BadTrackingToken from None


def message_reference(key: str, secret: bytes) -> str:
    """The message `key`'s name in its tokens and in outbox.reference: the same for the same
    key and secret, and unguessable without the secret (no address can be tried against it)."""
    digest = hmac.new(_key(secret, _REFERENCE), key.encode(), hashlib.sha256).digest()
    return _b64(digest[:REFERENCE_BYTES])


def _sign(purpose: bytes, data: bytes, secret: bytes) -> str:
    mac = hmac.new(_key(secret, purpose), data, hashlib.sha256).digest()[:MAC_BYTES]
    return f"{_b64(data)}.{_b64(mac)}"


def _verified(purpose: bytes, token: str, secret: bytes) -> bytes:
    encoded, dot, signature = token.partition(".")
    if not dot or len(token) > 2 * MAX_PAYLOAD:
        raise BadTrackingToken
    data, given = _unb64(encoded), _unb64(signature)
    expected = hmac.new(_key(secret, purpose), data, hashlib.sha256).digest()[:MAC_BYTES]
    if not hmac.compare_digest(given, expected):
        raise BadTrackingToken
    return data


def _referenced(reference: str) -> bytes:
    raw = _unb64(reference)
    if len(raw) != REFERENCE_BYTES:
        raise ValueError(f"not a message reference: {reference!r}")
    return _REFERENCED + raw


def click_token(reference: str, url: str, secret: bytes) -> str:
    """The token of `/c/<token>`: the message of `reference` (message_reference) held `url`."""
    return _sign(_CLICK, _referenced(reference) + _pack(url), secret)


def read_click_token(token: str, secret: bytes) -> tuple[NamedMessage, str]:
    """(the message, the URL) of a token this shop made; else BadTrackingToken."""
    data = _verified(_CLICK, token, secret)
    if data[:1] == _REFERENCED:
        named = NamedMessage(reference=_b64(data[1:1 + REFERENCE_BYTES]))
        url = _unpack(data[1 + REFERENCE_BYTES:])
    else:  # sent before references: the key, a newline and the URL
        key, newline, url = _unpack(data).partition("\n")
        if not newline or not key:
            raise BadTrackingToken
        named = NamedMessage(key=key)
    if not url.lower().startswith(("https://", "http://")):
        raise BadTrackingToken
    return named, url


def open_token(reference: str, secret: bytes) -> str:
    """The token of `/o/<token>.gif`: the message of `reference` was opened."""
    return _sign(_OPEN, _referenced(reference), secret)


def read_open_token(token: str, secret: bytes) -> NamedMessage:
    data = _verified(_OPEN, token, secret)
    if data[:1] == _REFERENCED:
        if len(data) != 1 + REFERENCE_BYTES:
            raise BadTrackingToken
        return NamedMessage(reference=_b64(data[1:]))
    key = _unpack(data)  # sent before references: the key
    if not key or "\n" in key:
        raise BadTrackingToken
    return NamedMessage(key=key)
