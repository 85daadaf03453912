"""Offers (issue 14): a fixed code, or single-use codes from a pool, each given to one
recipient exactly once, in the transaction that claims its message; a pool that runs out
skips `no_code_left` and makes the run exit 1 with a warning. Real CLI, real SQLite, the
`file` transport (the SMTP and SIGKILL side is tests/test_offers_crash.py)."""

from __future__ import annotations

import email
import re
from email import policy

import pytest

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
  transport: file
  dir: outbox
  marketing_gap: 0
unsubscribe:
  url: https://boutique-test.example/unsub?token={{token}}
  secret_env: MAILFLOW_TEST_SECRET
rules:
  - name: abandoned-cart
    on: cart.abandoned
    after: 20m
    template: abandoned_cart
    category: marketing
    offer:
{offer}
  - name: order-confirmation
    on: order.placed
    template: order_confirmation
    offer:
      code: MERCI10
      text: {{fr: "10 % sur votre prochaine commande", en: "10% off your next order"}}
      expires_after: 30d
"""
POOL_OFFER = """\
      pool: panier
      text: {fr: "5 € offerts sur votre panier", en: "€5 off your cart"}
      expires_after: 7d
      warn_below: 5
"""
CART_HEADER = ("cart_id,email,first_name,accepts_marketing,locale,created_at,updated_at,total,"
               "recovery_url,line_sku,line_name,line_quantity,line_price\n")
NOW = "2026-03-02T12:00:00"


class Shop:
    def __init__(self, mailflow, offer: str = POOL_OFFER) -> None:
        self.mf = mailflow
        assert mailflow("init", mailflow.folder / "project").exit_code == 0
        self.folder = mailflow.folder / "project"
        mailflow.config = self.folder / "rules.yaml"
        mailflow.config.write_text(RULES.format(offer=offer), encoding="utf-8")

    def carts(self, count: int, *, first: int = 0, locale: str = "fr") -> None:
        rows = [f"C-{n:03d},client{n:03d}@example.com,Lou,yes,{locale},2026-03-02 10:00:00,"
                f"2026-03-02 11:{n % 40:02d}:00,34.00,https://boutique-test.example/cart/{n},"
                f"THE-1,Théière,1,34.00" for n in range(first, first + count)]
        path = self.mf.write(f"carts{first}.csv", CART_HEADER + "\n".join(rows) + "\n")
        result = self.mf("import", path, "--now", NOW)
        assert result.exit_code == 0, result.stderr

    def codes(self, count: int, *, pool: str = "panier", first: int = 0) -> None:
        path = self.mf.write(f"codes{first}.csv", "Code\n" + "".join(
            f"PANIER-{n:04d}\n" for n in range(first, first + count)))
        result = self.mf("codes", "import", path, "--pool", pool, "--now", NOW)
        assert result.exit_code == 0, result.stderr

    def eml(self) -> dict[str, email.message.EmailMessage]:
        """recipient -> the e-mail the file transport wrote."""
        found = {}
        for path in sorted((self.folder / "outbox").glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            found[email.utils.parseaddr(message["To"])[1]] = message
        return found


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content()


@pytest.fixture
def shop(mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_TEST_SECRET", "test-secret")
    return Shop(mailflow)


def test_50_reminders_from_a_pool_of_40_codes_send_40_distinct_codes_and_skip_10(shop):
    shop.carts(50)
    shop.codes(40)
    result = shop.mf("send", "--now", NOW, "--json")
    assert result.exit_code == 1, result.stderr  # the pool ran out: a human must know
    stderr = " ".join(result.stderr.split())
    assert "offer pool panier: no code left (warn_below: 5)" in stderr
    assert "mailflow codes import FILE --pool panier" in stderr
    messages = [m for m in result.json()["messages"] if m["rule"] == "abandoned-cart"]
    sent = [m for m in messages if m["status"] == "sent"]
    skipped = [m for m in messages if m["status"] == "skipped"]
    assert len(sent) == 40 and len(skipped) == 10
    assert {m["reason"] for m in skipped} == {"no_code_left"}
    codes = [m["offer_code"] for m in sent]
    assert len(set(codes)) == 40 and set(codes) == {f"PANIER-{n:04d}" for n in range(40)}
    # the earliest due get the codes, in the pool's order
    assert [m["offer_code"] for m in sorted(sent, key=lambda m: (m["due_at"], m["key"]))] == \
        [f"PANIER-{n:04d}" for n in range(40)]
    # each e-mail shows its own code, its text and its expiry (7 days from now)
    mails = shop.eml()
    assert len(mails) == 40
    for m in sent:
        body = text_of(mails[m["to"]])
        assert m["offer_code"] in body
        assert "5 € offerts sur votre panier" in body
        assert "Valable jusqu'au 9 mars 2026" in body
        others = set(re.findall(r"PANIER-\d{4}", body)) - {m["offer_code"]}
        assert not others, f"{m['to']} got another code too: {others}"
    # the outbox records each code, `log` shows it, the store gave each once
    log = shop.mf("log", "--rule", "abandoned-cart", "--json").json()
    assert sorted(r["offer_code"] for r in log if r["status"] == "sent") == sorted(codes)
    assert all(r["offer_code"] is None for r in log if r["status"] == "skipped")
    human = shop.mf("log", "--rule", "abandoned-cart")
    assert "(code PANIER-0000)" in human.stdout
    given = shop.mf.query("SELECT code, outbox_key FROM offer_codes")
    assert len({g["outbox_key"] for g in given}) == 40
    assert all(g["outbox_key"].startswith("abandoned-cart:cart:") for g in given)
    status = shop.mf("codes", "status", "--json").json()["pools"]
    assert status == [{"pool": "panier", "codes": 40, "given": 40, "left": 0, "warn_below": 5}]


def test_a_run_again_sends_nothing_and_keeps_warning_until_codes_come(shop):
    shop.carts(12)
    shop.codes(10)
    first = shop.mf("send", "--now", NOW, "--json")
    assert first.exit_code == 1 and first.json()["counts"] == {"sent": 10, "skipped": 2}
    again = shop.mf("send", "--now", NOW, "--json")
    assert again.exit_code == 1, "every run says the pool is empty"
    assert again.json()["messages"] == []
    shop.codes(10, first=100)  # new codes: no warning any more, nothing resent
    quiet = shop.mf("send", "--now", NOW, "--json")
    assert quiet.exit_code == 0, quiet.stderr
    assert quiet.json()["low_pools"] == []
    assert quiet.json()["messages"] == []


def test_warn_below_warns_while_codes_are_still_left(shop):
    shop.carts(3)
    shop.codes(7)
    result = shop.mf("send", "--now", NOW, "--json")
    assert result.exit_code == 1
    assert result.json()["counts"] == {"sent": 3}
    assert result.json()["low_pools"] == [{"pool": "panier", "left": 4, "warn_below": 5}]
    assert "offer pool panier: only 4 codes left (warn_below: 5)" in " ".join(result.stderr.split())


def test_a_dry_run_shows_which_code_would_go_and_takes_none(shop):
    shop.carts(5)
    shop.codes(4)
    before = shop.mf.dump()
    dry = shop.mf("send", "--now", NOW, "--dry-run", "--json")
    assert shop.mf.dump() == before, "a dry run changes nothing, codes included"
    messages = dry.json()["messages"]
    would = [m for m in messages if m["status"] == "would_send"]
    assert [m["offer_code"] for m in would] == [f"PANIER-{n:04d}" for n in range(4)]
    assert [m["reason"] for m in messages if m["status"] == "skipped"] == ["no_code_left"]
    human = shop.mf("send", "--now", NOW, "--dry-run")
    assert "(code PANIER-0000)" in human.stdout
    real = shop.mf("send", "--now", NOW, "--json").json()["messages"]
    assert [(m["key"], m["offer_code"]) for m in real if m["status"] == "sent"] == \
        [(m["key"], m["offer_code"]) for m in would], "the real run gives what the dry run showed"


def test_a_fixed_code_goes_to_everyone_with_its_text_in_their_language(shop, mailflow):
    orders = mailflow.write("orders.csv", (
        "order_id,email,first_name,locale,accepts_marketing,status,created_at,paid_at,total,"
        "line_sku,line_name,line_quantity,line_price\n"
        "A-1,ana@example.com,Ana,fr,yes,paid,2026-03-02 11:30:00,2026-03-02 11:30:00,20.00,"
        "MUG,Mug,1,20.00\n"
        "A-2,bob@example.com,Bob,en,yes,paid,2026-03-02 11:40:00,2026-03-02 11:40:00,20.00,"
        "MUG,Mug,1,20.00\n"))
    assert mailflow("import", orders, "--now", NOW).exit_code == 0
    shop.codes(10)  # the cart reminder's pool: not low
    result = mailflow("send", "--now", NOW, "--json", "--rule", "order-confirmation")
    assert result.exit_code == 0, result.stderr  # a fixed code never runs out
    assert [m["offer_code"] for m in result.json()["messages"]] == ["MERCI10", "MERCI10"]
    mails = shop.eml()
    assert "10 % sur votre prochaine commande" in text_of(mails["ana@example.com"])
    assert "Valable jusqu'au 1 avril 2026" in text_of(mails["ana@example.com"])
    assert "10% off your next order" in text_of(mails["bob@example.com"])
    assert "Valid until April 1, 2026" in text_of(mails["bob@example.com"])


def test_a_deferred_message_keeps_its_code_for_the_retry(shop, mailflow):
    """Quiet hours after the claim would not take a code; a message deferred by the server
    after its claim keeps the one it holds, and its retry sends that same code."""
    shop.carts(1)
    shop.codes(3)
    mailflow.config.write_text(mailflow.config.read_text().replace(
        "    category: marketing\n    offer:", "    category: marketing\n"
        "    quiet_hours: \"11:00-13:00\"\n    offer:", 1))
    waiting = mailflow("send", "--now", NOW, "--json").json()["messages"]
    assert [m["status"] for m in waiting] == ["deferred"]
    assert mailflow.scalar("SELECT count(*) FROM offer_codes WHERE outbox_key IS NOT NULL") == 0
    later = mailflow("send", "--now", "2026-03-02T13:05:00", "--json").json()["messages"]
    assert [(m["status"], m["offer_code"]) for m in later] == [("sent", "PANIER-0000")]


def test_codes_import_reads_the_usual_shapes_and_refuses_a_code_twice(mailflow):
    plain = mailflow.write("plain.txt", "AAA-1\nAAA-2\n\nAAA-3\n")
    result = mailflow("codes", "import", plain, "--pool", "one", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["added"] == 3 and result.json()["left"] == 3
    assert "no enabled rule has `offer: {pool: one}`" in result.stderr
    again = mailflow("codes", "import", plain, "--pool", "one", "--json")
    assert again.exit_code == 0 and again.json()["added"] == 0 and again.json()["already"] == 3
    other = mailflow("codes", "import", plain, "--pool", "two", "--json")
    assert other.exit_code == 1
    assert "plain.txt:1: code 'AAA-1' is already in pool 'one'" in other.stderr
    bad = mailflow("codes", "import", plain, "--pool", "Not A Name")
    assert bad.exit_code == 2 and "--pool 'Not A Name'" in bad.stderr


@pytest.mark.parametrize(("fixture", "expected"), [
    ("codes/matrixify_discounts_export.csv", ["BIENVENUE-7K2P", "BIENVENUE-Q9XM"]),
    ("codes/storerobo_discounts_export.csv", ["RELANCE-A1B2", "RELANCE-C3D4"]),
    ("codes/woocommerce_coupons_export.csv", ["panier-x7h2", "panier-m4k9"]),
    ("codes/plain_list.txt", ["HIVER-0001", "HIVER-0002", "HIVER-0003"]),
])
def test_exports_of_discount_admins_import_their_unused_codes(mailflow, fixture, expected):
    path = mailflow.fixture(fixture)
    result = mailflow("codes", "import", path, "--pool", "p", "--json")
    assert result.exit_code == 0, result.stderr
    codes = [r["code"] for r in mailflow.query("SELECT code FROM offer_codes ORDER BY id")]
    assert codes == expected, "used codes are left out, the rest kept in file order"


def test_an_offer_in_rules_yaml_is_checked_with_its_line(mailflow):
    mailflow.write_config(RULES.format(offer="      code: A B\n").replace(
        "    offer:\n      code: MERCI10", "    offerr:\n      code: MERCI10"))
    result = mailflow("check")
    assert result.exit_code == 2
    assert re.search(r"rules\.yaml:\d+: rule abandoned-cart: offer\.code 'A B'", result.stderr)
    mailflow.write_config(RULES.format(offer="      pool: x\n      code: Y\n"))
    result = mailflow("check")
    assert result.exit_code == 2 and "needs either `code:`" in result.stderr


def test_check_names_a_rule_whose_email_never_shows_its_code(shop, mailflow):
    assert mailflow("check").exit_code == 0, mailflow("check").stderr
    mailflow.config.write_text(mailflow.config.read_text() + """\
  - name: shipped
    on: order.shipped
    template: order_shipped
    offer: {code: EXPEDIE5}
""")
    result = mailflow("check")
    assert result.exit_code == 1
    assert "templates/order_shipped.fr.html: rule shipped has an offer, and this e-mail never" \
           " shows its code ({{ m.offer(offer, \"fr\") }})" in " ".join(result.stderr.split())


def test_purge_keeps_a_given_code_given_but_forgets_who_got_it(shop, mailflow):
    shop.carts(2)
    shop.codes(3)
    assert mailflow("send", "--now", NOW).exit_code == 1  # 1 left, below warn_below
    assert mailflow("purge", "--older-than", "30d", "--now", "2026-06-01T12:00:00").exit_code == 0
    rows = mailflow.query("SELECT code, outbox_key FROM offer_codes ORDER BY id")
    assert [r["outbox_key"].startswith("purged:") for r in rows[:2]] == [True, True]
    assert rows[2]["outbox_key"] is None
    assert mailflow("codes", "status", "--json").json()["pools"][0]["left"] == 1
