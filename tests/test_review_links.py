"""Review links that lead somewhere (issue 14, item 4): `shop.review.url` for the shop's
review page and `shop.review.product` for each product, with `{order.number}`, `{line.sku}`
and `{line.product_url}`, URL-encoded; a line the product link cannot be filled for falls back
to the shop's page; an unknown placeholder is refused with its line."""

from __future__ import annotations

import re

from mailflow.content import ReviewLinks
from mailflow.render.context import review_view

RULES = """\
shop:
  name: Savonnerie Test
  url: https://savonnerie-test.example
  address: 1 rue Test, 75001 Paris
  timezone: Europe/Paris
  locale: fr
  currency: EUR
{review}
sender:
  from: Savonnerie Test <bonjour@savonnerie-test.example>
rules:
  - {{name: review-request, on: order.delivered, template: review_request, category: marketing}}
"""
REVIEW = """\
  review:
    url: https://avis.example/boutique/savonnerie-test?commande={order.number}
    product: https://savonnerie-test.example/avis?sku={line.sku}&commande={order.number}
"""
ORDERS = ("order_id,email,first_name,locale,accepts_marketing,status,created_at,delivered_at,"
          "total,line_sku,line_name,line_quantity,line_price\n"
          "#1042,ana@example.com,Ana,fr,yes,delivered,2026-03-02 10:00,2026-03-05 10:00,39.00,"
          "SAV&OLV 1,Savon à l'olive,2,9.50\n"
          "#1042,,,,,,,,,,Bougie sans référence,1,20.00\n"
          "#1043,bob@example.com,Bob,en,yes,delivered,2026-03-02 10:00,2026-03-05 10:00,9.50,"
          "SAV-OLV,Olive soap,1,9.50\n")


def project(mailflow, review: str = REVIEW):
    assert mailflow("init", mailflow.folder / "p").exit_code == 0
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    mailflow.config.write_text(RULES.format(review=review.rstrip("\n")), encoding="utf-8")
    result = mailflow("import", mailflow.write("o.csv", ORDERS), "--now", "2026-03-06T10:00")
    assert result.exit_code == 0, result.stderr


def html_of(mailflow, order: str) -> str:
    result = mailflow("preview", "review-request", "--order", order, "--format", "html")
    assert result.exit_code == 0, result.stderr
    return result.stdout


def links(html: str, label: str) -> list[str]:
    return [href.replace("&amp;", "&") for href, text in
            re.findall(r'<a [^>]*href="([^"]+)"[^>]*>([^<]+)</a>', html) if text == label]


def test_each_product_gets_its_own_review_link_and_the_button_the_shops_page(mailflow):
    project(mailflow)
    html = html_of(mailflow, "#1042")
    per_product = links(html, "Donner mon avis sur ce produit")
    # the SKU and the order number are URL-encoded; the candle has no SKU: the shop's page
    assert per_product == [
        "https://savonnerie-test.example/avis?sku=SAV%26OLV+1&commande=1042&utm_source=mailflow"
        "&utm_campaign=review-request",
        "https://avis.example/boutique/savonnerie-test?commande=1042"]
    assert links(html, "Donner mon avis") == [
        "https://avis.example/boutique/savonnerie-test?commande=1042"]
    english = html_of(mailflow, "#1043")
    assert links(english, "Review this product") == [
        "https://savonnerie-test.example/avis?sku=SAV-OLV&commande=1043&utm_source=mailflow"
        "&utm_campaign=review-request"]
    assert links(english, "Leave a review") == [
        "https://avis.example/boutique/savonnerie-test?commande=1043"]


def test_without_review_links_the_button_goes_to_the_shop_as_before(mailflow):
    project(mailflow, review="")
    html = html_of(mailflow, "#1042")
    assert links(html, "Donner mon avis sur ce produit") == []
    assert links(html, "Donner mon avis") == [
        "https://savonnerie-test.example/?utm_source=mailflow&utm_campaign=review-request"]


def test_only_product_links_show_no_button_to_the_home_page(mailflow):
    project(mailflow, review="  review:\n    product: https://savonnerie-test.example/p/{line.sku}#avis")
    html = html_of(mailflow, "#1043")
    assert links(html, "Review this product") == [
        "https://savonnerie-test.example/p/SAV-OLV?utm_source=mailflow"
        "&utm_campaign=review-request#avis"]
    assert links(html, "Leave a review") == []


def test_a_lines_product_page_from_the_catalogue_is_used_else_the_shops_page():
    # the products catalogue (import --kind products) gives a line its product_url
    review = ReviewLinks(url="https://avis.example/s?o={order.number}",
                         product="{line.product_url}#avis")
    order = {"id": "#7", "lines": [
        {"sku": "A", "name": "A", "quantity": 1, "product_url": "https://shop.example/p/a"},
        {"sku": "B", "name": "B", "quantity": 1, "product_url": None},
        {"sku": "C", "name": "C", "quantity": 1, "product_url": "javascript:alert(1)"}]}
    view = review_view(review, order, "https://shop.example")
    assert view is not None
    assert [line["review_url"] for line in view["lines"]] == [
        "https://shop.example/p/a#avis", "https://avis.example/s?o=7", "https://avis.example/s?o=7"]
    query = ReviewLinks(product="https://reviews.example/new?page={line.product_url}")
    assert review_view(query, order, "https://shop.example")["lines"][0]["review_url"] == \
        "https://reviews.example/new?page=https%3A%2F%2Fshop.example%2Fp%2Fa"


def test_the_imported_catalogue_gives_each_line_its_product_page(mailflow):
    project(mailflow, review="  review:\n    product: \"{line.product_url}#avis\"")
    catalogue = mailflow.write("products.csv", "sku,name,url,image,price,currency,available\n"
                               "SAV-OLV,Olive soap,/products/savon-olive,,9.50,EUR,yes\n")
    result = mailflow("import", catalogue, "--kind", "products", "--now", "2026-03-06T10:00")
    assert result.exit_code == 0, result.stderr
    assert links(html_of(mailflow, "#1043"), "Review this product") == [
        "https://savonnerie-test.example/products/savon-olive?utm_source=mailflow"
        "&utm_campaign=review-request#avis"]


def test_check_refuses_an_unknown_placeholder_with_its_line(mailflow):
    for review, message in (
            ("  review:\n    product: https://s.example/avis/{line.name}",
             "rules.yaml:9: shop.review.product: unknown placeholder {line.name}: use"
             " {order.number}, {line.sku}, {line.product_url}"),
            ("  review:\n    url: https://s.example/avis/{line.sku}",
             "rules.yaml:9: shop.review.url: unknown placeholder {line.sku}: use {order.number}"),
            ("  review:\n    url: avis.example/{order.number}",
             "rules.yaml:9: shop.review.url 'avis.example/{order.number}' must give an absolute"
             " http(s) URL"),
            ("  review: {}", "rules.yaml:8: shop.review needs a url")):
        mailflow.config = mailflow.write_config(RULES.format(review=review))
        result = mailflow("check")
        assert result.exit_code == 2, (review, result.stderr)
        assert message in result.stderr, (review, result.stderr)
        assert "Traceback" not in result.stderr
