"""What the e-mails did (issue 13): clicks through `serve` over real HTTP, orders attributed
when first imported, and `report` (text, --json, --html in headless Chromium) with known
answers."""

from __future__ import annotations

import email
import email.policy
import http.client
import json
import re
import shutil
import subprocess
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import urlsplit

import pytest
from http_server import served

from mailflow.config import load_config
from mailflow.web.tracking import TrackingApp

RULES = """\
shop: {name: Boutique, url: "https://boutique.example", timezone: UTC, locale: fr,
       address: "1 rue Test, 75001 Paris"}
sender: {from: "Boutique <bonjour@boutique.example>"}
unsubscribe: {url: "https://boutique.example/u?token={token}"}
delivery: {transport: file, dir: outbox}
tracking: {url: "https://boutique.example/mf"EXTRA}
rules:
  - {name: abandoned-cart, on: cart.abandoned, after: 20m, template: abandoned_cart,
     category: marketing}
  - {name: confirmation, on: order.placed, template: order_confirmation}
"""
CARTS = ("cart_id,email,accepts_marketing,created_at,updated_at,total,line_name,line_quantity,"
         "line_price\n")
ORDERS = ("order_id,email,status,created_at,currency,total,line_name,line_quantity,line_price,"
          "accepts_marketing\n")
PEOPLE = [f"p{n}" for n in range(10)]


@pytest.fixture
def shop(mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_SECRET", "report-secret")
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    mailflow.config.write_text(RULES.replace("EXTRA", ""))
    return mailflow


def load(shop, name: str, header: str, rows: list[str], now: str) -> None:
    result = shop("import", shop.write(name, header + "\n".join(rows) + "\n"), "--now", now)
    assert result.exit_code == 0, result.stderr


def remind_ten(shop) -> dict[str, str]:
    """Ten abandoned carts reminded at 10:30 on 1 March: {recipient: a tracked link of theirs}."""
    load(shop, "c.csv", CARTS, [f"C{i},{who}@example.com,yes,2026-03-01 10:00,2026-03-01 10:00,"
                                "30.00,Mug,1,30.00" for i, who in enumerate(PEOPLE)],
         "2026-03-01T10:01")
    load(shop, "o0.csv", ORDERS, ["X,other@example.com,paid,2026-02-20 10:15,EUR,1.00,M,1,1,yes"],
         "2026-03-01T10:16")
    assert shop("send", "--now", "2026-03-01T10:30").exit_code == 0
    links = {}
    for path in (shop.folder / "p" / "outbox").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        html = message.get_body(("html",)).get_content()
        tracked = [unescape(h) for h in re.findall(r'href="([^"]*)"', html)
                   if h.startswith("https://boutique.example/mf/c/")]
        if tracked:
            links[message["To"].addresses[0].addr_spec.split("@")[0]] = tracked[0]
    return links


@contextmanager
def serving(shop, at: datetime):
    """serve's tracking endpoint on a free port of 127.0.0.1, its clock at `at`."""
    with served(TrackingApp(load_config(shop.config), shop.db, lambda: at)) as port:
        yield port


def click(port: int, url: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", urlsplit(url).path)
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 303
    return response.getheader("Location")


def scenario(shop) -> None:
    """4 of 10 reminded customers click; 3 of them order within 5 days (one cancels later), one
    who never clicked orders within a day of the reminder, one orders too late."""
    links = remind_ten(shop)
    assert sorted(links) == PEOPLE  # every reminder is tracked
    with serving(shop, datetime(2026, 3, 1, 12, 0, tzinfo=UTC)) as port:
        for who in PEOPLE[:4]:
            assert click(port, links[who]).startswith("https://boutique.example/")
        click(port, links["p0"])  # a second click on the same message: still one clicked
    load(shop, "o1.csv", ORDERS, [
        "A-1,p0@example.com,paid,2026-03-03 09:00,EUR,40.00,Mug,1,40.00,yes",   # after a click
        "A-2,p1@example.com,paid,2026-03-05 11:00,EUR,25.00,Mug,1,25.00,yes",   # 4 days after
        "A-3,p2@example.com,paid,2026-03-02 09:00,EUR,99.00,Mug,1,99.00,yes",   # cancelled later
        "A-4,p4@example.com,paid,2026-03-02 08:00,EUR,30.00,Mug,1,30.00,yes",   # no click, <1d
        "A-5,p5@example.com,paid,2026-03-04 08:00,EUR,17.00,Mug,1,17.00,yes",   # no click, >1d
    ], "2026-03-05T12:00")
    load(shop, "o2.csv", ORDERS, ["A-3,p2@example.com,cancelled,2026-03-02 09:00,EUR,99.00,Mug,1,"
                                  "99.00,yes"], "2026-03-06T12:00")


EXPECTED = {"sent": 10, "delivered": 10, "tracked": 10, "clicked": 4, "click_rate": 0.4,
            "opens": None, "unsubscribes": 0, "bounces": 0,
            "orders": {"click": 2, "received": 1},
            "revenue": {"click": {"EUR": "65.00"}, "received": {"EUR": "30.00"}},
            "revenue_per_email": {"EUR": "6.50"}}


def test_known_answers_in_the_report_and_its_json(shop):
    scenario(shop)
    # attributed once, when the orders were first imported; the cancellation changed nothing
    assert shop.query("SELECT order_id, how FROM attributions ORDER BY order_id") == [
        {"order_id": "A-1", "how": "click"}, {"order_id": "A-2", "how": "click"},
        {"order_id": "A-3", "how": "click"}, {"order_id": "A-4", "how": "received"}]
    report = shop("report", "--json", "--now", "2026-03-10T10:00").json()
    cart = report["measured"]["rules"]["abandoned-cart"]
    assert {k: cart[k] for k in EXPECTED} == EXPECTED
    assert cart["category"] == "marketing"
    assert {k: cart["languages"]["fr"][k] for k in EXPECTED} == EXPECTED
    assert report["measured"]["attribution"] == {"after_click": "5d", "after_receiving": "1d"}
    assert "99.00" not in shop("report", "--json", "--now", "2026-03-10T10:00").stdout
    # --since counts from that very moment, not from the start of its day
    for now, sent in (("2026-03-01T11:00", 10), ("2026-03-01T11:31", 0)):
        recent = shop("report", "--json", "--since", "1h", "--now", now).json()
        assert recent["rules"].get("abandoned-cart", {}).get("sent", 0) == sent
        assert recent["measured"]["rules"].get("abandoned-cart", {}).get("sent", 0) == sent
    text = shop("report", "--now", "2026-03-10T10:00").stdout
    assert ("abandoned-cart: sent 10, delivered 10, clicked 4 (40.0% of 10 tracked),"
            " unsubscribes 0, bounces 0") in text
    assert ("orders after a click 2 (65.00 EUR), after receiving 1 (30.00 EUR, counted apart),"
            " revenue per e-mail sent 6.50 EUR") in text
    assert "99.00" not in text


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_the_same_known_answers_in_the_page_chromium_shows(shop, tmp_path):
    scenario(shop)
    page = tmp_path / "report.html"
    assert shop("report", "--html", page, "--now", "2026-03-10T10:00").exit_code == 0
    assert "99.00" not in page.read_text()
    figures = shown_figures(page, tmp_path)
    assert {k: figures[f"abandoned-cart/{k}"] for k in (
        "sent", "clicked", "click_rate", "orders_click", "revenue_click", "orders_received",
        "revenue_received", "revenue_per_email")} == {
        "sent": "10", "clicked": "4", "click_rate": "40.0% of 10 tracked", "orders_click": "2",
        "revenue_click": "65.00 EUR", "orders_received": "1", "revenue_received": "30.00 EUR",
        "revenue_per_email": "6.50 EUR"}
    assert figures["abandoned-cart/fr/click_rate"] == "40.0% of 10 tracked"  # per language
    assert figures["charts"] == "3"


def shown_figures(page, tmp_path) -> dict[str, str]:
    """What Chromium shows of the page's figures (its rendered text, cell by cell), and its
    screenshot (report.png beside the page), in one run of the browser."""
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", """<script>
      window.addEventListener('load', () => {
        const shown = {};
        for (const td of document.querySelectorAll('td[data-figure]'))
          shown[td.dataset.figure] = td.innerText.trim();
        shown.charts = String([...document.querySelectorAll('figure svg')]
          .filter(svg => svg.getBoundingClientRect().width > 0).length);
        const out = document.createElement('pre');
        out.id = 'shown';
        out.textContent = JSON.stringify(shown);
        document.body.appendChild(out);
      });</script></body>"""))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1300,2200"]
    shot = tmp_path / "report.png"
    dom = subprocess.run(["chromium", *flags, "--virtual-time-budget=3000",
                          f"--screenshot={shot}", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="shown">(.*?)</pre>', dom, re.S)
    assert found, dom[:300]
    assert shot.stat().st_size > 5000
    return json.loads(unescape(found.group(1)))


SMTP_RULES = """\
shop: {{name: Boutique, url: "https://boutique-test.example", timezone: UTC, locale: fr,
       address: "1 rue Test, 75001 Paris"}}
sender: {{from: "Boutique <bonjour@boutique-test.example>"}}
unsubscribe: {{url: "https://boutique-test.example/u?token={{token}}"}}
delivery: {{transport: smtp, smtp: {{host: 127.0.0.1, port: {port}, security: none, timeout: 2s}}}}
tracking: {{url: "https://boutique-test.example/mf", opens: true}}
rules:
  - {{name: abandoned-cart, on: cart.abandoned, after: 20m, template: abandoned_cart,
     category: marketing}}
  - {{name: confirmation, on: order.placed, template: order_confirmation}}
"""


def pixel(port: int, url: str, agent: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", urlsplit(url).path, headers={"User-Agent": agent})
    response = conn.getresponse()
    assert response.status == 200 and response.read().startswith(b"GIF")
    conn.close()


def test_opens_unsubscribes_bounces_and_what_a_confirmation_is_not_owed(mailflow, monkeypatch):
    from smtp_server import SinkServer

    monkeypatch.setenv("MAILFLOW_SECRET", "report-secret")
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    with SinkServer() as server:
        mailflow.config.write_text(SMTP_RULES.format(port=server.port))
        server.behaviour.rcpt = {"a2@example.com": "550 5.1.1 <a2@example.com>: no such user"}
        load(mailflow, "c.csv", CARTS, [f"C{i},a{i}@example.com,yes,2026-03-01 10:00,"
                                        "2026-03-01 10:00,30.00,Mug,1,30.00" for i in range(5)],
             "2026-03-01T10:01")
        load(mailflow, "o0.csv", ORDERS, ["B-1,b0@example.com,paid,2026-03-01 10:10,EUR,50.00,"
                                          "Mug,1,50.00,yes"], "2026-03-01T10:16")
        assert mailflow("send", "--now", "2026-03-01T10:30").exit_code == 1  # a2 bounced
        pixels = {}
        for message in server.received:
            html = message.get_body(("html",)).get_content()
            found = re.findall(r'src="(https://boutique-test\.example/mf/o/[^"]+)"', html)
            if found:
                pixels[message["X-Envelope-To"].split("@")[0]] = unescape(found[0])
    assert sorted(pixels) == ["a0", "a1", "a3", "a4"]  # the confirmation carries no pixel
    with serving(mailflow, datetime(2026, 3, 1, 13, 0, tzinfo=UTC)) as port:
        pixel(port, pixels["a0"], "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Thunderbird/115")
    sent_at = datetime.fromisoformat(mailflow.scalar(
        "SELECT sent_at FROM outbox WHERE email_key = 'a1@example.com'").replace("Z", "+00:00"))
    with serving(mailflow, sent_at + timedelta(seconds=5)) as port:  # a proxy's prefetch
        pixel(port, pixels["a1"], "Mozilla/5.0 (Windows NT 5.1; rv:11.0) GoogleImageProxy")
    assert mailflow("unsubscribe", "a3@example.com", "--now", "2026-03-01T12:00").exit_code == 0
    assert mailflow("unsubscribe", "a4@example.com", "--now", "2026-03-09T12:00").exit_code == 0
    # b0 orders again 5 hours after the confirmation: that is not the confirmation's doing
    load(mailflow, "o1.csv", ORDERS, ["B-2,b0@example.com,paid,2026-03-01 15:00,EUR,20.00,"
                                      "Mug,1,20.00,yes"], "2026-03-01T16:00")
    assert mailflow.scalar("SELECT count(*) FROM attributions") == 0
    report = mailflow("report", "--json", "--now", "2026-03-10T10:00").json()["measured"]
    cart = report["rules"]["abandoned-cart"]
    assert {k: cart[k] for k in ("sent", "delivered", "tracked", "clicked", "opens",
                                 "unsubscribes", "bounces")} == {
        "sent": 5, "delivered": 4, "tracked": 4, "clicked": 0,
        "opens": {"human": 1, "machine": 1}, "unsubscribes": 1, "bounces": 1}
    confirmation = report["rules"]["confirmation"]
    assert (confirmation["category"], confirmation["delivered"], confirmation["orders"]) == (
        "transactional", 1, {"click": 0, "received": 0})
    assert report["opens"] is True
    text = mailflow("report", "--now", "2026-03-10T10:00").stdout
    assert "opened by a person 1, only by a machine 1, unsubscribes 1, bounces 1" in text
    recent = mailflow("report", "--json", "--since", "2d", "--now", "2026-03-10T10:00").json()
    assert recent["measured"]["rules"] == {}  # nothing was sent in the last two days


def test_an_order_counts_for_a_click_only_after_it_and_within_after_click(shop):
    links = remind_ten(shop)
    shop.config.write_text(RULES.replace("EXTRA", ", attribution: {after_click: 2d}"))
    with serving(shop, datetime(2026, 3, 1, 12, 0, tzinfo=UTC)) as port:
        click(port, links["p0"])
        click(port, links["p1"])
    load(shop, "o1.csv", ORDERS, [
        "A-1,p0@example.com,paid,2026-03-01 11:00,EUR,40.00,Mug,1,40.00,yes",  # before its click
        "A-2,p1@example.com,paid,2026-03-03 11:00,EUR,25.00,Mug,1,25.00,yes",  # within 2 days
        "A-3,p1@example.com,paid,2026-03-04 11:00,EUR,25.00,Mug,1,25.00,yes",  # past 2 days
    ], "2026-03-05T12:00")
    assert shop.query("SELECT order_id, how FROM attributions ORDER BY order_id") == [
        {"order_id": "A-1", "how": "received"}, {"order_id": "A-2", "how": "click"}]
    # a tick with nothing new changes nothing, and a later payment makes revenue count again
    load(shop, "o2.csv", ORDERS, ["A-2,p1@example.com,cancelled,2026-03-03 11:00,EUR,25.00,Mug,1,"
                                  "25.00,yes"], "2026-03-06T12:00")
    cart = shop("report", "--json", "--now", "2026-03-10T10:00").json()["measured"]["rules"][
        "abandoned-cart"]
    assert (cart["orders"], cart["revenue"]["click"]) == ({"click": 0, "received": 1}, {})
    load(shop, "o3.csv", ORDERS, ["A-2,p1@example.com,paid,2026-03-03 11:00,EUR,27.50,Mug,1,"
                                  "27.50,yes"], "2026-03-07T12:00")
    cart = shop("report", "--json", "--now", "2026-03-10T10:00").json()["measured"]["rules"][
        "abandoned-cart"]
    assert (cart["orders"], cart["revenue"]["click"]) == ({"click": 1, "received": 1},
                                                          {"EUR": "27.50"})


def test_run_attributes_what_it_imports_even_after_purge_took_the_newest_orders(shop):
    """`run` attributes the orders its sources bring; a purge that removed the newest orders
    (whose rowids SQLite may give again) does not hide the next ones from the pass."""
    assert len(remind_ten(shop)) == 10
    load(shop, "old.csv", ORDERS, ["Z-1,old@example.com,paid,2025-01-10 10:00,EUR,5.00,M,1,5,yes"],
         "2026-03-01T11:00")  # the newest row of the orders table
    assert shop("purge", "--older-than", "365d", "--now", "2026-03-01T12:00").exit_code == 0
    assert shop.scalar("SELECT count(*) FROM orders WHERE id = 'Z-1'") == 0
    shop.config.write_text(RULES.replace("EXTRA", "") + "sources:\n  - path: exports/orders_*.csv\n")
    (shop.folder / "p" / "exports").mkdir(exist_ok=True)
    (shop.folder / "p" / "exports" / "orders_1.csv").write_text(
        ORDERS + "R-1,p3@example.com,paid,2026-03-01 18:00,EUR,12.00,Mug,1,12.00,yes\n")
    assert shop("run", "--now", "2026-03-01T19:00").exit_code == 0
    assert shop.query("SELECT order_id, how, outbox_key LIKE 'abandoned-cart%' AS cart"
                      " FROM attributions") == [{"order_id": "R-1", "how": "received", "cart": 1}]


def test_an_order_after_two_reminders_recovers_both_carts_and_counts_once(shop):
    load(shop, "c.csv", CARTS, ["C1,ana@example.com,yes,2026-03-01 10:00,2026-03-01 10:00,30.00,"
                                "Mug,1,30.00",
                                "C2,ana@example.com,yes,2026-03-02 10:00,2026-03-02 10:00,20.00,"
                                "Cup,1,20.00"], "2026-03-01T10:01")
    load(shop, "o0.csv", ORDERS, ["X,other@example.com,paid,2026-02-20 10:15,EUR,1.00,M,1,1,yes"],
         "2026-03-01T10:16")
    shop.config.write_text(RULES.replace("EXTRA", "").replace("category: marketing}",
                                                              "category: marketing, cap: 2 per 7d}"))
    assert shop("send", "--now", "2026-03-01T10:30").exit_code == 0
    assert shop("send", "--now", "2026-03-02T10:30").exit_code == 0
    assert shop.scalar("SELECT count(*) FROM outbox WHERE status = 'sent'") == 2
    load(shop, "o1.csv", ORDERS, ["A-1,ana@example.com,paid,2026-03-03 09:00,EUR,50.00,Mug,1,50.00,"
                                  "yes"], "2026-03-03T10:00")
    carts = shop("report", "--json", "--now", "2026-03-10T10:00").json()["carts"]
    assert (carts["reminded"], carts["recovered"], carts["revenue"]) == (2, 2, {"EUR": "50.00"})
    later = shop("report", "--json", "--since", "8d", "--now", "2026-03-10T10:00").json()["carts"]
    assert (later["reminded"], later["recovered"], later["revenue"]) == (1, 1, {"EUR": "50.00"})


def test_an_order_a_webhook_brings_is_attributed_by_serve(shop, monkeypatch):
    """serve imports the webhook's order and attributes it at once: the reminder was
    delivered an hour before the order (real clock: webhooks carry real times)."""
    from test_webhooks import SHOPIFY_SECRET, SOURCES, WOO_SECRET, eventually, shopify_order, shopify_post

    from mailflow.web.app import App
    from mailflow.web.sender import EventSender

    monkeypatch.setenv("SHOPIFY_WEBHOOK_SECRET", SHOPIFY_SECRET)
    monkeypatch.setenv("WC_WEBHOOK_SECRET", WOO_SECRET)
    shop.config.write_text(RULES.replace("EXTRA", "") + SOURCES)
    now = datetime.now(UTC).replace(microsecond=0)

    def at(hours: float) -> str:
        return (now - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S")

    load(shop, "c.csv", CARTS, [f"C1,ana@example.com,yes,{at(3)},{at(3)},30.00,Mug,1,30.00"],
         at(2.9))
    load(shop, "o0.csv", ORDERS, [f"X,other@example.com,paid,{at(30)},EUR,1.00,M,1,1,yes"],
         at(2.1))
    assert shop("send", "--now", at(2)).exit_code == 0
    assert shop.scalar("SELECT count(*) FROM outbox WHERE status = 'sent'"
                       " AND rule = 'abandoned-cart'") == 1
    config = load_config(shop.config)
    sender = EventSender(config, shop.db)
    with served(App(config, shop.db, sender.wake), sender=sender) as port:
        assert shopify_post(port, shopify_order(1, "ana@example.com", minutes_ago=60),
                            delivery="d-1")[0] == 200
        assert eventually(lambda: shop.query("SELECT order_id, how FROM attributions")) == [
            {"order_id": "#W1", "how": "received"}]


@pytest.mark.parametrize("query", ["after_receiving", "cart_recoveries"])
def test_the_attribution_pass_looks_up_each_new_orders_recipient_not_every_sent_message(
        tmp_path, query):
    # the store is never ANALYZEd: without `+status`, SQLite took outbox_pending for
    # status = 'sent' and read every sent message once per new order (28 s for 2,000 orders)
    from mailflow.store import Store, attribution

    store = Store.open(tmp_path / "plan.db")
    try:
        sql = getattr(attribution, f"_{query}")(False, False, ":m0")
        params = {"lo": 0, "hi": 10, "last_at": "", "now": "", "m0": "abandoned-cart",
                  "received_back": "-86400 seconds", "recovery_back": "-604800 seconds"}
        plan = " | ".join(row[-1] for row in store.conn.execute(f"EXPLAIN QUERY PLAN {sql}",
                                                                 params))
    finally:
        store.close()
    assert "outbox_pending" not in plan, plan
    assert "outbox_recipient" in plan, plan
