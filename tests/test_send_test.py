"""`mailflow send-test` (issue 14): one e-mail, marked as a test, to the owner's address
through the configured transport (a real SMTP server on 127.0.0.1, or the file transport),
recorded nowhere."""

from __future__ import annotations

import email
from email import policy

from smtp_server import SinkServer

from mailflow.consent.tokens import read_token

RULES = """\
shop:
  name: Boutique Test
  url: https://boutique-test.example
  address: 1 rue Test, 75001 Paris
  timezone: Europe/Paris
  locale: fr
  currency: EUR
sender:
  from: Boutique Test <bonjour@boutique-test.example>
delivery:
{delivery}
unsubscribe:
  url: https://boutique-test.example/unsub?token={{token}}
  secret_env: MAILFLOW_SECRET
rules:
  - {{name: order-confirmation, on: order.placed, template: order_confirmation}}
  - name: abandoned-cart
    on: cart.abandoned
    after: 20m
    template: abandoned_cart
    category: marketing
    offer: {{pool: panier, text: "5 € offerts"}}
"""
SMTP = "  transport: smtp\n  smtp: {{host: 127.0.0.1, port: {port}, security: none, timeout: 5s}}"
ORDERS = ("order_id,email,first_name,accepts_marketing,status,created_at,paid_at,total,"
          "line_sku,line_name,line_quantity,line_price\n"
          "A-1,ana@example.com,Ana,yes,paid,2026-03-02 10:00,2026-03-02 10:00,20.00,MUG,Mug "
          "bleu,1,20.00\n")


def project(mailflow, delivery: str) -> None:
    assert mailflow("init", mailflow.folder / "p").exit_code == 0
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    mailflow.config.write_text(RULES.format(delivery=delivery), encoding="utf-8")
    assert mailflow("import", mailflow.write("o.csv", ORDERS), "--now", "2026-03-02T10:05"
                    ).exit_code == 0


def test_one_marked_message_reaches_the_smtp_server_and_the_outbox_stays_as_it_was(
        mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_SECRET", "s3cret")
    with SinkServer() as sink:
        project(mailflow, SMTP.format(port=sink.port))
        before = mailflow.dump()
        result = mailflow("send-test", "order-confirmation", "--to", "owner@example.org",
                          "--order", "A-1", "--now", "2026-03-02T11:00")
        assert result.exit_code == 0, result.stderr
        assert "sent '[TEST] Merci pour votre commande n° A-1' to owner@example.org" in result.stdout
        assert len(sink.received) == 1
        message = sink.received[0]
        assert message["Subject"] == "[TEST] Merci pour votre commande n° A-1"
        assert message["X-Envelope-To"] == "owner@example.org"
        assert email.utils.parseaddr(message["To"]) == ("", "owner@example.org")
        assert "Mug bleu" in message.get_body(("plain",)).get_content()  # the store's order
        assert mailflow.dump() == before, "recorded nowhere: no outbox row, no run"
        again = mailflow("send-test", "order-confirmation", "--to", "owner@example.org",
                         "--json")
        assert again.exit_code == 0
        assert again.json()["status"] == "sent" and again.json()["transport"] == "smtp"
        ids = sink.message_ids()
        assert len(ids) == 2 and len(set(ids)) == 2, "every test is a new message"
        assert "Camille" in sink.received[1].get_body(("plain",)).get_content()  # sample data
        assert mailflow.dump() == before


def test_a_marketing_test_is_unsubscribed_for_the_test_address_and_takes_no_code(
        mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_SECRET", "s3cret")
    with SinkServer() as sink:
        project(mailflow, SMTP.format(port=sink.port))
        codes = mailflow.write("codes.txt", "REAL-0001\n")
        assert mailflow("codes", "import", codes, "--pool", "panier").exit_code == 0
        before = mailflow.dump()
        result = mailflow("send-test", "abandoned-cart", "--to", "owner@example.org",
                          "--locale", "en")
        assert result.exit_code == 0, result.stderr
        message = sink.received[0]
        assert message["Subject"].startswith("[TEST] ")
        link = message["List-Unsubscribe"].strip("<>").split("token=")[1]
        assert read_token(link, b"s3cret") == "owner@example.org"
        text = message.get_body(("plain",)).get_content()
        assert "EXEMPLE-CODE" in text and "REAL-0001" not in text
        assert "Did you forget something?" in text
        assert mailflow.dump() == before


def test_the_file_transport_writes_one_eml_and_a_bad_address_is_refused(mailflow):
    project(mailflow, "  transport: file\n  dir: outbox")
    outbox = mailflow.folder / "p" / "outbox"
    before = mailflow.dump()
    result = mailflow("send-test", "order_confirmation", "--to", "owner@example.org")
    assert result.exit_code == 0, result.stderr
    files = list(outbox.glob("*.eml"))
    assert len(files) == 1 and files[0].name.startswith("send-test_order_confirmation")
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["Subject"].startswith("[TEST] Merci pour votre commande")
    assert mailflow.dump() == before
    bad = mailflow("send-test", "order-confirmation", "--to", "not an address")
    assert bad.exit_code == 2 and "--to 'not an address'" in bad.stderr
    unknown = mailflow("send-test", "nope", "--to", "owner@example.org")
    assert unknown.exit_code == 2 and "no rule or template named 'nope'" in unknown.stderr
