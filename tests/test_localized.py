"""Texts the shop writes into its e-mails (payment instructions, a rule's subject): one text
for every language, or one per language, each e-mail getting its own language's."""

from __future__ import annotations

import email
from email import policy

import pytest

RULES = """\
shop:
  name: Boutique Test
  url: https://boutique-test.example
  timezone: Europe/Paris
  locale: fr
  currency: EUR
  payment_instructions: {instructions}
sender:
  from: Boutique Test <bonjour@boutique-test.example>
delivery:
  transport: file
  dir: outbox
rules:
  - name: payment-pending
    on: order.pending_payment
    template: payment_pending
  - name: confirmation
    on: order.placed
    template: order_confirmation
{subject}
"""
ORDERS = ("order_id,email,first_name,locale,status,created_at,total,payment_method,line_name,"
          "line_quantity,line_price\n")


def project(mailflow, instructions: str, subject: str = "") -> None:
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    mailflow.config.write_text(RULES.format(instructions=instructions, subject=subject),
                               encoding="utf-8")


def send_orders(mailflow, *locales: str) -> dict[tuple[str, str], email.message.EmailMessage]:
    rows = "".join(f"P-{i},c{i}@example.com,Camille,{locale},pending_payment,2026-03-02 10:00,"
                   f"20.00,Virement bancaire,Mug,1,20.00\n" for i, locale in enumerate(locales))
    assert mailflow("import", mailflow.write("o.csv", ORDERS + rows), "--now", "2026-03-02T10:01"
                    ).exit_code == 0
    result = mailflow("send", "--now", "2026-03-02T10:05")
    assert result.exit_code == 0, result.stderr
    messages = {}
    for path in (mailflow.folder / "p" / "outbox").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        rule = path.name.split("_")[0]
        messages[(rule, message["To"].addresses[0].addr_spec)] = message
    return messages


def bodies(message) -> str:
    return (message.get_body(("html",)).get_content()
            + message.get_body(("plain",)).get_content())


def test_each_language_gets_its_own_payment_instructions(mailflow):
    project(mailflow, "\n    fr: |\n      Virement : IBAN FR-TEST\n"
                      "    en: |\n      Bank transfer: IBAN EN-TEST\n")
    sent = send_orders(mailflow, "fr", "en", "de")
    french, english = bodies(sent[("payment-pending", "c0@example.com")]), \
        bodies(sent[("payment-pending", "c1@example.com")])
    assert "Virement : IBAN FR-TEST" in french and "EN-TEST" not in french
    assert "Bank transfer: IBAN EN-TEST" in english and "FR-TEST" not in english
    # German has no template and no text: the shop's language, French, for both
    german = bodies(sent[("payment-pending", "c2@example.com")])
    assert "Votre commande attend votre paiement" in german and "FR-TEST" in german


def test_one_text_serves_every_language(mailflow):
    project(mailflow, "'Chèque / cheque: Boutique Test, 1 rue Test'",
            subject="    subject: 'Commande {{ order.id }} / order {{ order.id }}'")
    sent = send_orders(mailflow, "fr", "en")
    for to in ("c0@example.com", "c1@example.com"):
        assert "Chèque / cheque: Boutique Test, 1 rue Test" in bodies(sent[("payment-pending", to)])
    assert sent[("confirmation", "c1@example.com")]["Subject"] == "Commande P-1 / order P-1"


def test_a_rule_subject_per_language(mailflow):
    project(mailflow, "''", subject=(
        "    subject:\n      fr: 'Commande {{ order.id }} reçue'\n"
        "      fr_CA: 'Commande {{ order.id }} bien reçue'\n"
        "      en: 'Order {{ order.id }} received'\n"))
    sent = send_orders(mailflow, "fr_FR", "en-GB", "fr-CA", "de")
    subjects = {to: m["Subject"] for (rule, to), m in sent.items() if rule == "confirmation"}
    assert subjects == {"c0@example.com": "Commande P-0 reçue",
                        "c1@example.com": "Order P-1 received",
                        "c2@example.com": "Commande P-2 bien reçue",
                        "c3@example.com": "Commande P-3 reçue"}  # the shop's language
    # an empty text: the template's own "reply to this e-mail"
    assert "répondez simplement à cet e-mail" in bodies(sent[("payment-pending", "c0@example.com")])


@pytest.mark.parametrize(("instructions", "subject", "expected"), [
    ("\n    fr: Virement\n    french: Virement", "",
     "rules.yaml:9: shop.payment_instructions: 'french' is not a language code"),
    ("\n    fr: Virement\n    en: [a, b]", "",
     "rules.yaml:9: shop.payment_instructions.en needs a single value"),
    ("x", "    subject: {fr: Merci, EN: Thanks}",
     "rules.yaml:20: rule confirmation: subject: 'EN' is not a language code"),
])
def test_a_language_key_that_is_not_a_code_names_its_line(mailflow, instructions, subject,
                                                          expected):
    project(mailflow, instructions, subject)
    result = mailflow("check")
    assert result.exit_code == 2
    assert expected in result.stderr, result.stderr
