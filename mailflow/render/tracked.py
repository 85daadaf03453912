"""A tracked message's links and pixel: each link to the shop becomes `<tracking.url>/c/<token>`
(the token names the message by its reference, never by its key, and the exact URL:
consent/tracking_tokens.py), and with `tracking.opens` a 1×1 image
`<tracking.url>/o/<token>.gif` ends the HTML part."""

from __future__ import annotations

from markupsafe import escape

from mailflow.consent.tracking_tokens import click_token, message_reference, open_token
from mailflow.tracking import Tracking


class MessageTracker:
    """The Tracker (render/templates.py) of the message `key`."""

    def __init__(self, tracking: Tracking, key: str, secret: bytes) -> None:
        if tracking.url is None:
            raise ValueError("a tracker needs tracking.url")
        self.base, self.secret = tracking.url, secret
        self.reference = message_reference(key, secret)  # the claim stores the same
        self.opens = tracking.opens
        self._links: dict[str, str] = {}  # the same link twice in a message: one token

    def link(self, url: str) -> str:
        if url not in self._links:
            self._links[url] = f"{self.base}/c/{click_token(self.reference, url, self.secret)}"
        return self._links[url]

    def pixel(self) -> str | None:
        if not self.opens:
            return None
        src = f"{self.base}/o/{open_token(self.reference, self.secret)}.gif"
        return (f'<img src="{escape(src)}" width="1" height="1" alt=""'
                ' style="display:block;width:1px;height:1px;border:0">')
