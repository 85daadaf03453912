"""Rendering speed of the order confirmation (CONTRACT §10), all measured in one run.


  - Jinja alone: the same template rendered, nothing else (the reference);
  - mailflow with css-inline: render, absolute/UTM links, inlining (target >= 25% of Jinja);
  - mailflow with premailer: the same (target: within 10% of premailer's own speed);
  - premailer alone on the same rendered HTML (the premailer reference);
  - the text part, derived from the HTML, reported apart (it is not in the §10 target).

    python bench/render.py [--seconds 3] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("MAILFLOW_SECRET", "bench")

from mailflow.config import load_config
from mailflow.render.context import message_context
from mailflow.render.inline import available, inliner
from mailflow.render.samples import NOW, sample_customer, sample_order
from mailflow.render.templates import Renderer, fix_links, html_to_text

RULES = Path(__file__).parent.parent / "mailflow" / "data" / "rules.yaml"


def rate(work, seconds: float) -> float:
    """Calls per second of `work`, over at least `seconds`."""
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(20):
            work(calls)
            calls += 1
    return calls / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
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
    cases["premailer alone, same HTML"] = lambda i: premailer(rendered_html)
    cases["text part (derived)"] = lambda i: html_to_text(rendered_html)
    results = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, work in cases.items():
            results[name].append(rate(work, args.seconds / (4 if "premailer" in name else 1)))
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


if __name__ == "__main__":
    main()
