"""The WSGI application `serve` runs: the one-click unsubscribe page, the webhooks, and the
tracked links and open pixel."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path

from mailflow import console
from mailflow.config import Config
from mailflow.errors import ConfigError, MailflowError
from mailflow.web.tracking import TrackingApp
from mailflow.web.unsubscribe import UnsubscribeApp
from mailflow.web.webhooks import WebhookApp


class App:
    """Routes a request to the endpoint whose path it names."""

    def __init__(self, config: Config, db: Path, received: Callable[[], None]) -> None:
        self.webhooks = WebhookApp(config, db, received)
        self.unsubscribe = UnsubscribeApp(config, db) if config.unsubscribe.url else None
        self.tracking = TrackingApp(config, db) if config.tracking.url else None
        if self.unsubscribe is None and self.tracking is None and not self.webhooks.sources:
            raise ConfigError(f"{config.path.name}: nothing to serve: set unsubscribe.url,"
                              " tracking.url, or a source's webhook_secret_env (docs/sources.md)")

    def __call__(self, environ: dict, start_response: Callable[..., object]) -> Iterable[bytes]:
        if self.tracking is not None and self.tracking.handles(
                environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")):
            return self.tracking(environ, start_response)
        if self.webhooks.handles(environ.get("PATH_INFO", "")) or self.unsubscribe is None:
            try:
                status, headers, body = self.webhooks.answer(environ)
            except (sqlite3.Error, MailflowError) as exc:  # not kept: the platform must retry
                console.warn(f"serve: a webhook could not be kept, the platform will send it"
                             f" again: {exc}")
                status, headers, body = HTTPStatus.SERVICE_UNAVAILABLE, [
                    ("Content-Length", "0"), ("Retry-After", "5")], b""
            start_response(f"{status.value} {status.phrase}", headers)
            return [body]
        return self.unsubscribe(environ, start_response)
