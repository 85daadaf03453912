"""Refunds, in every order they come: `refunded_amount` is the money given back so far; below
the total the order keeps its status and each increase is a partial refund with its own
e-mail (`RULE:order:ID:partially_refunded`, then `…:2`), the full refund another; a partial
refund's e-mail not sent yet when the rest followed gives way to the full one; `0.00` is no
refund (issue 14 item 5, issue 15 review). Real CLI, real SQLite file, the file transport."""

from __future__ import annotations

import email
import sqlite3
from email import policy
from pathlib import Path

import pytest

from mailflow.records import eml_name

RULES = """\
shop: {name: Savonnerie Test, url: "https://savonnerie-test.example", timezone: Europe/Paris,
       locale: fr, currency: EUR}
sender: {from: "Savonnerie Test <bonjour@savonnerie-test.example>"}
rules:
  - {name: refund, on: order.refunded, template: order_refunded}
"""
HEADER = ("order_id,email,first_name,locale,status,created_at,cancelled_at,total,"
          "refunded_amount,line_name,line_quantity,line_price\n")
KEY = "refund:order:R-1:partially_refunded"


@pytest.fixture
def shop(mailflow):
    assert mailflow("init", mailflow.folder / "p").exit_code == 0
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    mailflow.config.write_text(RULES, encoding="utf-8")
    return mailflow


def row(status: str, refunded: str, *, locale: str = "fr", cancelled: str = "",
        order: str = "R-1", created: str = "2026-03-02 10:00") -> str:
    return (f"{order},ana@example.com,Ana,{locale},{status},{created},{cancelled},40.00,"
            f"\"{refunded}\",Savon,2,20.00\n")


def export(mf, name: str, *rows: str) -> Path:
    return mf.write(name, HEADER + "".join(rows))


def placed(mf, locale: str = "fr") -> None:
    """R-1 as the store first sees it, not refunded: what comes next is news."""
    imported(mf, "2026-03-02T10:30", export(mf, "placed.csv", row("paid", "", locale=locale)))
    assert sent(mf, "2026-03-02T10:30") == []


def imported(mf, now: str, *files: Path) -> dict:
    result = mf("import", *files, "--now", now, "--json")
    assert result.exit_code == 0, result.stderr
    return result.json()


def sent(mf, now: str) -> list[tuple[str, str, str | None]]:
    """A real run at `now`: (key, status, reason) of each message it decided."""
    result = mf("send", "--json", "--now", now)
    assert result.exit_code == 0, result.stderr
    return sorted((m["key"], m["status"], m["reason"]) for m in result.json()["messages"])


def mails(mf) -> dict[str, tuple[str, str]]:
    """What the file transport wrote: {file name: (subject, text part, spaces collapsed)}."""
    found = {}
    for path in sorted((mf.config.parent / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        text = message.get_body(("plain",))
        assert text is not None
        found[path.name] = (str(message["Subject"]), " ".join(text.get_content().split()))
    return found


def only(found: dict[str, tuple[str, str]], key: str) -> tuple[str, str]:
    """The e-mail of the message `key` (its file: records.eml_name)."""
    return found[eml_name(key)]


def test_a_partial_then_a_full_refund_from_a_canonical_export(shop):
    imported(shop, "2026-03-03T09:00", export(shop, "o1.csv", row("shipped", "0.00"),
                                              row("paid", "", order="R-2")))
    assert sent(shop, "2026-03-03T09:00") == []  # 0.00 and empty: no refund

    imported(shop, "2026-03-04T09:00", export(shop, "o2.csv", row("shipped", "20,00")))
    assert shop.scalar("SELECT status FROM orders WHERE id = 'R-1'") == "shipped"
    assert sent(shop, "2026-03-04T09:00") == [(KEY, "sent", None)]
    subject, text = only(mails(shop), KEY)
    assert subject == "Remboursement partiel de votre commande n° R-1"
    assert "Nous vous avons remboursé 20,00 € sur votre commande n° R-1" in text
    assert "remboursés à ce jour" not in text  # the first refund: the total is the same
    assert "Le reste de votre commande n'est pas concerné." in text

    imported(shop, "2026-03-05T09:00", export(shop, "o3.csv", row("refunded", "40.00")))
    assert sent(shop, "2026-03-05T09:00") == [("refund:order:R-1:refunded", "sent", None)]
    subject, text = only(mails(shop), "refund:order:R-1:refunded")
    assert subject == "Commande n° R-1 remboursée"
    assert "Nous avons remboursé votre commande n° R-1 du 2 mars 2026 : 20,00 €" in text
    assert ("Avec les 20,00 € remboursés précédemment, 40,00 € vous ont été remboursés au"
            " total.") in text
    assert sent(shop, "2026-03-05T10:00") == []
    assert len(mails(shop)) == 2


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_a_partial_refund_followed_by_the_full_one_before_it_went_gets_one_full_email(
        shop, locale):
    placed(shop, locale)
    # cron did not run between the two exports: the partial refund's e-mail is still due
    imported(shop, "2026-03-04T09:00", export(shop, "o1.csv", row("shipped", "15.00",
                                                                  locale=locale)))
    imported(shop, "2026-03-04T11:00", export(shop, "o2.csv", row("refunded", "40.00",
                                                                  locale=locale)))
    assert sent(shop, "2026-03-04T11:05") == [
        ("refund:order:R-1:partially_refunded", "skipped", "refunded_in_full"),
        ("refund:order:R-1:refunded", "sent", None)]
    found = mails(shop)
    assert len(found) == 1
    subject, text = only(found, "refund:order:R-1:refunded")
    if locale == "fr":
        assert subject == "Commande n° R-1 remboursée"
        assert "Nous avons remboursé votre commande n° R-1 du 2 mars 2026 : 25,00 €" in text
        assert "Avec les 15,00 € remboursés précédemment, 40,00 € vous ont été remboursés" in text
        assert "partiel" not in text
    else:
        assert subject == "Order #R-1 refunded"
        assert "We have refunded your order #R-1 of March 2, 2026: €25.00" in text
        assert "With the €15.00 refunded earlier, €40.00 has been given back in all." in text
        assert "part of" not in text.lower()
    log = shop("log", "--json").json()
    assert {m["key"]: m["reason"] for m in log}[KEY] == "refunded_in_full"


def test_a_partial_then_a_full_refund_in_one_import_gets_one_full_email(shop):
    placed(shop)
    imported(shop, "2026-03-04T09:00", export(shop, "a.csv", row("shipped", "15.00")),
             export(shop, "b.csv", row("refunded", "40.00")))
    assert sent(shop, "2026-03-04T09:05") == [
        (KEY, "skipped", "refunded_in_full"), ("refund:order:R-1:refunded", "sent", None)]
    assert list(mails(shop)) == [eml_name("refund:order:R-1:refunded")]


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_two_partial_refunds_get_two_emails_each_with_its_amount(shop, locale):
    placed(shop, locale)
    imported(shop, "2026-03-04T09:00", export(shop, "o1.csv", row("shipped", "10.00",
                                                                  locale=locale)))
    assert sent(shop, "2026-03-04T09:00") == [(KEY, "sent", None)]
    imported(shop, "2026-03-06T09:00", export(shop, "o2.csv", row("delivered", "25.00",
                                                                  locale=locale)))
    assert sent(shop, "2026-03-06T09:00") == [(KEY + ":2", "sent", None)]
    first, second = only(mails(shop), KEY)[1], only(mails(shop), KEY + ":2")[1]
    if locale == "fr":
        assert "Nous vous avons remboursé 10,00 € sur votre commande n° R-1" in first
        assert "Nous vous avons remboursé 15,00 € sur votre commande n° R-1" in second
        assert "Avec les 10,00 € remboursés précédemment, cela fait 25,00 € remboursés à ce" \
            " jour." in second
        assert only(mails(shop), KEY + ":2")[0] == \
            "Remboursement partiel de votre commande n° R-1"
    else:
        assert "We have refunded €10.00 of your order #R-1" in first
        assert "We have refunded €15.00 of your order #R-1" in second
        assert "With the €10.00 refunded earlier, that makes €25.00 refunded so far." in second
        assert only(mails(shop), KEY + ":2")[0] == "Partial refund for your order #R-1"
    assert shop.query("SELECT seq, amount, total, source FROM order_refunds ORDER BY seq") == [
        {"seq": 1, "amount": "10.00", "total": "10.00", "source": "import"},
        {"seq": 2, "amount": "15.00", "total": "25.00", "source": "import"}]


def test_two_partial_refunds_before_a_run_get_two_emails(shop):
    placed(shop)
    imported(shop, "2026-03-04T09:00", export(shop, "a.csv", row("shipped", "10.00")),
             export(shop, "b.csv", row("shipped", "12.50")))
    assert sent(shop, "2026-03-04T09:05") == [(KEY, "sent", None), (KEY + ":2", "sent", None)]
    assert "Nous vous avons remboursé 2,50 € sur" in only(mails(shop), KEY + ":2")[1]


def test_a_full_refund_alone_names_the_whole_amount(shop):
    imported(shop, "2026-03-03T09:00", export(shop, "o1.csv", row("paid", "")))
    imported(shop, "2026-03-04T09:00", export(shop, "o2.csv", row("refunded", "")))
    assert sent(shop, "2026-03-04T09:00") == [("refund:order:R-1:refunded", "sent", None)]
    subject, text = only(mails(shop), "refund:order:R-1:refunded")
    assert subject == "Commande n° R-1 remboursée"
    assert "Nous avons remboursé votre commande n° R-1 du 2 mars 2026 : 40,00 €" in text
    assert "précédemment" not in text


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_a_partial_refund_sent_after_the_order_was_cancelled_still_says_partial(shop, locale):
    placed(shop, locale)
    imported(shop, "2026-03-04T09:00", export(shop, "o1.csv", row("shipped", "15.00",
                                                                  locale=locale)))
    imported(shop, "2026-03-04T10:00", export(shop, "o2.csv", row(
        "cancelled", "15.00", locale=locale, cancelled="2026-03-04 10:55")))
    assert sent(shop, "2026-03-04T10:05") == [(KEY, "sent", None)]
    subject, text = only(mails(shop), KEY)
    if locale == "fr":
        assert subject == "Remboursement partiel de votre commande n° R-1"
        assert "Nous vous avons remboursé 15,00 € sur votre commande n° R-1" in text
        assert "Le reste de votre commande" not in text  # there is no rest: it is cancelled
    else:
        assert subject == "Partial refund for your order #R-1"
        assert "We have refunded €15.00 of your order #R-1" in text
        assert "The rest of your order" not in text


def test_the_same_exports_again_and_an_older_one_create_nothing(shop):
    placed(shop)
    first = export(shop, "o1.csv", row("shipped", "10.00"))
    second = export(shop, "o2.csv", row("shipped", "25.00"))
    imported(shop, "2026-03-04T09:00", first)
    imported(shop, "2026-03-05T09:00", second)
    assert len(sent(shop, "2026-03-05T09:00")) == 2
    before = shop.dump()
    for now, name, content in (("2026-03-05T10:00", "again.csv", row("shipped", "25.00")),
                               ("2026-03-05T11:00", "same.csv", row("shipped", "25,00"))):
        report = imported(shop, now, export(shop, name, content))
        assert report["orders"] == {"inserted": 0, "updated": 0}
    # an older export after the newer (the amount goes down), then the newer again
    older = export(shop, "older.csv", row("shipped", "10.00"))
    imported(shop, "2026-03-05T12:00", older)
    imported(shop, "2026-03-05T13:00", export(shop, "newer.csv", row("shipped", "25.00")))
    imported(shop, "2026-03-05T14:00", export(shop, "less.csv", row("shipped", "5.00")))
    imported(shop, "2026-03-05T15:00", export(shop, "back.csv", row("shipped", "25.00")))
    assert sent(shop, "2026-03-05T15:05") == []
    after = shop.dump()
    assert after["order_refunds"] == before["order_refunds"]
    assert after["outbox"] == before["outbox"]
    assert len(mails(shop)) == 2
    # past the highest amount: a refund of the difference
    imported(shop, "2026-03-05T16:00", export(shop, "more.csv", row("shipped", "30.00")))
    assert sent(shop, "2026-03-05T16:05") == [(KEY + ":3", "sent", None)]
    assert "Nous vous avons remboursé 5,00 € sur" in only(mails(shop), KEY + ":3")[1]


def test_a_refund_already_there_when_an_old_order_is_first_seen_sends_nothing(shop):
    imported(shop, "2026-03-04T09:00", export(shop, "o1.csv", row(
        "delivered", "10.00", created="2025-11-02 10:00")))
    assert sent(shop, "2026-03-04T09:00") == []
    assert shop.scalar("SELECT source FROM order_refunds") == "inferred"
    # a later refund of that order is news
    imported(shop, "2026-03-05T09:00", export(shop, "o2.csv", row(
        "delivered", "18.00", created="2025-11-02 10:00")))
    assert sent(shop, "2026-03-05T09:00") == [(KEY + ":2", "sent", None)]


def _as_before_0017(db: Path) -> None:
    """The store as mailflow wrote it before migration 0017_refunds: one `partially_refunded`
    status event per order, no order_refunds table."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO order_status_events (order_id, status, at, source, import_id,"
                     " recorded_at) SELECT order_id, 'partially_refunded', at, source, import_id,"
                     " recorded_at FROM order_refunds WHERE seq = 1")
        conn.execute("DROP TABLE order_refunds")
        conn.execute("DELETE FROM migrations WHERE name = '0017_refunds'")
    conn.close()


def test_a_store_with_a_partial_refund_sent_before_0017_sends_it_never_again(shop):
    imported(shop, "2026-03-02T10:30", export(shop, "o0.csv", row("paid", ""),
                                              row("paid", "", order="R-2")))
    imported(shop, "2026-03-04T09:00", export(shop, "o1.csv", row("shipped", "10.00"),
                                              row("shipped", "8.00", order="R-2")))
    assert sent(shop, "2026-03-04T09:00") == [
        (KEY, "sent", None), ("refund:order:R-2:partially_refunded", "sent", None)]
    _as_before_0017(shop.db)
    assert shop.scalar("SELECT count(*) FROM order_status_events"
                       " WHERE status = 'partially_refunded'") == 2

    assert sent(shop, "2026-03-04T10:00") == []  # migrated: the sent keys are the same
    assert shop.query("SELECT order_id, seq, amount, total FROM order_refunds ORDER BY 1") == [
        {"order_id": "R-1", "seq": 1, "amount": "10.00", "total": "10.00"},
        {"order_id": "R-2", "seq": 1, "amount": "8.00", "total": "8.00"}]
    assert shop.scalar("SELECT count(*) FROM order_status_events"
                       " WHERE status = 'partially_refunded'") == 0
    imported(shop, "2026-03-04T11:00", export(shop, "same.csv", row("shipped", "10.00")))
    assert sent(shop, "2026-03-04T11:00") == []
    imported(shop, "2026-03-05T09:00", export(shop, "o2.csv", row("shipped", "16.00")))
    assert sent(shop, "2026-03-05T09:00") == [(KEY + ":2", "sent", None)]
    assert "Nous vous avons remboursé 6,00 € sur" in only(mails(shop), KEY + ":2")[1]
    assert len(mails(shop)) == 3


def test_a_partial_refund_decided_but_not_sent_before_0017_still_goes_as_partial(shop):
    """Due during quiet hours before the upgrade: queued under the old key, sent after it."""
    placed(shop)
    shop.config.write_text(RULES.replace("template: order_refunded}",
                                         "template: order_refunded,"
                                         " quiet_hours: \"21:00-08:00\"}"), encoding="utf-8")
    imported(shop, "2026-03-04T21:30", export(shop, "o1.csv", row("shipped", "10.00")))
    assert sent(shop, "2026-03-04T21:30") == [(KEY, "deferred", "quiet_hours until"
                                               " 2026-03-05T07:00:00Z")]
    _as_before_0017(shop.db)
    assert sent(shop, "2026-03-05T08:05") == [(KEY, "sent", None)]
    assert "Nous vous avons remboursé 10,00 € sur" in only(mails(shop), KEY)[1]
