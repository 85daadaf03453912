"""What is sent, when, and what is not (CONTRACT §6), driven by --now: never by sleeping."""

from __future__ import annotations

import email
import textwrap
from email import policy

import pytest

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
{delivery_extra}
unsubscribe:
  url: https://boutique.example/unsub?token={{token}}
  secret_env: MAILFLOW_TEST_SECRET
rules:
  - name: abandoned-cart
    on: cart.abandoned
    after: 20m
    template: abandoned_cart
    category: marketing
    cap: 1 per 24h
  - name: order-confirmation
    on: order.placed
    template: order_confirmation
  - name: shipped
    on: order.shipped
    template: order_shipped
  - name: review-request
    on: order.delivered
    after: 7d
    template: review_request
    category: marketing
{rules_extra}
"""

ORDER_HEADER = ("order_id,email,first_name,accepts_marketing,status,created_at,paid_at,shipped_at,"
                "delivered_at,cancelled_at,total,payment_method,line_sku,line_name,line_quantity,"
                "line_price\n")
CART_HEADER = ("cart_id,email,first_name,accepts_marketing,created_at,updated_at,completed_at,"
               "total,recovery_url,line_sku,line_name,line_quantity,line_price\n")


class Shop:
    def __init__(self, mailflow, delivery_extra: str = "", rules_extra: str = "") -> None:
        self.mf = mailflow
        mailflow("init", mailflow.folder / "project")
        self.folder = mailflow.folder / "project"
        mailflow.config = self.folder / "rules.yaml"
        mailflow.config.write_text(RULES.format(delivery_extra=delivery_extra,
                                                rules_extra=rules_extra))
        self.files = 0

    def orders(self, *rows: str, now: str) -> None:
        self._import(ORDER_HEADER, rows, now)

    def carts(self, *rows: str, now: str) -> None:
        self._import(CART_HEADER, rows, now)

    def _import(self, header: str, rows: tuple[str, ...], now: str) -> None:
        self.files += 1
        path = self.mf.write(f"export{self.files}.csv", header + "\n".join(rows) + "\n")
        result = self.mf("import", path, "--now", now)
        assert result.exit_code == 0, result.stderr

    def send(self, now: str, *extra: str) -> list[dict]:
        result = self.mf("send", "--now", now, "--json", *extra)
        assert result.exit_code == 0, result.stderr
        return result.json()["messages"]

    def sent(self, now: str, *extra: str) -> list[tuple[str, str]]:
        return [(m["rule"], m["to"]) for m in self.send(now, *extra) if m["status"] == "sent"]

    def eml_files(self) -> list:
        return sorted((self.folder / "outbox").glob("*.eml"))


@pytest.fixture
def shop(mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_TEST_SECRET", "test-secret")
    return Shop(mailflow)


def cart(cart_id: str, email: str, created: str, updated: str, consent: str = "yes",
         completed: str = "") -> str:
    return (f"{cart_id},{email},Lou,{consent},{created},{updated},{completed},34.00,"
            f"https://boutique.example/cart/{cart_id},THE-1,Théière,1,34.00")


def order(order_id: str, email: str, created: str, status: str = "paid", consent: str = "yes",
          shipped: str = "", delivered: str = "", cancelled: str = "", payment: str = "Carte") -> str:
    paid = created if status not in ("pending_payment",) else ""
    return (f"{order_id},{email},Camille,{consent},{status},{created},{paid},{shipped},{delivered},"
            f"{cancelled},20.00,{payment},MUG,Mug,1,20.00")


def test_a_cart_gets_its_reminder_at_20_minutes_not_before(shop):
    shop.carts(cart("C1", "lou@example.com", "2026-03-02 10:00", "2026-03-02 10:05"),
               now="2026-03-02T10:06")
    shop.orders(order("X-1", "other@example.com", "2026-03-02 09:00"), now="2026-03-02T10:06")
    assert shop.sent("2026-03-02T10:24:59") == [("order-confirmation", "other@example.com")]
    assert shop.sent("2026-03-02T10:25:00") == [("abandoned-cart", "lou@example.com")]
    assert shop.sent("2026-03-02T10:40:00") == []
    assert len(list((shop.folder / "outbox").glob("abandoned-cart*.eml"))) == 1


def test_a_second_abandonment_within_24h_is_capped_after_24h_sent(shop):
    shop.orders(order("X-1", "other@example.com", "2026-03-02 09:00"), now="2026-03-02T09:00")
    shop.carts(cart("C1", "lou@example.com", "2026-03-02 10:00", "2026-03-02 10:00"),
               now="2026-03-02T10:01")
    assert ("abandoned-cart", "lou@example.com") in shop.sent("2026-03-02T10:20")
    # new activity on the same cart opens a new episode, 5 hours later
    shop.orders(order("X-2", "other@example.com", "2026-03-02 15:00"), now="2026-03-02T15:00")
    shop.carts(cart("C1", "lou@example.com", "2026-03-02 10:00", "2026-03-02 15:00"),
               now="2026-03-02T15:01")
    messages = shop.send("2026-03-02T15:20")
    capped = [m for m in messages if m["rule"] == "abandoned-cart"]
    assert [(m["status"], m["reason"]) for m in capped] == [("skipped", "capped")]
    # a third episode, more than 24h after the reminder
    shop.orders(order("X-3", "other@example.com", "2026-03-03 10:30"), now="2026-03-03T10:30")
    shop.carts(cart("C9", "LOU@example.com", "2026-03-03 10:30", "2026-03-03 10:30"),
               now="2026-03-03T10:31")
    assert ("abandoned-cart", "LOU@example.com") in shop.sent("2026-03-03T10:50")
    log = shop.mf("log", "--rule", "abandoned-cart", "--json").json()
    assert [r["status"] for r in log] == ["sent", "skipped", "sent"]


def test_a_customer_who_ordered_after_the_cart_gets_no_reminder(shop):
    shop.carts(cart("C1", "Lou.Bernard@example.com", "2026-03-02 10:00", "2026-03-02 10:05"),
               now="2026-03-02T10:06")
    shop.orders(order("A-1", "lou.bernard@EXAMPLE.com", "2026-03-02 10:15"), now="2026-03-02T10:16")
    messages = shop.send("2026-03-02T10:30")
    reminder = [m for m in messages if m["rule"] == "abandoned-cart"]
    assert [(m["status"], m["reason"]) for m in reminder] == [("skipped", "order_completed")]


def test_an_order_awaiting_offline_payment_counts_as_placed(shop):
    shop.carts(cart("C1", "lou@example.com", "2026-03-02 10:00", "2026-03-02 10:05"),
               now="2026-03-02T10:06")
    shop.orders(order("A-1", "lou@example.com", "2026-03-02 10:12", status="pending_payment",
                      payment="Virement bancaire"), now="2026-03-02T10:13")
    messages = shop.send("2026-03-02T10:30")
    assert ("abandoned-cart", "skipped", "order_completed") in [
        (m["rule"], m["status"], m["reason"]) for m in messages]
    assert not [m for m in messages if m["rule"] == "abandoned-cart" and m["status"] == "sent"]


def test_unsubscribed_and_non_consenting_customers_get_orders_but_no_marketing(shop):
    shop.mf("import", shop.mf.write("unsub.csv", "email,at\nana@example.com,2026-03-01 08:00\n"),
            "--kind", "unsubscribes", "--now", "2026-03-01T08:00")
    shop.orders(order("A-1", "ana@example.com", "2026-03-01 10:00", status="delivered",
                      delivered="2026-03-01 12:00"),
                order("B-1", "bob@example.com", "2026-03-01 10:00", status="delivered",
                      delivered="2026-03-01 12:00", consent="no"),
                now="2026-03-01T10:01")
    assert sorted(shop.sent("2026-03-01T10:05")) == [
        ("order-confirmation", "ana@example.com"), ("order-confirmation", "bob@example.com")]
    messages = shop.send("2026-03-08T12:30")
    reviews = sorted((m["to"], m["status"], m["reason"]) for m in messages
                     if m["rule"] == "review-request")
    assert reviews == [("ana@example.com", "skipped", "unsubscribed"),
                       ("bob@example.com", "skipped", "no_consent")]


def test_importing_two_years_of_history_sends_nothing_old(shop):
    rows = [order(f"H-{i}", f"c{i}@example.com", f"{2024 + i % 2}-{1 + i % 12:02d}-10 10:00",
                  status="delivered", shipped=f"{2024 + i % 2}-{1 + i % 12:02d}-11 10:00",
                  delivered=f"{2024 + i % 2}-{1 + i % 12:02d}-12 10:00") for i in range(24)]
    shop.orders(*rows, now="2026-03-01T10:00")
    shop.carts(cart("OLD", "c1@example.com", "2025-06-01 10:00", "2025-06-01 10:05"),
               now="2026-03-01T10:00")
    assert shop.sent("2026-03-01T10:05") == []
    assert shop.eml_files() == []


def test_a_run_repeated_at_the_same_now_sends_nothing_new(shop):
    shop.orders(order("A-1", "ana@example.com", "2026-03-01 10:00"), now="2026-03-01T10:01")
    first = shop.sent("2026-03-01T10:05")
    assert first == [("order-confirmation", "ana@example.com")]
    assert shop.send("2026-03-01T10:05") == []
    assert len(shop.eml_files()) == 1


def test_an_order_cancelled_after_it_shipped_gets_no_review_request(shop):
    shop.orders(order("A-1", "ana@example.com", "2026-03-01 10:00", status="delivered",
                      shipped="2026-03-02 10:00", delivered="2026-03-03 10:00"),
                now="2026-03-01T10:01")
    shop.orders(order("A-1", "ana@example.com", "2026-03-01 10:00", status="cancelled",
                      shipped="2026-03-02 10:00", delivered="2026-03-03 10:00",
                      cancelled="2026-03-05 10:00"), now="2026-03-05T10:01")
    messages = shop.send("2026-03-10T10:30")
    review = [m for m in messages if m["rule"] == "review-request"]
    assert [(m["status"], m["reason"]) for m in review] == [("skipped", "order_cancelled")]


def test_quiet_hours_postpone_and_the_message_goes_when_they_end(mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_TEST_SECRET", "s")
    shop = Shop(mailflow, rules_extra=textwrap.indent(textwrap.dedent("""\
        - name: thanks
          on: order.placed
          template: order_confirmation
          quiet_hours: "21:00-08:00"
        """), "  "))
    shop.orders(order("A-1", "ana@example.com", "2026-03-01 22:30"), now="2026-03-01T22:31")
    messages = {m["rule"]: m for m in shop.send("2026-03-01T22:35")}
    assert messages["thanks"]["status"] == "deferred"
    assert messages["thanks"]["reason"] == "quiet_hours until 2026-03-02T07:00:00Z"
    assert messages["order-confirmation"]["status"] == "sent"
    assert shop.sent("2026-03-02T07:59:59+01:00") == []
    assert shop.sent("2026-03-02T08:00:00+01:00") == [("thanks", "ana@example.com")]
    assert shop.sent("2026-03-02T09:00:00+01:00") == []


@pytest.mark.parametrize(("created", "due_utc", "before_utc"), [
    # spring forward (29 March 2026): 10:00 CET + 7d = 10:00 CEST, 167 hours later
    ("2026-03-25 10:00", "2026-04-01T08:00:00Z", "2026-04-01T07:59:59Z"),
    # fall back (25 October 2026): 10:00 CEST + 7d = 10:00 CET, 169 hours later
    ("2026-10-21 10:00", "2026-10-28T09:00:00Z", "2026-10-28T08:59:59Z"),
])
def test_a_rule_due_across_a_dst_change_fires_once_at_the_right_instant(
        shop, created, due_utc, before_utc):
    shop.orders(order("A-1", "ana@example.com", created, status="delivered",
                      delivered=created), now=created.replace(" ", "T"))
    assert shop.sent(before_utc, "--rule", "review-request") == []
    assert shop.sent(due_utc, "--rule", "review-request") == [("review-request", "ana@example.com")]
    assert shop.sent(due_utc, "--rule", "review-request") == []


def test_stale_orders_data_holds_cart_reminders(mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_TEST_SECRET", "s")
    shop = Shop(mailflow, delivery_extra="  max_data_age: 1h")
    shop.orders(order("X-1", "other@example.com", "2026-03-02 08:00"), now="2026-03-02T08:00")
    shop.carts(cart("C1", "lou@example.com", "2026-03-02 10:00", "2026-03-02 10:00"),
               now="2026-03-02T10:01")
    held = [m for m in shop.send("2026-03-02T10:30") if m["rule"] == "abandoned-cart"]
    assert [(m["status"], m["reason"].split()[0]) for m in held] == [("deferred", "stale_data")]
    assert not list((shop.folder / "outbox").glob("abandoned-cart*"))
    shop.orders(order("X-2", "other@example.com", "2026-03-02 10:40"), now="2026-03-02T10:40")
    assert ("abandoned-cart", "lou@example.com") in shop.sent("2026-03-02T10:45")


def test_dry_run_lists_what_the_real_run_sends_and_changes_nothing(shop):
    shop.orders(order("A-1", "ana@example.com", "2026-03-01 10:00"),
                order("B-1", "", "2026-03-01 10:00"), now="2026-03-01T10:01")
    shop.carts(cart("C1", "lou@example.com", "2026-03-01 09:00", "2026-03-01 09:30"),
               now="2026-03-01T10:01")
    before = shop.mf.dump()
    dry = shop.mf("send", "--dry-run", "--json", "--now", "2026-03-01T10:05").json()
    assert shop.mf.dump() == before
    assert not (shop.folder / "outbox").exists()
    real = shop.mf("send", "--json", "--now", "2026-03-01T10:05").json()
    assert dry["dry_run"] is True and real["dry_run"] is False

    def strip(messages, status):
        return [(m["rule"], m["to"], m["subject"], m["reason"], m["message_id"],
                 "sent" if m["status"] == status else m["status"]) for m in messages]

    assert strip(dry["messages"], "would_send") == strip(real["messages"], "sent")
    assert dry["counts"] == {"would_send": 2, "skipped": 1}
    assert real["counts"] == {"sent": 2, "skipped": 1}
    assert ("order-confirmation", None, "skipped", "missing_email") in [
        (m["rule"], m["to"], m["status"], m["reason"]) for m in real["messages"]]


def test_the_eml_file_parses_back_to_one_recipient_and_two_parts(shop):
    shop.orders(order("A-1", "ana@example.com", "2026-03-01 10:00"), now="2026-03-01T10:01")
    shop.sent("2026-03-01T10:05")
    (eml,) = shop.eml_files()
    message = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message["To"].addresses[0].addr_spec == "ana@example.com"
    assert message["Subject"] == "Merci pour votre commande n° A-1"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert "List-Unsubscribe" not in message  # transactional


def test_status_and_log_show_every_decision(shop):
    shop.orders(order("A-1", "ana@example.com", "2026-03-01 10:00"),
                order("B-1", "not-an-address", "2026-03-01 10:00"), now="2026-03-01T10:01")
    shop.sent("2026-03-01T10:05")
    log = shop.mf("log", "--json").json()
    assert {(r["rule"], r["status"], r["reason"]) for r in log} == {
        ("order-confirmation", "sent", None), ("order-confirmation", "skipped", "invalid_email")}
    entry = next(r for r in log if r["status"] == "sent")
    assert set(entry) >= {"key", "rule", "to", "status", "reason", "subject", "due_at",
                          "decided_at", "sent_at", "message_id", "attempts"}
    assert entry["attempts"] == 1 and entry["sent_at"] == "2026-03-01T09:05:00Z"
    status = shop.mf("status", "--json").json()
    assert status["outbox"] == {"order-confirmation": {"sent": 1, "skipped": 1}}
    assert shop.mf("log", "--email", "ANA@example.com", "--json").json()[0]["to"] == "ana@example.com"


def test_where_expressions_filter_in_a_sandbox(mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_TEST_SECRET", "s")
    shop = Shop(mailflow, rules_extra=textwrap.indent(textwrap.dedent("""\
        - name: big-orders
          on: order.placed
          template: order_confirmation
          where: order.total | float >= 100
        """), "  "))
    shop.orders(order("A-1", "ana@example.com", "2026-03-01 10:00"), now="2026-03-01T10:01")
    messages = [m for m in shop.send("2026-03-01T10:05") if m["rule"] == "big-orders"]
    assert [(m["status"], m["reason"]) for m in messages] == [("skipped", "where")]


def test_payment_received_only_for_payments_that_came_after_the_order(mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_TEST_SECRET", "s")
    shop = Shop(mailflow, rules_extra=textwrap.indent(textwrap.dedent("""\
        - name: payment-received
          on: order.paid
          template: payment_received
        """), "  "))
    shop.orders(order("CARD-1", "ana@example.com", "2026-03-02 10:00"),
                order("BANK-1", "bob@example.com", "2026-03-02 10:00", status="pending_payment",
                      payment="Virement bancaire"), now="2026-03-02T10:01")
    first = {(m["rule"], m["to"]): (m["status"], m["reason"]) for m in shop.send("2026-03-02T10:05")}
    assert first[("payment-received", "ana@example.com")] == ("skipped", "paid_when_placed")
    assert first[("order-confirmation", "bob@example.com")] == ("sent", None)
    # the transfer arrives the next day: a new export shows BANK-1 paid
    paid = order("BANK-1", "bob@example.com", "2026-03-02 10:00", payment="Virement bancaire").replace(
        "2026-03-02 10:00,2026-03-02 10:00", "2026-03-02 10:00,2026-03-03 09:00")
    shop.orders(paid, now="2026-03-03T09:30")
    assert shop.sent("2026-03-03T09:35") == [("payment-received", "bob@example.com")]


def test_a_where_that_cannot_be_evaluated_fails_its_message_and_the_rest_goes(mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_TEST_SECRET", "s")
    shop = Shop(mailflow, rules_extra=textwrap.indent(textwrap.dedent("""\
        - name: big-orders
          on: order.placed
          template: order_confirmation
          where: order.total > 10
        - name: broken
          on: order.placed
          template: order_confirmation
          where: order.total.nope > 1
        """), "  "))
    shop.orders(order("A-1", "ana@example.com", "2026-03-01 10:00"), now="2026-03-01T10:01")
    result = shop.mf("send", "--now", "2026-03-01T10:05", "--json")
    assert result.exit_code == 1  # a failed message needs a human
    got = {m["rule"]: (m["status"], (m["reason"] or "").split(":")[0])
           for m in result.json()["messages"]}
    assert got == {"order-confirmation": ("sent", ""), "big-orders": ("sent", ""),
                   "broken": ("failed", "where_error")}
    check = shop.mf("check")
    assert check.exit_code == 1 and "rule broken: where:" in check.stderr


def test_log_since_counts_a_message_by_when_it_was_sent(mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_TEST_SECRET", "s")
    shop = Shop(mailflow, rules_extra=textwrap.indent(textwrap.dedent("""\
        - name: thanks
          on: order.placed
          template: order_confirmation
          quiet_hours: "21:00-08:00"
        """), "  "))
    shop.orders(order("A-1", "ana@example.com", "2026-03-01 22:30"), now="2026-03-01T22:31")
    shop.send("2026-03-01T22:35")
    assert ("thanks", "ana@example.com") in shop.sent("2026-03-02T08:05")
    recent = shop.mf("log", "--since", "1h", "--now", "2026-03-02T08:30", "--json").json()
    assert [(r["rule"], r["status"]) for r in recent] == [("thanks", "sent")]
    report = shop.mf("report", "--since", "1h", "--now", "2026-03-02T08:30", "--json").json()
    assert report["rules"]["thanks"]["sent"] == 1


def test_a_delivery_dir_that_cannot_be_written_blocks_and_loses_nothing(shop):
    shop.orders(order("A-1", "ana@example.com", "2026-03-01 10:00"), now="2026-03-01T10:01")
    (shop.folder / "outbox").write_text("a file where the folder should be")
    result = shop.mf("send", "--now", "2026-03-01T10:05", "--json")
    assert result.exit_code == 3
    assert "cannot write to delivery.dir" in result.json()["blocked"]
    assert "cannot write to delivery.dir" in result.stderr
    assert shop.mf.scalar("SELECT status FROM outbox") == "deferred"
    (shop.folder / "outbox").unlink()
    assert shop.sent("2026-03-01T10:06") == [("order-confirmation", "ana@example.com")]


def test_eml_files_of_ids_that_differ_only_in_punctuation_do_not_overwrite(shop):
    shop.orders(order("#1001", "ana@example.com", "2026-03-01 10:00"),
                order("_1001", "bob@example.com", "2026-03-01 10:00"), now="2026-03-01T10:01")
    assert len(shop.sent("2026-03-01T10:05")) == 2
    recipients = sorted(email.message_from_bytes(p.read_bytes(), policy=policy.default)["To"]
                        .addresses[0].addr_spec for p in shop.eml_files())
    assert recipients == ["ana@example.com", "bob@example.com"]
