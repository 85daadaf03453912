"""Rendering speed of the order confirmation (CONTRACT §10), all measured in one run.


  - Jinja alone: the same template rendered, nothing else (the reference);
  - mailflow with css-inline: render, absolute/UTM links, inlining (target >= 25% of Jinja);
  - mailflow with premailer: the same (target: within 10% of premailer's own speed);
  - premailer alone on the same rendered HTML (the premailer reference);
  - the text part, derived from the HTML, reported apart (it is not in the §10 target);
  - with complementary products (issue 14): the same confirmation with `products: 3`, its
    suggestions read from a store of --orders orders (--products products, 1 to 4 lines each,
    a few products much more popular than the rest) and a catalogue, a different order each
    message, as a run reads them; reported as a cost per message beside the same path without.

    python bench/render.py [--seconds 3] [--runs 5] [--orders 200000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("MAILFLOW_SECRET", "bench")

from mailflow.config import load_config
from mailflow.records import Line, Order, Product
from mailflow.render.context import message_context, products_view
from mailflow.render.inline import available, inliner
from mailflow.render.samples import NOW, sample_customer, sample_order
from mailflow.render.templates import Renderer, fix_links, html_to_text
from mailflow.rules.suggestions import ProductSettings, Suggestions
from mailflow.store import Store
from mailflow.store.products import write_products

RULES = Path(__file__).parent.parent / "mailflow" / "data" / "rules.yaml"


def rate(work, seconds: float) -> float:
    """Calls per second of `work`, over at least `seconds`."""
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(20):
            work(calls)
            calls += 1
    return calls / elapsed


def build_history(path: Path, orders: int, products: int) -> Store:
    """Orders of 1-4 products over the last year, popularity falling off as 1/rank."""
    store = Store.open(path)
    pick = random.Random(14)
    weights = [1 / (rank + 1) for rank in range(products)]
    skus = [f"SKU-{n:04d}" for n in range(products)]
    with store.transaction():
        writer = store.import_writer(path="bench", sha256="bench", fmt="mailflow",
                                     kind="orders", now=NOW)
        batch: list[Order] = []
        for n in range(orders):
            items = dict.fromkeys(pick.choices(skus, weights, k=pick.randint(1, 4)))
            email = f"client{n % (orders // 2 or 1)}@example.com"
            o = Order(order_id=f"#{100000 + n}", line=n, email=email, status="paid",
                      created_at=NOW - timedelta(days=365) * (1 - n / orders), currency="EUR",
                      lines=[Line(sku, f"Produit {sku}", 1, "12.50") for sku in items])
            o.email_key = email
            batch.append(o)
            if len(batch) == 5000:
                writer.orders(batch)
                batch = []
        writer.orders(batch)
        write_products(store.conn, [
            Product(key=sku, line=0, name=f"Produit {sku}", sku=sku, url=f"/products/{sku}",
                    image=f"https://cdn.example/{sku}.jpg", price="12.50",
                    available=n % 10 != 9) for n, sku in enumerate(skus)], 0, "bench")
    store.conn.execute("ANALYZE")
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--products", type=int, default=500)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mailflow-render-"))
    started = time.perf_counter()
    store = build_history(folder / "bench.db", args.orders, args.products)
    print(f"store for the products case: {args.orders:,} orders, {args.products} products"
          f" (built in {time.perf_counter() - started:.0f} s)")
    recent = [store.order(f"#{100000 + args.orders - 1 - i}") for i in range(200)]
    config = load_config(RULES)
    rule = config.rule("order-confirmation")
    orders = [sample_order("paid", "fr") | {"id": f"#{1000 + i}"} for i in range(50)]

    def context(i: int) -> dict:
        return message_context(shop=config.shop, rule=rule, rule_name=rule.name,
                               category=rule.category, order=orders[i % 50], cart=None,
                               customer=sample_customer("fr"), unsubscribe_url=None, now=NOW)

    renderers = {name: Renderer(config.folder / "templates", config.shop, name)
                 for name in available()}
    any_renderer = next(iter(renderers.values()))
    template_file = any_renderer.template_name(rule.template, "fr")
    template = any_renderer.environment("fr").get_template(template_file)
    # the HTML mailflow hands to the inliner: rendered, links made absolute with UTM
    rendered_html = fix_links(template.render(context(0)), config.shop.url, rule.name)
    premailer = inliner("premailer")

    cases = {"jinja alone": lambda i: template.render(context(i))}
    for name, renderer in renderers.items():
        cases[f"mailflow, {name}"] = (
            lambda i, r=renderer: r.render(rule.template, "fr", context(i), campaign=rule.name).html)
    suggest = Suggestions(store, NOW)  # one run's: what it reads of the store, it reads once
    settings = ProductSettings(count=3)
    for row in recent:  # a batch's steady state; a run's first message is measured apart
        suggest.for_subject(settings, "order", row, (row or {}).get("email_key"))
    with_products_renderer = renderers.get("css-inline") or any_renderer

    def with_products(i: int) -> str:
        row = recent[i % len(recent)] or {}
        found = suggest.for_subject(settings, "order", row, row.get("email_key"))
        ctx = context(i) | {"products": products_view(found, config.shop, "EUR")}
        return with_products_renderer.render(rule.template, "fr", ctx, campaign=rule.name).html

    inliner_used = "css-inline" if "css-inline" in renderers else next(iter(renderers))
    cases[f"mailflow, {inliner_used}, with products"] = with_products
    cases["suggestions alone (store)"] = lambda i: suggest.for_subject(
        settings, "order", recent[i % len(recent)], (recent[i % len(recent)] or {}).get("email_key"))
    # a run's first message: nothing read yet (its products' orders, the catalogue, best sellers)
    cases["suggestions, first of a run"] = lambda i: Suggestions(store, NOW).for_subject(
        settings, "order", recent[i % len(recent)], (recent[i % len(recent)] or {}).get("email_key"))
    cases["premailer alone, same HTML"] = lambda i: premailer(rendered_html)
    cases["text part (derived)"] = lambda i: html_to_text(rendered_html)
    results = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, work in cases.items():
            results[name].append(rate(work, args.seconds / (4 if "premailer" in name or "first" in name
                                                             else 1)))
    medians = {name: statistics.median(values) for name, values in results.items()}
    print(f"order confirmation ({template_file}, {len(rendered_html):,} bytes of HTML),"
          f" median of {args.runs} runs, e-mails/s on one core:")
    for name, value in medians.items():
        print(f"  {name:<28} {value:>9,.0f}/s")
    jinja = medians["jinja alone"]
    if "mailflow, css-inline" in medians:
        print(f"css-inline path / Jinja alone:  {medians['mailflow, css-inline'] / jinja:6.1%}"
              "   (target >= 25%)")
    ratio = medians["mailflow, premailer"] / medians["premailer alone, same HTML"]
    print(f"premailer path / premailer alone: {ratio:6.1%}   (target >= 90%)")
    without = 1000 / medians[f"mailflow, {inliner_used}"]
    with_ = 1000 / medians[f"mailflow, {inliner_used}, with products"]
    alone = 1000 / medians["suggestions alone (store)"]
    first = 1000 / medians["suggestions, first of a run"]
    print(f"per message ({inliner_used}): {without:.2f} ms without products, {with_:.2f} ms with"
          f" 3 products ({with_ / without:.2f}x; the suggestions alone {alone:.2f} ms, {first:.1f} ms"
          " for a run's first message)")
    store.close()


if __name__ == "__main__":
    main()
