"""`POST /webhooks/<source>`: the shop's platform telling mailflow what just happened.

The signature (`X-Shopify-Hmac-Sha256`, `X-WC-Webhook-Signature`: base64 of HMAC-SHA256
of the raw body, with the secret named by the source's `webhook_secret_env`) is checked
in constant time before anything is parsed: a bad or missing one gets 401 and nothing is
kept. A verified event is kept durably — one transaction, once per platform delivery id —
before the 200, which therefore comes in milliseconds (Shopify waits 5 seconds); importing
it and sending what it made due happen after, in the background sender of `serve`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path

from mailflow.config import ApiSettings, Config
from mailflow.errors import ConfigError
from mailflow.store import Store

PREFIX = "/webhooks/"
MAX_BODY = 5 << 20  # an order with hundreds of lines is ~1 MB; anything bigger is not one
SIGNATURE = {"shopify": "HTTP_X_SHOPIFY_HMAC_SHA256", "woocommerce": "HTTP_X_WC_WEBHOOK_SIGNATURE"}
DELIVERY = {"shopify": "HTTP_X_SHOPIFY_WEBHOOK_ID", "woocommerce": "HTTP_X_WC_WEBHOOK_DELIVERY_ID"}
TOPIC = {"shopify": "HTTP_X_SHOPIFY_TOPIC", "woocommerce": "HTTP_X_WC_WEBHOOK_TOPIC"}
_WOO_PING = re.compile(rb"webhook_id=\d+")  # sent once when a webhook is saved in WooCommerce

Response = tuple[HTTPStatus, list[tuple[str, str]], bytes]


def _plain(status: HTTPStatus, text: str = "") -> Response:
    data = (text or status.phrase).encode()
    return status, [("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(data))), ("Cache-Control", "no-store")], data


def webhook_secrets(config: Config, env: Mapping[str, str]) -> dict[str, tuple[ApiSettings, bytes]]:
    """Each source that receives webhooks, with its secret; refuses to start without one."""
    found = {}
    for api in config.apis:
        if api.webhook_secret_env is None:
            continue
        if api.platform not in SIGNATURE:
            raise ConfigError(f"rules.yaml:{api.line}: source {api.name}: {api.platform} sends no"
                              " webhooks mailflow reads (pull it from cron instead)")
        found[api.name] = (api, api.secret(api.webhook_secret_env, "webhook secret", env).encode())
    return found


def signed(body: bytes, given: str, secret: bytes) -> bool:
    expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, given.strip().encode("ascii", "replace"))


class WebhookApp:
    """Answers `/webhooks/<source>`; `received()` is called after each event is kept."""

    def __init__(self, config: Config, db: Path, received: Callable[[], None] = lambda: None,
                 env: Mapping[str, str] = os.environ,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db, self.received, self.clock = db, received, clock
        self.sources = webhook_secrets(config, env)

    def handles(self, path: str) -> bool:
        return path.startswith(PREFIX)

    def answer(self, environ: dict) -> Response:
        name = environ.get("PATH_INFO", "")[len(PREFIX):].strip("/")
        if name not in self.sources:
            return _plain(HTTPStatus.NOT_FOUND)
        if environ.get("REQUEST_METHOD") != "POST":
            status, headers, body = _plain(HTTPStatus.METHOD_NOT_ALLOWED)
            return status, [*headers, ("Allow", "POST")], body
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if length < 0:
            return _plain(HTTPStatus.LENGTH_REQUIRED)
        if length > MAX_BODY:
            return _plain(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        body = environ["wsgi.input"].read(length)
        if len(body) != length:
            return _plain(HTTPStatus.BAD_REQUEST, "the body is shorter than its Content-Length")
        api, secret = self.sources[name]
        given = environ.get(SIGNATURE[api.platform])
        if not given:
            if api.platform == "woocommerce" and _WOO_PING.fullmatch(body.strip()):
                return _plain(HTTPStatus.OK, "pong")
            return _plain(HTTPStatus.UNAUTHORIZED, "missing signature")
        if not signed(body, given, secret):
            return _plain(HTTPStatus.UNAUTHORIZED, "bad signature")
        delivery = environ.get(DELIVERY[api.platform]) or hashlib.sha256(body).hexdigest()
        store = Store.open(self.db)
        try:
            with store.transaction():
                new = store.record_webhook(api.name, api.platform, delivery[:200],
                                           environ.get(TOPIC[api.platform]), body, self.clock())
        finally:
            store.close()
        if new:
            self.received()
        return _plain(HTTPStatus.OK, "kept" if new else "already kept")
