"""`mailflow preview` (one e-mail, from the store or sample data), `preview --all` (a gallery
of every template in every locale) and the template half of `mailflow check`."""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from mailflow.config import Config, Rule, template_names_in
from mailflow.errors import RenderError, UsageError
from mailflow.render.compose import Composed, Composer
from mailflow.render.context import (
    cart_view,
    customer_view,
    order_view,
    products_view,
    refund_view,
)
from mailflow.render.samples import (
    NOW,
    sample_offer,
    sample_products,
    sample_subject,
    varied_refunds,
    varied_subjects,
)
from mailflow.rules.suggestions import ProductHistory, Suggestions

FORMATS = ("html", "text", "eml")
_MARKETING_TEMPLATES = ("abandoned_cart", "review_request", "welcome", "win_back")
_RAW_LINK = re.compile(r"""\s(?:href|src)\s*=\s*["']([^"']*)["']""", re.I)


class Rows(ProductHistory, Protocol):
    """What `preview --order/--cart/--customer` reads: the store's rows, and what suggested
    products are read from (Store has these)."""

    def order(self, order_id: str) -> dict[str, Any] | None: ...
    def cart(self, cart_id: str) -> dict[str, Any] | None: ...
    def customer(self, email_key: str | None) -> dict[str, Any] | None: ...
    def order_refunds(self, order_id: str) -> list[dict[str, Any]]: ...


@dataclass
class Target:
    """What NAME in `preview NAME` means: a rule, or a template used as if by one."""

    template: str
    trigger: str
    marketing: bool
    rule: Rule | None


def preview_secret(config: Config) -> bytes:
    """What signs a preview's unsubscribe link: the real secret when it is set, else a
    stand-in (a preview's links need not work, and it never asks for the secret)."""
    return os.environ.get(config.unsubscribe.secret_env, "").encode() or \
        b"preview-only, not a valid token"


def template_names(config: Config) -> list[str]:
    return template_names_in(config.folder)


def template_locales(config: Config, name: str) -> list[str]:
    folder = config.folder / "templates"
    found = sorted({p.name.split(".")[1] for p in folder.glob(f"{name}.*.html")
                    if len(p.name.split(".")) == 3})
    return found or [config.shop.locale]


def resolve(config: Config, name: str) -> Target:
    for rule in config.rules:
        if rule.name == name:
            return Target(rule.template, rule.on, rule.marketing, rule)
    templates = template_names(config)
    if name not in templates:
        known = [r.name for r in config.rules] + templates
        from difflib import get_close_matches

        close = get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"no rule or template named {name!r}{hint}")
    using = [r for r in config.rules if r.template == name]
    if using:
        return Target(name, using[0].on, using[0].marketing, using[0])
    trigger = ("cart.abandoned" if "cart" in name else
               "customer.created" if name in ("welcome", "win_back") else "order.placed")
    return Target(name, trigger, name in _MARKETING_TEMPLATES, None)


def compose_preview(config: Config, store: Rows | None, name: str, *, order: str | None = None,
                    cart: str | None = None, customer: str | None = None,
                    locale: str | None = None, now: datetime | None = None,
                    inliner: str | None = None, to: str | None = None) -> Composed:
    """`to`: the recipient, whose address the unsubscribe link is signed for (send-test's
    owner, never the customer whose data it shows); by default the data's own address."""
    target = resolve(config, name)
    moment = now or NOW
    settings = target.rule.products if target.rule else None
    products = refund = None
    if order or cart or customer:
        if store is None:
            raise UsageError("--order/--cart/--customer read the store: it is missing")
        views, (subject_type, row) = _from_store(store, order, cart, customer)
        if subject_type == "order":  # its latest refund (render/context.py refund_view)
            refund = refund_view(views[0], {"refunds": store.order_refunds(row["id"])})
        if settings is not None:
            products = Suggestions(store, moment).for_subject(settings, subject_type, row,
                                                              row.get("email_key"))
    else:
        views = sample_subject(target.trigger, locale or config.shop.locale)
        products = sample_products(settings.count) if settings is not None else None
    order_v, cart_v, customer_v = views
    person = order_v or cart_v or customer_v or {}
    composer = Composer(config, inliner_name=inliner, secret=preview_secret(config))
    return composer.message(
        key=f"preview:{name}:{person.get('id') or person.get('email')}", rule=target.rule,
        template=target.template, marketing=target.marketing, order=order_v, cart=cart_v,
        customer=customer_v, to=to or person.get("email") or "customer@example.com", now=moment,
        locale=locale, refund=refund,
        products=products_view(products, config.shop, (order_v or cart_v or {}).get("currency")))


def _from_store(store: Rows, order: str | None, cart: str | None, customer: str | None):
    """The views of (order, cart, customer), and (subject type, the subject's row)."""
    if order:
        row = store.order(order)
        if row is None:
            raise UsageError(f"no order {order!r} in the store")
        return (order_view(row), None, customer_view(store.customer(row.get("email_key")))), \
            ("order", row)
    if cart:
        row = store.cart(cart)
        if row is None:
            raise UsageError(f"no cart {cart!r} in the store")
        return (None, cart_view(row), customer_view(store.customer(row.get("email_key")))), \
            ("cart", row)
    row = store.customer((customer or "").strip().lower())
    if row is None:
        raise UsageError(f"no customer {customer!r} in the store")
    return (None, None, customer_view(row)), ("customer", row)


def as_format(message: Composed, fmt: str) -> bytes:
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "html":
        return message.rendered.html.encode()
    if fmt == "text":
        return message.rendered.text.encode()
    return message.build()


def save_preview(data: bytes, name: str, fmt: str, out: Path | None) -> Path:
    """Write one preview to `out`, by default `preview-NAME.html` (`.txt`, `.eml`) here."""
    target = out or Path(f"preview-{name}.{ {'text': 'txt'}.get(fmt, fmt) }")
    target.write_bytes(data)
    return target


def open_in_browser(path: Path) -> None:
    import webbrowser

    webbrowser.open(path.resolve().as_uri())


def gallery(config: Config, out: Path, inliner: str | None = None) -> Path:
    """DIR/index.html: every template in every locale, at desktop and phone width, with its text."""
    out.mkdir(parents=True, exist_ok=True)
    cards = []
    for name in template_names(config):
        for locale in template_locales(config, name):
            message = compose_preview(config, None, name, locale=locale, inliner=inliner)
            stem = f"{name}.{locale}"
            (out / f"{stem}.html").write_text(message.rendered.html, encoding="utf-8")
            (out / f"{stem}.txt").write_text(message.rendered.text, encoding="utf-8")
            cards.append(_CARD.format(id=html.escape(stem), name=html.escape(name),
                                      locale=html.escape(locale), file=html.escape(stem),
                                      subject=html.escape(message.subject),
                                      text=html.escape(message.rendered.text)))
    index = out / "index.html"
    index.write_text(_PAGE.format(shop=html.escape(config.shop.name), cards="\n".join(cards)),
                     encoding="utf-8")
    return index


def check_wheres(config: Config) -> list[str]:
    """Each rule's `where:` evaluated against the sample data of its trigger."""
    from mailflow.rules.where import numeric_amounts, where_holds

    problems = []
    for rule in config.rules:
        if not rule.where:
            continue
        order, cart, customer = sample_subject(rule.on, config.shop.locale)
        try:
            where_holds(rule.where, {"order": numeric_amounts(order),
                                     "cart": numeric_amounts(cart), "customer": customer,
                                     "now": NOW})
        except Exception as exc:
            problems.append(f"{config.path.name}:{rule.line}: rule {rule.name}: where: {exc}")
    return problems


def check_project(config: Config) -> list[str]:
    """What `mailflow check` reports: the starter's placeholders left, then the templates."""
    from mailflow.starter import placeholders_left
    from mailflow.tracking import tracking_problems

    return placeholders_left(config) + tracking_problems(config.tracking, config.path.name) + \
        check_templates(config)


def check_templates(config: Config) -> list[str]:
    """Every template in every locale rendered against sample data, and every `where:`;
    problems as `templates/FILE[:LINE]: what` or `rules.yaml:LINE: ...`."""
    problems = check_wheres(config)
    composer = Composer(config, secret=preview_secret(config))
    for name in template_names(config):
        target = resolve(config, name)
        for locale in template_locales(config, name):
            try:
                message = compose_preview(config, None, name, locale=locale)
            except RenderError as exc:
                problems.append(str(exc))
                continue
            varied = _varied_failure(composer, target, locale)
            if varied is not None:
                problems.append(varied)
            file = f"templates/{message.rendered.template}"
            raw = (config.folder / "templates" / message.rendered.template).read_text("utf-8")
            for link in _RAW_LINK.findall(raw):
                if not re.match(r"^(https?:|mailto:|tel:|#|/|\{\{)", link.strip()):
                    line = raw[: raw.find(link)].count("\n") + 1
                    problems.append(f"{file}:{line}: relative link {link!r}: write an absolute"
                                    " URL, a path from the shop root (/…) or {{ shop.url }}/…")
            offer = message.rendered.linked if target.rule and target.rule.offer else None
            if offer is not None and not _shows_code(offer, target.rule):
                problems.append(f"{file}: rule {target.rule.name if target.rule else name} has an"
                                " offer, and this e-mail never shows its code ({{ m.offer(offer,"
                                f" \"{locale}\") }}}}): the code would be given and never seen")
            if target.marketing and message.headers.get("List-Unsubscribe"):
                url = message.headers["List-Unsubscribe"].split(">")[0].lstrip("<")
                if html.escape(url) not in message.rendered.html and url not in message.rendered.html:
                    problems.append(f"{file}: a marketing e-mail without the unsubscribe link"
                                    " ({{ unsubscribe_url }})")
                if config.shop.address and html.escape(config.shop.address) not in \
                        message.rendered.html:
                    problems.append(f"{file}: a marketing e-mail without the shop's postal"
                                    " address ({{ shop.address }})")
    return problems


def _shows_code(html_text: str, rule: Rule | None) -> bool:
    from mailflow.render.context import SAMPLE_CODE

    code = (rule.offer.code if rule and rule.offer else None) or SAMPLE_CODE
    return code in html_text


def _varied_failure(composer: Composer, target: Target, locale: str) -> str | None:
    """The first way the template breaks on varied data (samples.varied_subjects), and with
    a sample offer whether or not its rule has one, as one line naming the file, the line and
    the data; Jinja only (links, CSS and text do not depend on the data)."""
    subjects = varied_subjects(target.trigger, locale)
    label, order, cart, customer = subjects[0]
    cases: list[tuple[str, dict | None, dict | None, dict | None, dict | None, dict | None]] = [
        *((*subject, None, None) for subject in subjects),
        *((f"{label}, {what}", order, cart, customer, None, refund)
          for what, refund in (varied_refunds() if order else [])),
        (f"{label}, with an offer", order, cart, customer, sample_offer(), None)]
    products = products_view(sample_products(), composer.config.shop, None)
    for number, (label, order, cart, customer, offer, refund) in enumerate(cases):
        person = order or cart or customer or {}
        try:
            composer.message(key=f"check:{target.template}", rule=target.rule,
                             template=target.template, marketing=target.marketing, order=order,
                             cart=cart, customer=customer,
                             to=person.get("email") or "customer@example.com", now=NOW,
                             locale=locale, offer=offer, refund=refund,
                             products=products if number == len(cases) - 1 else None)
        except RenderError as exc:
            extra = ", with suggested products" if number == len(cases) - 1 else ""
            return f"{exc} (with sample data: {label}{extra})"
    return None


_CARD = """<section class="card" id="{id}">
  <h2>{name} <small>{locale}</small></h2>
  <p class="subject">{subject}</p>
  <div class="views">
    <figure><figcaption>desktop, 600 px</figcaption>
      <iframe class="desktop" src="{file}.html" title="{name} {locale} desktop"></iframe></figure>
    <figure><figcaption>phone, 375 px</figcaption>
      <iframe class="phone" src="{file}.html" title="{name} {locale} phone"></iframe></figure>
    <figure><figcaption>text</figcaption><pre>{text}</pre></figure>
  </div>
</section>"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{shop}: e-mail gallery</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1rem; background: #eee; }}
.card {{ background: #fff; margin: 0 0 1.5rem; padding: 1rem; border-radius: 6px; }}
.subject {{ font-weight: bold; }}
.views {{ display: flex; gap: 1rem; align-items: flex-start; overflow-x: auto; }}
iframe {{ border: 1px solid #ccc; height: 900px; background: #fff; }}
iframe.desktop {{ width: 640px; }} iframe.phone {{ width: 375px; }}
pre {{ width: 420px; white-space: pre-wrap; font-size: 12px; }}
</style></head>
<body><h1>{shop}: every e-mail, every language</h1>
{cards}
</body></html>
"""
