"""Composing one e-mail: the rule, the rows it is about and the shop's settings, rendered
(templates.py) and, on demand, built into the bytes that are sent (mime.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mailflow.config import Config, Rule
from mailflow.consent.tokens import make_token, secret_from_env
from mailflow.consent.tracking_tokens import message_reference
from mailflow.errors import ConfigError
from mailflow.rules.engine import Decision, Planner

if TYPE_CHECKING:
    from email.headerregistry import Address

    from mailflow.render.templates import Rendered
    from mailflow.render.tracked import MessageTracker


class Composer:
    """Renders and builds the message for a decision (and for `preview`). Made at the first
    message of a run, so that a tick with nothing due never loads Jinja or the email package."""

    def __init__(self, config: Config, planner: Planner | None = None,
                 inliner_name: str | None = None, *, secret: bytes | None = None) -> None:
        """`secret` signs the unsubscribe links (a preview's need not work: preview.py gives
        one); without it, the secret of `unsubscribe.secret_env`, asked for at once when a
        marketing rule is enabled, so that a run stops before its first send."""
        from mailflow.render.mime import parse_from_address
        from mailflow.render.templates import Renderer

        self.config = config
        self.planner = planner
        self.renderer = Renderer(config.folder / "templates", config.shop, inliner_name)
        self.from_address = parse_from_address(config.sender.from_) if config.sender.from_ \
            else None
        self._secret = secret
        if secret is None and any(r.enabled and (r.marketing or config.tracking.tracks(r.category))
                                  for r in config.rules):
            self._secret = secret_from_env(config.unsubscribe.secret_env)

    @property
    def mail_from(self) -> str:
        """The envelope's address (SMTP's MAIL FROM): the From's."""
        if self.from_address is None:
            raise ConfigError(f"{self.config.path.name}: sender.from is needed to send e-mail")
        return self.from_address.addr_spec

    def message_for(self, d: Decision, now: datetime) -> Composed:
        """The message of a decision, from the rows its planner holds, not built yet."""
        if self.planner is None:
            raise ValueError("message_for reads the rows of the Composer's planner: give it one")
        return self.message_from_rows(d.key, d.rule, d.email, self.planner.context(d), now)

    def message_from_rows(self, key: str, rule: Rule, email: str | None, rows: dict[str, Any],
                          now: datetime) -> Composed:
        """The message of `rule` about these rows (Planner.context), not built yet."""
        from mailflow.render.context import (
            cart_view,
            customer_view,
            offer_view,
            order_view,
            products_view,
            refund_view,
        )

        subject = rows["order"] or rows["cart"] or {}
        order = order_view(rows["order"])
        return self.message(
            key=key, rule=rule, template=rule.template, marketing=rule.marketing,
            order=order, cart=cart_view(rows["cart"]),
            refund=refund_view(order, rows.get("refund")),
            customer=customer_view(rows["customer"]), to=email or "", now=now,
            offer=offer_view(rule, rows.get("offer") or {}, now, self.config.shop.tz),
            tracked=self.config.tracking.tracks(rule.category) and not rows.get("suppressed"),
            products=products_view(rows.get("products"), self.config.shop,
                                   subject.get("currency")))

    def message(self, *, key: str, rule: Rule | None, template: str, marketing: bool,
                order: dict | None, cart: dict | None, customer: dict | None, to: str,
                now: datetime, locale: str | None = None,
                offer: dict[str, Any] | None = None, tracked: bool = False,
                products: list[dict[str, Any]] | None = None,
                refund: dict[str, Any] | None = None) -> Composed:
        """`offer`: the offer's view (context.offer_view); None for a rule that has one: its
        fixed code, or a sample code from a pool (preview, check, send-test). `tracked`: its
        links to the shop go through `serve` (tracking.url), and its open pixel if enabled.
        `products`: the suggested products' view (context.products_view). `refund`: which
        refund the message is about (context.refund_view); by default the order's latest."""
        from mailflow.render.context import message_context, message_locale, offer_view
        from mailflow.render.mime import message_id

        if self.from_address is None:
            raise ConfigError(f"{self.config.path.name}: sender.from is needed to send e-mail")
        unsubscribe_url, extra = self._unsubscribe(to) if marketing else (None, {})
        context = message_context(
            shop=self.config.shop, rule=rule, rule_name=template,
            category="marketing" if marketing else "transactional", order=order, cart=cart,
            customer=customer, unsubscribe_url=unsubscribe_url, now=now,
            offer=offer if offer is not None else offer_view(rule, None, now, self.config.shop.tz),
            products=products, refund=refund)
        rendered = self.renderer.render(
            template, locale or message_locale(order, cart, customer), context,
            campaign=rule.name if rule else template, subject_override=rule.subject if rule else None,
            tracker=self._tracker(key) if tracked else None)
        person = order or cart or customer or {}
        return Composed(rendered.subject, message_id(key, self.from_address.domain), rendered,
                        self.from_address, self.config.sender.reply_to, to, _full_name(person),
                        now, extra, tracked)

    def reference(self, key: str, rule: Rule) -> str | None:
        """What the tracked links of the message `key` name it by (outbox.reference, stored at
        its claim); None for a rule whose messages are not tracked."""
        if not self.config.tracking.tracks(rule.category):
            return None
        return message_reference(key, self._signing_secret())

    def _tracker(self, key: str) -> MessageTracker:
        from mailflow.render.tracked import MessageTracker

        return MessageTracker(self.config.tracking, key, self._signing_secret())

    def _signing_secret(self) -> bytes:
        if self._secret is None:
            self._secret = secret_from_env(self.config.unsubscribe.secret_env)
        return self._secret

    def _unsubscribe(self, email: str) -> tuple[str | None, dict[str, str]]:
        settings = self.config.unsubscribe
        token = make_token(email, self._signing_secret())
        links = []
        url = settings.url.replace("{token}", token) if settings.url else None
        if url:
            links.append(f"<{url}>")
        if settings.mailto:
            links.append(f"<mailto:{settings.mailto}?subject=unsubscribe>")
        headers = {"List-Unsubscribe": ", ".join(links)} if links else {}
        if url:
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return url, headers


@dataclass
class Composed:
    subject: str
    message_id: str
    rendered: Rendered
    from_address: Address
    reply_to: str | None
    to: str
    to_name: str | None
    date: datetime
    headers: dict[str, str]
    tracked: bool = False  # its links go through `serve` (outbox.tracked)

    @property
    def locale(self) -> str:
        """The language it was rendered in (outbox.locale)."""
        return self.rendered.locale

    def build(self) -> bytes:
        """The message's bytes; a failure of the links, the inlining or the text part is this
        message's RenderError."""
        from mailflow.render.mime import build_message
        from mailflow.render.templates import render_failure

        try:
            return build_message(
                from_address=self.from_address, to=self.to, to_name=self.to_name,
                subject=self.subject, text=self.rendered.text, html=self.rendered.html,
                msg_id=self.message_id, date=self.date, reply_to=self.reply_to,
                extra_headers=self.headers)
        except Exception as exc:
            raise render_failure(exc, self.rendered.template) from None


def _full_name(row: dict[str, Any]) -> str | None:
    parts = [row.get("first_name"), row.get("last_name")]
    name = " ".join(p for p in parts if p)
    return name or None


