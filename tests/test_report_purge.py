"""What the e-mails earned (report), consent, and forgetting personal data (purge)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

RULES = """\
shop: {{name: Boutique, url: "https://boutique.example", timezone: UTC, locale: fr{consent}}}
sender: {{from: "Boutique <bonjour@boutique.example>"}}
unsubscribe: {{url: "https://boutique.example/u?token={{token}}"}}
delivery: {{transport: file, dir: outbox}}
rules:
  - {{name: abandoned-cart, on: cart.abandoned, after: 20m, template: abandoned_cart,
     category: marketing}}
  - {{name: confirmation, on: order.placed, template: order_confirmation}}
"""
CARTS = ("cart_id,email,accepts_marketing,created_at,updated_at,total,line_name,line_quantity,"
         "line_price\n")
ORDERS = ("order_id,email,status,created_at,currency,total,line_name,line_quantity,line_price,"
          "accepts_marketing\n")


@pytest.fixture
def shop(mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_SECRET", "s")
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    mailflow.config.write_text(RULES.format(consent=""))
    return mailflow


def load(shop, name: str, header: str, rows: list[str], now: str, *,
         without_consent: bool = False) -> None:
    """Orders come from customers who agreed to marketing (a column the rows leave out)."""
    if header == ORDERS:
        rows = [f"{row},yes" for row in rows]
    result = shop("import", shop.write(name, header + "\n".join(rows) + "\n"), "--now", now)
    if without_consent:  # said once for the file, and the file still imports
        assert result.exit_code == 1 and "no marketing consent for any of its" in result.stderr
    else:
        assert result.exit_code == 0, result.stderr


def test_report_counts_reminders_recovered_carts_and_their_revenue(shop):
    load(shop, "c.csv", CARTS, [
        f"C{i},{who}@example.com,yes,2026-03-01 10:00,2026-03-01 10:00,30.00,Mug,1,30.00"
        for i, who in enumerate(["ana", "bob", "cid", "dan"])], "2026-03-01T10:01")
    load(shop, "o0.csv", ORDERS, ["X,other@example.com,paid,2026-03-01 10:15,EUR,1.00,M,1,1"],
         "2026-03-01T10:16")
    shop("unsubscribe", "dan@example.com", "--now", "2026-03-01T10:00")
    assert shop("send", "--now", "2026-03-01T10:30").exit_code == 0  # 3 reminders, dan skipped
    load(shop, "o.csv", ORDERS, [
        "A-1,ana@example.com,paid,2026-03-03 09:00,EUR,40.00,Mug,1,40.00",      # day 2: recovered
        "B-1,bob@example.com,paid,2026-03-09 11:00,EUR,99.00,Mug,1,99.00",      # day 8: too late
        "C-1,cid@example.com,paid,2026-03-02 09:00,EUR,25.00,Mug,1,25.00",      # recovered
        "C-2,cid@example.com,paid,2026-03-05 09:00,USD,15.50,Mug,1,15.50",      # same cart, USD
    ], "2026-03-10T09:00")
    report = shop("report", "--json", "--now", "2026-03-10T10:00").json()
    carts = {k: report["carts"][k] for k in ("reminded", "recovered", "revenue")}
    assert carts == {"reminded": 3, "recovered": 2, "revenue": {"EUR": "65.00", "USD": "15.50"}}
    cart_rule = report["rules"]["abandoned-cart"]
    assert cart_rule["sent"] == 3 and cart_rule["skipped"] == {"unsubscribed": 1}
    assert {"sent", "skipped", "deferred", "failed", "unknown"} <= set(cart_rule)
    recent = shop("report", "--json", "--since", "2d", "--now", "2026-03-10T10:00").json()
    assert recent["carts"]["reminded"] == 0 and recent["since"] == "2026-03-08T10:00:00Z"
    text = shop("report", "--now", "2026-03-10T10:00").stdout
    assert "carts: 3 reminded, 2 recovered, revenue 65.00 EUR, 15.50 USD" in text


def test_consent_required_skips_marketing_when_consent_is_unknown(shop):
    shop.config.write_text(RULES.format(consent=", consent: required"))
    load(shop, "c.csv", CARTS.replace("accepts_marketing,", ""), [
        "C1,ana@example.com,2026-03-01 10:00,2026-03-01 10:00,30.00,Mug,1,30.00"],
        "2026-03-01T10:01", without_consent=True)
    load(shop, "o0.csv", ORDERS, ["X,other@example.com,paid,2026-03-01 10:15,EUR,1.00,M,1,1"],
         "2026-03-01T10:16")
    messages = shop("send", "--now", "2026-03-01T10:30", "--json").json()["messages"]
    assert ("abandoned-cart", "skipped", "no_consent") in [
        (m["rule"], m["status"], m["reason"]) for m in messages]


def test_purge_forgets_old_people_and_keeps_suppressions(shop):
    load(shop, "o.csv", ORDERS, ["OLD,old@example.com,paid,2025-01-10 10:00,EUR,5.00,M,1,5",
                                 "NEW,new@example.com,paid,2026-03-01 10:00,EUR,5.00,M,1,5"],
         "2026-03-01T10:01")
    assert shop("send", "--now", "2026-03-01T10:05").exit_code == 0
    shop("unsubscribe", "old@example.com", "--now", "2025-01-11T10:00")
    too_soon = shop("purge", "--older-than", "2d", "--now", "2026-03-01T11:00")
    assert too_soon.exit_code == 2 and "--older-than must be at least" in too_soon.stderr
    result = shop("purge", "--older-than", "365d", "--now", "2026-03-01T11:00", "--json")
    assert result.exit_code == 0, result.stderr
    done = result.json()
    assert (done["orders"], done["customers"]) == (1, 1)
    assert [r["id"] for r in shop.query("SELECT id FROM orders")] == ["NEW"]
    assert shop.query("SELECT email_key FROM customers") == [{"email_key": "new@example.com"}]
    assert shop.query("SELECT email_key FROM suppressions") == [{"email_key": "old@example.com"}]
    assert shop.scalar("SELECT count(*) FROM order_lines WHERE order_id = 'OLD'") == 0
    later = shop("purge", "--older-than", "11d", "--now", "2026-04-01T11:00", "--json").json()
    shop.config.write_text(RULES.format(consent="").replace(
        "template: order_confirmation}", "template: order_confirmation, cap: 1 per 365d}"))
    capped = shop("purge", "--older-than", "200d", "--now", "2026-04-01T11:00")
    assert capped.exit_code == 2 and "at least 373d" in capped.stderr  # the cap's window counts
    assert later["messages"] == 1 and later["message_files"] == 1
    assert not list((shop.config.parent / "outbox").glob("*.eml"))


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_the_html_report_shows_its_chart_in_a_browser(shop, tmp_path):
    load(shop, "c.csv", CARTS, ["C1,ana@example.com,yes,2026-03-01 10:00,2026-03-01 10:00,30,M,1,30"],
         "2026-03-01T10:01")
    load(shop, "o0.csv", ORDERS, ["X,other@example.com,paid,2026-03-01 10:15,EUR,1.00,M,1,1"],
         "2026-03-01T10:16")
    shop("send", "--now", "2026-03-01T10:30")
    load(shop, "o.csv", ORDERS, ["A-1,ana@example.com,paid,2026-03-02 09:00,EUR,40.00,M,1,40"],
         "2026-03-02T10:00")
    page = tmp_path / "report.html"
    assert shop("report", "--html", page, "--now", "2026-03-03T10:00").exit_code == 0
    text = page.read_text()
    assert "<script src=" not in text and "http://" not in text.split("<svg", 1)[0]
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", """<script>window.addEventListener('load', () => {
      const r = document.querySelector('#chart svg').getBoundingClientRect();
      document.title = 'chart ' + Math.round(r.width) + 'x' + Math.round(r.height); });
      </script></body>"""))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1000"]
    dom = subprocess.run(["chromium", *flags, "--virtual-time-budget=3000", "--dump-dom",
                          probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    size = re.search(r"<title>chart (\d+)x(\d+)</title>", dom)
    assert size and int(size.group(1)) > 0 and int(size.group(2)) > 0, dom[:300]
    shot = tmp_path / "report.png"
    subprocess.run(["chromium", *flags, f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 5000


def test_cancelled_refunded_failed_and_unpaid_orders_are_not_recovered_revenue(shop, tmp_path):
    people = ["ana", "bob", "cid", "dan", "eve", "fay"]
    load(shop, "c.csv", CARTS, [
        f"C{i},{who}@example.com,yes,2026-03-01 10:00,2026-03-01 10:00,30.00,Mug,1,30.00"
        for i, who in enumerate(people)], "2026-03-01T10:01")
    load(shop, "o0.csv", ORDERS, ["X,other@example.com,paid,2026-03-01 10:15,EUR,1.00,M,1,1"],
         "2026-03-01T10:16")
    assert shop("send", "--now", "2026-03-01T10:30").exit_code == 0  # six reminders
    load(shop, "o1.csv", ORDERS, [
        "A-1,ana@example.com,paid,2026-03-02 09:00,EUR,40.00,Mug,1,40.00",
        "B-1,bob@example.com,paid,2026-03-02 09:00,EUR,99.00,Mug,1,99.00",  # cancelled later
        "C-1,cid@example.com,refunded,2026-03-02 09:00,EUR,25.00,Mug,1,25.00",
        "D-1,dan@example.com,pending_payment,2026-03-02 09:00,EUR,30.00,Mug,1,30.00",
        "E-1,eve@example.com,failed,2026-03-02 09:00,EUR,15.00,Mug,1,15.00",
        "F-1,fay@example.com,cancelled,2026-03-02 09:00,EUR,50.00,Mug,1,50.00",
        "F-2,fay@example.com,shipped,2026-03-03 09:00,EUR,12.50,Mug,1,12.50",
    ], "2026-03-03T10:00")
    load(shop, "o2.csv", ORDERS, [
        "B-1,bob@example.com,cancelled,2026-03-02 09:00,EUR,99.00,Mug,1,99.00"],
        "2026-03-04T10:00")
    page = tmp_path / "report.html"
    report = shop("report", "--json", "--now", "2026-03-10T10:00").json()
    carts = report["carts"]
    assert (carts["reminded"], carts["recovered"]) == (6, 2)  # ana, and fay's second order
    assert carts["revenue"] == {"EUR": "52.50"}  # exactly the orders that stayed paid
    assert carts["excluded"] == {"cancelled": 2, "refunded": 1, "failed": 1,
                                 "pending_payment": 1}
    assert "not cancelled, refunded, failed or still unpaid" in carts["recovered_means"]
    assert report["per_day"]["recovered_revenue"] == {"2026-03-02": "40.00",
                                                      "2026-03-03": "12.50"}
    text = shop("report", "--html", page, "--now", "2026-03-10T10:00").stdout
    assert "carts: 6 reminded, 2 recovered, revenue 52.50 EUR" in text
    assert ("orders left out of recovered and revenue: 2 cancelled, 1 refunded, 1 failed,"
            " 1 pending_payment") in text
    html = " ".join(page.read_text().split())
    assert "2 cancelled, 1 refunded, 1 failed, 1 pending payment" in html
    assert ("neither cancelled, refunded, failed nor still awaiting payment. Those orders are"
            " left out of the carts recovered and of the revenue") in html


def test_a_cash_on_delivery_order_is_revenue_only_once_paid(shop):
    load(shop, "c.csv", CARTS, ["C1,gus@example.com,yes,2026-03-01 10:00,2026-03-01 10:00,30.00,"
                                "Mug,1,30.00"], "2026-03-01T10:01")
    load(shop, "o0.csv", ORDERS, ["X,other@example.com,paid,2026-03-01 10:15,EUR,1.00,M,1,1"],
         "2026-03-01T10:16")
    assert shop("send", "--now", "2026-03-01T10:30").exit_code == 0
    cod = ("order_id,email,accepts_marketing,status,created_at,shipped_at,paid_at,currency,total,"
           "payment_method,line_name,line_quantity,line_price\n")
    load(shop, "o1.csv", cod, ["G-1,gus@example.com,yes,shipped,2026-03-02 09:00,2026-03-03 09:00,,"
                               "EUR,30.00,Paiement à la livraison,Mug,1,30.00"], "2026-03-03T10:00")
    shipped = shop("report", "--json", "--now", "2026-03-04T10:00").json()["carts"]
    assert (shipped["recovered"], shipped["revenue"]) == (0, {})
    assert shipped["excluded"]["pending_payment"] == 1  # shipped, the money not collected yet
    load(shop, "o2.csv", cod, ["G-1,gus@example.com,yes,delivered,2026-03-02 09:00,"
                               "2026-03-03 09:00,2026-03-04 11:00,EUR,30.00,"
                               "Paiement à la livraison,Mug,1,30.00"], "2026-03-04T12:00")
    paid = shop("report", "--json", "--now", "2026-03-05T10:00").json()["carts"]
    assert (paid["recovered"], paid["revenue"]) == (1, {"EUR": "30.00"})
