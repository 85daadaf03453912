"""Signed tokens of the tracked links (`/c/<token>`) and of the open pixel (`/o/<token>.gif`).

A click token carries the message's outbox key and the exact URL it redirects to, signed
with an HMAC-SHA256 under a key derived from the shop's secret (`unsubscribe.secret_env`):
`serve` redirects only to a URL some message contained, looks nothing up to find it, and
nobody can make a token for another URL without the secret. The signature is checked before
anything is decompressed. Key and URL are deflated against a fixed dictionary of what such
links always hold (`https://`, the UTM parameters, `:order:`…): a normal link's token is
100-200 characters. An open token carries the key only.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import zlib

MAC_BYTES = 16
MAX_PAYLOAD = 8192  # bytes once inflated: a key and a URL are a few hundred
_RAW, _DEFLATED = b"r", b"d"  # the payload's first byte: stored as it is, or deflated
_CLICK, _OPEN = b"click", b"open"
# Never change it: the tokens already sent are inflated with it. Most frequent last (zlib).
_DICTIONARY = (b"/collections//account/orders/cart/checkouts/?variant=&ref=review"
               b"abandoned-cartreview-requestwin-backwelcomeorder-confirmationshipped"
               b":customer::cart::order:@T00:00:00Z.html/products/https://www."
               b"?utm_source=mailflow&utm_campaign=")


class BadTrackingToken(Exception):
    """Malformed, or not signed with this shop's secret."""


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
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise BadTrackingToken from None


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


def _sign(purpose: bytes, text: str, secret: bytes) -> str:
    data = _pack(text)
    mac = hmac.new(_key(secret, purpose), data, hashlib.sha256).digest()[:MAC_BYTES]
    return f"{_b64(data)}.{_b64(mac)}"


def _open(purpose: bytes, token: str, secret: bytes) -> str:
    encoded, dot, signature = token.partition(".")
    if not dot or len(token) > 2 * MAX_PAYLOAD:
        raise BadTrackingToken
    data, given = _unb64(encoded), _unb64(signature)
    expected = hmac.new(_key(secret, purpose), data, hashlib.sha256).digest()[:MAC_BYTES]
    if not hmac.compare_digest(given, expected):
        raise BadTrackingToken
    return _unpack(data)


def click_token(key: str, url: str, secret: bytes) -> str:
    """The token of `/c/<token>`: the message `key` contained `url`."""
    return _sign(_CLICK, f"{key}\n{url}", secret)


def read_click_token(token: str, secret: bytes) -> tuple[str, str]:
    """(outbox key, URL) of a token this shop made; else BadTrackingToken."""
    key, newline, url = _open(_CLICK, token, secret).partition("\n")
    if not newline or not key or not url.lower().startswith(("https://", "http://")):
        raise BadTrackingToken
    return key, url


def open_token(key: str, secret: bytes) -> str:
    """The token of `/o/<token>.gif`: the message `key` was opened."""
    return _sign(_OPEN, key, secret)


def read_open_token(token: str, secret: bytes) -> str:
    key = _open(_OPEN, token, secret)
    if not key or "\n" in key:
        raise BadTrackingToken
    return key
