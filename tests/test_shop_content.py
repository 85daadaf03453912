"""The shop's service and legal content (issue 14, item 3): customer service, returns and the
right of withdrawal, terms of sale, estimated delivery per shipping method, social pages and a
logo, from rules.yaml, per language; each block only when rules.yaml gives it."""

from __future__ import annotations

import re

RULES = """\
shop:
  name: Savonnerie Test
  url: https://savonnerie-test.example
  address: 1 rue Test, 75001 Paris
  timezone: Europe/Paris
  locale: fr
  currency: EUR
{content}
sender:
  from: Savonnerie Test <bonjour@savonnerie-test.example>
rules:
  - {{name: order-confirmation, on: order.placed, template: order_confirmation}}
  - {{name: shipped, on: order.shipped, template: order_shipped}}
  - {{name: cancelled, on: order.cancelled, template: order_cancelled}}
"""
CONTENT = """\
  logo: https://cdn.savonnerie-test.example/logo.png
  service:
    email: aide@savonnerie-test.example
    phone: "01 23 45 67 89"
    hours: {fr: "du lundi au vendredi, de 9 h à 18 h", en: "Monday to Friday, 9am to 6pm"}
  returns:
    url: https://savonnerie-test.example/retours
  terms_url: https://savonnerie-test.example/cgv
  delivery_times:
    colissimo: {fr: "2 à 3 jours ouvrés", en: "2 to 3 working days"}
  social:
    Instagram: https://www.instagram.com/savonnerie.test
    Facebook: https://www.facebook.com/savonnerie.test
"""
ORDERS = ("order_id,email,first_name,locale,status,created_at,paid_at,shipped_at,total,"
          "shipping_method,line_sku,line_name,line_quantity,line_price\n"
          "A-1,ana@example.com,Ana,fr,paid,2026-03-02 10:00,2026-03-02 10:00,,20.00,Colissimo,"
          "MUG,Mug bleu,1,20.00\n"
          "A-2,bob@example.com,Bob,en,shipped,2026-03-01 10:00,2026-03-01 10:00,"
          "2026-03-02 09:00,20.00,Colissimo,MUG,Blue mug,1,20.00\n")


def project(mailflow, content: str = CONTENT):
    assert mailflow("init", mailflow.folder / "p").exit_code == 0
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    mailflow.config.write_text(RULES.format(content=content.rstrip("\n")), encoding="utf-8")
    result = mailflow("import", mailflow.write("o.csv", ORDERS), "--now", "2026-03-02T10:05")
    assert result.exit_code == 0, result.stderr


def preview(mailflow, rule: str, order: str, fmt: str = "text") -> str:
    result = mailflow("preview", rule, "--order", order, "--format", fmt)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_the_confirmation_recalls_the_right_of_withdrawal_and_says_when_it_arrives(mailflow):
    project(mailflow)
    fr = preview(mailflow, "order-confirmation", "A-1")
    assert "Délai de livraison estimé : 2 à 3 jours ouvrés" in fr
    assert ("Vous disposez de 14 jours à compter de la réception de votre commande pour exercer"
            " votre droit de rétractation, sans avoir à vous justifier (article L221-18 du Code"
            " de la consommation).") in fr
    assert "Comment nous retourner un article ( https://savonnerie-test.example/retours?" in fr
    assert ("Une question ? Notre service client : aide@savonnerie-test.example ou"
            " 01 23 45 67 89 (du lundi au vendredi, de 9 h à 18 h)") in fr
    assert "Conditions générales de vente ( https://savonnerie-test.example/cgv?" in fr
    assert "Suivez-nous : Instagram ( https://www.instagram.com/savonnerie.test ) ·" \
           " Facebook ( https://www.facebook.com/savonnerie.test )" in fr
    # the text part begins with the message, not with the logo's alt text
    assert fr.startswith("Merci pour votre commande !\n\nBonjour Ana,")

    html = preview(mailflow, "order-confirmation", "A-1", "html")
    assert re.search(r'<img[^>]+src="https://cdn.savonnerie-test.example/logo.png"[^>]+'
                     r'alt="Savonnerie Test"', html)
    assert 'href="tel:0123456789"' in html and 'href="mailto:aide@savonnerie-test.example"' in html


def test_the_same_blocks_in_english_and_the_shipped_email_gives_the_delivery_time(mailflow):
    project(mailflow)
    en = preview(mailflow, "shipped", "A-2")
    assert "Estimated delivery time: 2 to 3 working days" in en
    assert ("A question? Our customer service: aide@savonnerie-test.example or 01 23 45 67 89"
            " (Monday to Friday, 9am to 6pm)") in en
    assert "Terms of sale ( https://savonnerie-test.example/cgv?" in en
    assert "withdrawal" not in en  # the confirmation's, not every e-mail's
    confirmation = preview(mailflow, "order-confirmation", "A-2")
    assert ("You have 14 days from receiving your order to withdraw from your purchase, without"
            " giving any reason") in confirmation
    assert "How to return an item ( https://savonnerie-test.example/retours?" in confirmation


def test_without_content_keys_no_block_appears(mailflow):
    project(mailflow, content="")
    for rule, order in (("order-confirmation", "A-1"), ("shipped", "A-2"),
                        ("order-confirmation", "A-2")):
        text = preview(mailflow, rule, order)
        for words in ("rétractation", "withdrawal", "service client", "customer service",
                      "Conditions générales", "Terms of sale", "Suivez-nous", "Follow us",
                      "Délai de livraison", "Estimated delivery"):
            assert words not in text, (rule, order, words)
    assert "<img" not in preview(mailflow, "order-confirmation", "A-1", "html")


def test_the_shop_writes_its_own_returns_text_and_a_longer_withdrawal_period(mailflow):
    project(mailflow, content="""\
  returns:
    days: 30
  service: {hours: "7j/7"}
""")
    assert "Vous disposez de 30 jours à compter de la réception" in preview(
        mailflow, "order-confirmation", "A-1")
    project_text = mailflow.config.read_text(encoding="utf-8").replace(
        "    days: 30\n", "    text: {fr: \"Retours gratuits sous 30 jours.\","
        " en: \"Free returns within 30 days.\"}\n")
    mailflow.config.write_text(project_text, encoding="utf-8")
    fr = preview(mailflow, "order-confirmation", "A-1")
    assert "Retours gratuits sous 30 jours." in fr and "L221-18" not in fr
    assert "Notre service client : 7j/7" in fr
    assert "Free returns within 30 days." in preview(mailflow, "order-confirmation", "A-2")


def test_check_refuses_a_url_that_is_not_one_and_names_its_line(mailflow):
    for bad, message in (
            ("  terms_url: savonnerie-test.example/cgv",
             "rules.yaml:8: shop.terms_url 'savonnerie-test.example/cgv' must be an absolute"
             " http(s) URL"),
            ("  social:\n    Instagram: javascript:alert(1)",
             "rules.yaml:9: shop.social.Instagram 'javascript:alert(1)' must be an absolute"
             " http(s) URL"),
            ("  returns: {url: /retours}",
             "rules.yaml:8: shop.returns.url '/retours' must be an absolute http(s) URL"),
            ("  service: {email: aide}",
             "rules.yaml:8: shop.service.email 'aide' is not an e-mail address"),
            ("  returns: {days: 7}", "rules.yaml:8: shop.returns.days 7: a whole number from 14"),
            ("  delivery_times: {colissimo: {fr: x, français: y}}",
             "rules.yaml:8: shop.delivery_times.colissimo: 'français' is not a language code")):
        mailflow.config = mailflow.write_config(RULES.format(content=bad))
        result = mailflow("check")
        assert result.exit_code == 2, (bad, result.stderr)
        assert message in result.stderr, (bad, result.stderr)
        assert "Traceback" not in result.stderr


def test_a_list_where_a_mapping_belongs_is_one_clear_line(mailflow):
    for bad, message in (("  social: [https://www.instagram.com/x]",
                          "rules.yaml:8: shop.social should be a set of `key: value` lines"),
                         ("  delivery_times: 3 jours",
                          "rules.yaml:8: shop.delivery_times should be a set of `key: value`"),
                         ("  service: aide@x.example",
                          "rules.yaml:8: shop.service should be a set of `key: value` lines"),
                         ("  review: https://avis.example",
                          "rules.yaml:8: shop.review should be a set of `key: value` lines")):
        mailflow.config = mailflow.write_config(RULES.format(content=bad))
        result = mailflow("check")
        assert (result.exit_code, "Traceback" in result.stderr) == (2, False), result.stderr
        assert message in result.stderr, (bad, result.stderr)
