"""Signed unsubscribe tokens: the address and an HMAC-SHA256 under the shop's secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from mailflow.errors import ConfigError


def secret_from_env(name: str) -> bytes:
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"unsubscribe.secret_env: the environment variable {name} is not set;"
                          " marketing e-mails need it to sign their unsubscribe links")
    return value.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(email: str, secret: bytes) -> str:
    address = email.strip().lower().encode()
    mac = hmac.new(secret, address, hashlib.sha256).digest()[:16]
    return f"{_b64(address)}.{_b64(mac)}"


def read_token(token: str, secret: bytes) -> str | None:
    """The address a token was made for, or None if it is malformed or not ours."""
    try:
        encoded, signature = token.split(".", 1)
        address = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except (ValueError, TypeError):
        return None
    expected = hmac.new(secret, address, hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(given, expected):
        return None
    return address.decode("utf-8", errors="replace")
