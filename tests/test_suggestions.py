"""Complementary products (issue 14, 2): on a generated history with known co-purchases, the
e-mails suggest what other customers bought with these items, most shared first, never what
the customer already has, then the recent best sellers; with the catalogue's URL, image and
price when one is imported. Real CLI (`preview` from the store, `send` to the file transport),
real SQLite."""

from __future__ import annotations

import email
import html as htmllib
import json
import re
from email import policy

import pytest
from test_browser import CHROMIUM, PROBE, chromium

RULES = """\
shop:
  name: Boutique Test
  url: https://boutique.example
  address: 1 rue Test, 75001 Paris
  timezone: Europe/Paris
  locale: fr
  currency: EUR
sender:
  from: Boutique Test <bonjour@boutique.example>
delivery:
  transport: file
  dir: outbox
rules:
  - name: order-confirmation
    on: order.placed
    template: order_confirmation
    products: {count}
  - name: abandoned-cart
    on: cart.abandoned
    after: 20m
    template: abandoned_cart
    category: marketing
    products: 3
  - name: win-back
    on: customer.inactive
    after: 120d
    template: win_back
    category: marketing
    products: 3
  - name: shipped
    on: order.shipped
    template: order_shipped
"""
NOW = "2026-03-02T12:00"
HEADER = ("order_id,email,accepts_marketing,status,created_at,paid_at,cancelled_at,currency,total,"
          "line_sku,line_name,line_quantity,line_price\n")
# (order, customer, status, day, products): the history whose co-purchases are known
HISTORY = [
    ("101", "a1", "paid", "2026-02-01", "AB"),
    ("102", "a2", "paid", "2026-02-02", "AB"),
    ("103", "a3", "paid", "2026-02-03", "ABC"),
    ("104", "a4", "paid", "2026-02-04", "AC"),
    ("105", "a5", "paid", "2026-02-05", "AD"),
    ("106", "a6", "paid", "2026-02-06", "AG"),
    ("107", "camille", "paid", "2026-01-10", "CE"),  # what Camille already has
    ("108", "a7", "paid", "2026-02-08", "EF"),
    ("109", "a8", "paid", "2026-02-09", "EF"),
    ("110", "a9", "paid", "2026-02-10", "E"),
    ("111", "a10", "paid", "2026-02-11", "FH"),
    ("112", "a11", "cancelled", "2026-02-12", "AHHH"),  # a cancelled order says nothing
    *((f"00{n}", f"old{n}", "paid", "2025-06-01", "K") for n in range(5)),  # past 90 days
    ("200", "camille", "paid", "2026-03-02", "A"),  # the order being confirmed
    ("300", "new", "paid", "2026-03-02", "Z"),  # something nobody else bought
]


def _history() -> str:
    rows = []
    for order, who, status, day, items in HISTORY:
        at = f"{day} 11:30:00"
        for item in dict.fromkeys(items):
            rows.append(f"{order},{who}@example.com,yes,{status},{at},{at},"
                        f"{at if status == 'cancelled' else ''},EUR,10.00,{item},Produit {item},"
                        "1,10.00")
    return HEADER + "\n".join(rows) + "\n"


@pytest.fixture
def shop(mailflow):
    assert mailflow("init", mailflow.folder / "project").exit_code == 0
    mailflow.config = mailflow.folder / "project" / "rules.yaml"
    mailflow.write_config(RULES.format(count=3))
    result = mailflow("import", mailflow.write("orders.csv", _history()), "--now", NOW)
    assert result.exit_code == 0, result.stderr
    return mailflow


def suggested(mf, *selector: str) -> list[str]:
    result = mf("preview", *selector, "--format", "html", "--out", mf.folder / "p.html",
                "--now", NOW)
    assert result.exit_code == 0, result.stderr
    html = (mf.folder / "p.html").read_text(encoding="utf-8")
    heading = html.find("Souvent achetés avec ces articles")
    return [] if heading < 0 else re.findall(r">Produit ([A-Z])<", html[heading:])


def test_most_often_bought_together_first_never_what_the_customer_has(shop):
    # with A, others bought B 3 times, C twice (Camille has it), D and G once (a tie: by key)
    assert suggested(shop, "order-confirmation", "--order", "200") == ["B", "D", "G"]


def test_best_sellers_of_the_last_90_days_fill_up(shop):
    shop.write_config(RULES.format(count=5))
    # B, D, G bought with A; then the recent best sellers Camille has not: F (3 orders), H (1:
    # its cancelled order does not count); A, C, E she has; K sold only 9 months ago
    assert suggested(shop, "order-confirmation", "--order", "200") == ["B", "D", "G", "F", "H"]
    # Z: nobody else bought it, so best sellers only: A 7 orders, E 4, then B, C, F (3, by key)
    assert suggested(shop, "order-confirmation", "--order", "300") == ["A", "E", "B", "C", "F"]


def test_the_cart_reminder_suggests_around_the_cart(shop):
    cart = shop.write("carts.csv", "cart_id,email,accepts_marketing,created_at,updated_at,"
                      "currency,total,line_sku,line_name,line_quantity,line_price\n"
                      "K1,camille@example.com,yes,2026-03-02 11:00,2026-03-02 11:10,EUR,10,B,"
                      "Produit B,1,10\n")
    assert shop("import", cart, "--kind", "carts", "--now", NOW).exit_code == 0
    # with B, others bought A and C: Camille has both; best sellers then, F, and D, G, H (1 each)
    assert suggested(shop, "abandoned-cart", "--cart", "K1") == ["F", "D", "G"]


def test_the_win_back_suggests_around_what_the_customer_bought(shop):
    # Camille has A, C and E; others bought B with them 3 times, F twice, D and G once
    assert suggested(shop, "win-back", "--customer", "camille@example.com") == ["B", "F", "D"]


def test_with_a_catalogue_only_available_products_with_link_image_and_price(shop):
    catalogue = shop.write("catalogue.csv", (
        "sku,name,url,image,price,available\n"
        "B,Produit B,/products/b,https://cdn.example/b.jpg,19.90,yes\n"
        "D,Produit D,/products/d,,12.00,no\n"
        "F,Produit F,https://boutique.example/products/f,,8,yes\n"
        "G,Produit G,/products/g,,5.5,yes\n"))
    assert shop("import", catalogue, "--now", NOW).exit_code == 0
    assert suggested(shop, "order-confirmation", "--order", "200") == ["B", "G", "F"]
    html = (shop.folder / "p.html").read_text(encoding="utf-8")
    section = html[html.find("Souvent achetés"):]
    assert "https://boutique.example/products/b?utm_source=mailflow&amp;utm_campaign=" \
           "order-confirmation" in section
    assert 'src="https://cdn.example/b.jpg"' in section
    assert "19,90&nbsp;€" in section and "5,50&nbsp;€" in section


def test_in_english_and_absent_when_the_rule_has_no_products(shop):
    result = shop("preview", "order-confirmation", "--order", "200", "--locale", "en",
                  "--format", "text", "--out", shop.folder / "p.txt", "--now", NOW)
    assert result.exit_code == 0, result.stderr
    text = (shop.folder / "p.txt").read_text(encoding="utf-8")
    assert "Often bought with these items" in text and "Produit B" in text
    shop.write_config(RULES.format(count="false"))
    assert suggested(shop, "order-confirmation", "--order", "200") == []
    html = (shop.folder / "p.html").read_text(encoding="utf-8")
    assert "Souvent" not in html


def test_the_sent_confirmation_carries_the_block(shop, monkeypatch):
    monkeypatch.setenv("MAILFLOW_SECRET", "test-secret")
    result = shop("send", "--now", NOW, "--json")
    assert result.exit_code == 0, result.stderr
    sent = {}
    for path in (shop.folder / "project" / "outbox").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        sent[message["To"]] = message.get_body(("plain",)).get_content()
    assert "Souvent achetés avec ces articles" in sent["camille@example.com"]
    names = re.findall(r"Produit ([A-Z])", sent["camille@example.com"].split("Souvent")[1])
    assert names == ["B", "D", "G"]
    assert "Souvent" in sent["new@example.com"]


def test_a_bad_products_value_names_its_line(shop):
    shop.write_config(RULES.format(count=40))
    result = shop("preview", "order-confirmation", "--order", "200")
    assert result.exit_code == 2
    assert "rules.yaml:17: rule order-confirmation: products 40: a whole number from 1 to 12" \
        in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_the_block_fits_a_phone_and_adds_no_width_without_style(shop, tmp_path):
    """At 375 px the e-mails with the block never scroll sideways; with the <style> block
    dropped (as some clients do) the block makes no page wider than the same e-mail without
    it: a long name wraps, the image keeps its 64 px."""
    frames = []
    for count in (3, "false"):
        shop.write_config(RULES.format(count=count).replace("products: 3", f"products: {count}"))
        for name in ("order-confirmation",):
            out = tmp_path / f"{name}-{count}.html"
            assert shop("preview", name, "--format", "html", "--out", out).exit_code == 0
            page = out.read_text(encoding="utf-8").replace(
                "Sous-tasses en grès (lot de 2)", "Sous-tasses en grès émaillé bleu nuit " * 4)
            assert ("Souvent achetés avec ces articles" in page) == (count == 3)
            out.write_text(page, encoding="utf-8")
            bare = tmp_path / f"{name}-{count}.bare.html"
            bare.write_text(re.sub(r"<style.*?</style>", "", page, flags=re.S), encoding="utf-8")
            frames += [f'<iframe data-file="{f.name}" src="{f.name}" style="width:375px;'
                       'height:400px;border:0;display:block"></iframe>' for f in (out, bare)]
    probe = tmp_path / "probe.html"
    probe.write_text(PROBE.format(frames="\n".join(frames)), encoding="utf-8")
    dom = chromium("--window-size=1280,900", "--virtual-time-budget=5000", "--dump-dom",
                   probe.as_uri(), profile=tmp_path / "profile")
    match = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert match and match.group(1), dom[-500:]
    width = {r["file"]: r["scroll"] for r in json.loads(htmllib.unescape(match.group(1)))}
    assert len(width) == 4
    for name in ("order-confirmation",):
        assert width[f"{name}-3.html"] <= 375, f"{name} scrolls sideways on a phone"
        assert width[f"{name}-3.bare.html"] <= width[f"{name}-false.bare.html"], \
            f"{name}: the block widens the e-mail without <style>"
