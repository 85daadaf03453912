"""Click and open tracking (issue 13): the links of a sent e-mail go through `serve`, over real
HTTP on 127.0.0.1, and each click is recorded once per message and link and redirected to
exactly the URL the e-mail held; the pixel records one open, a proxy's as a machine's."""

from __future__ import annotations

import email
import email.policy
import http.client
import re
import threading
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import urlsplit

import pytest
from http_server import served
from hypothesis import given, settings
from hypothesis import strategies as st

from mailflow.config import load_config
from mailflow.consent.tracking_tokens import (
    BadTrackingToken,
    NamedMessage,
    _b64,
    _pack,
    _referenced,
    _unb64,
    click_token,
    message_reference,
    read_click_token,
)
from mailflow.store import Store
from mailflow.web.app import App
from mailflow.web.tracking import PIXEL, TrackingApp

SECRET = "track-test-secret"
SHOP = "https://boutique.example"
BASE = "https://boutique.example/mf"
RULES = """\
shop: {name: Boutique, url: "https://boutique.example", timezone: Europe/Paris, locale: fr,
       address: "1 rue Test, 75001 Paris"}
sender: {from: "Boutique <bonjour@boutique.example>"}
unsubscribe: {url: "https://boutique.example/desabonnement?token={token}"}
tracking:
  url: https://boutique.example/mf
TRACKING_EXTRA
rules:
  - {name: confirmation, on: order.placed, template: promo}
  - {name: promo, on: order.placed, after: 1d, template: promo, category: marketing}
"""
TEMPLATE = """\
<html><head><link rel="alternate" href="/feed.xml"></head><body>
{% block subject %}Votre commande {{ order.id }}{% endblock %}
<p>{% for line in order.lines %}<a href="/products/{{ line.name|lower }}">{{ line.name }}</a>{% endfor %}</p>
<p><a href="{{ shop.url }}/account/orders/{{ order.id }}">Suivre ma commande</a></p>
<p><a class="button" href="https://boutique.example/collections/new?ref=email">Nouveautés</a></p>
<p><a href="https://www.laposte.fr/outils/suivre-vos-envois?code=6A1">La Poste</a>
<a href="mailto:service@boutique.example">Écrire</a> <a href="tel:+33100000000">Appeler</a></p>
{% if unsubscribe_url %}<p><a href="{{ unsubscribe_url }}">Se désabonner</a> {{ shop.address }}</p>{% endif %}
</body></html>
"""
TEXT = """\
Votre commande {{ order.id }} : {{ shop.url }}/account/orders/{{ order.id }}
Écrire : service@boutique.example
"""
ORDERS = ("order_id,email,first_name,locale,status,created_at,total,line_name,line_quantity,"
          "line_price,accepts_marketing\n")
SENT = datetime(2026, 3, 2, 9, 5, tzinfo=UTC)  # --now 2026-03-02T10:05 in Paris


def project(mailflow, monkeypatch, extra: str = "") -> None:
    monkeypatch.setenv("MAILFLOW_SECRET", SECRET)
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    mailflow.config.write_text(RULES.replace("TRACKING_EXTRA", extra))
    (mailflow.folder / "p" / "templates" / "promo.html").write_text(TEMPLATE)
    (mailflow.folder / "p" / "templates" / "promo.txt").write_text(TEXT)


@pytest.fixture
def shop(mailflow, monkeypatch):
    project(mailflow, monkeypatch)
    return mailflow


def send(shop, *emails: str, now: str = "2026-03-02T10:05") -> dict[str, email.message.EmailMessage]:
    """Orders by these customers at 10:00, sent at `now`: {outbox key: the e-mail sent}."""
    rows = [f"A-{n},{address},Ana,fr,paid,2026-03-02 10:00,10.00,Mug,1,10.00,yes"
            for n, address in enumerate(emails, 1)]
    imported = shop("import", shop.write(f"orders{len(emails)}.csv", ORDERS + "\n".join(rows)
                                         + "\n"), "--now", "2026-03-02T10:01")
    assert imported.exit_code == 0, imported.stderr
    result = shop("send", "--now", now, "--json")
    assert result.exit_code == 0, result.stderr
    return sent_messages(shop)


def sent_messages(shop) -> dict[str, email.message.EmailMessage]:
    found = {}
    for path in sorted((shop.folder / "p" / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        key = shop.scalar("SELECT key FROM outbox WHERE message_id = ?",
                          (message["Message-ID"],))
        found[key] = message
    return found


def parts(message) -> tuple[str, str]:
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    return html, text


def hrefs(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="([^"]*)"', html)]


@contextmanager
def serving(shop, clock=None):
    """serve's tracking endpoint on a free port of 127.0.0.1, in a thread."""
    Store.open(shop.db).close()
    config = load_config(shop.config)
    app = TrackingApp(config, shop.db, clock) if clock else App(config, shop.db, lambda: None)
    with served(app) as port:
        yield port


def get(port: int, url: str, headers=None, method: str = "GET"):
    """Request a tracked URL (https://boutique.example/mf/...) of the e-mail from our serve."""
    parts_ = urlsplit(url)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, parts_.path, headers=headers or {})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


def decoded(shop, link: str) -> tuple[str, str]:
    """(the outbox key of the message a tracked link names, by its reference; its URL)."""
    named, url = read_click_token(urlsplit(link).path.rsplit("/", 1)[1], SECRET.encode())
    assert named.key is None and named.reference is not None  # a new token holds no key
    return shop.scalar("SELECT key FROM outbox WHERE reference = ?", (named.reference,)), url


def clicks(shop) -> list[tuple]:
    return [(r["outbox_key"], r["url"], r["rule"], r["count"])
            for r in shop.query("SELECT * FROM clicks ORDER BY url")]


def test_each_kind_of_link_is_recorded_once_per_message_and_redirects_to_its_url(shop):
    sent = send(shop, "ana@example.com", now="2026-03-03T10:05")
    promo_key = next(k for k in sent if k.startswith("promo:"))
    html, text = parts(sent[promo_key])
    links = hrefs(html)
    tracked = [h for h in links if h.startswith(BASE + "/c/")]
    assert {decoded(shop, h)[0] for h in tracked} == {promo_key}
    originals = [decoded(shop, h)[1] for h in tracked]
    utm = "utm_source=mailflow&utm_campaign=promo"
    assert originals == [f"{SHOP}/products/mug?{utm}", f"{SHOP}/account/orders/A-1?{utm}",
                         f"{SHOP}/collections/new?ref=email&{utm}"]
    unsubscribe = [h for h in links if "desabonnement" in h]
    assert len(unsubscribe) == 1 and unsubscribe[0].startswith(SHOP + "/desabonnement?token=")
    assert "https://www.laposte.fr/outils/suivre-vos-envois?code=6A1" in links  # not the shop's
    assert "mailto:service@boutique.example" in links and "tel:+33100000000" in links
    assert f"{SHOP}/feed.xml?utm_source=mailflow&utm_campaign=promo" in links  # <link>: not clicked
    assert all(len(h) < 300 for h in tracked)
    text_links = re.findall(r"https://\S+", text)
    assert len(text_links) == 1 and text_links[0].startswith(BASE + "/c/")
    with serving(shop) as port:
        for link, original in zip([*tracked, text_links[0]], [*originals, originals[1]],
                                  strict=True):
            response, _ = get(port, link)
            assert response.status == 303
            assert response.getheader("Location") == original
        get(port, tracked[0])
    assert clicks(shop) == [(promo_key, originals[1], "promo", 2),
                            (promo_key, originals[2], "promo", 1),
                            (promo_key, originals[0], "promo", 2)]
    row = shop.query("SELECT email_key, first_at <= last_at AS ordered FROM clicks LIMIT 1")[0]
    assert row == {"email_key": "ana@example.com", "ordered": 1}


def test_send_records_the_language_and_whether_the_links_were_rewritten(shop):
    send(shop, "ana@example.com", now="2026-03-03T10:05")
    rows = shop.query("SELECT rule, locale, tracked FROM outbox ORDER BY rule")
    assert rows == [{"rule": "confirmation", "locale": "fr", "tracked": 0},
                    {"rule": "promo", "locale": "fr", "tracked": 1}]


def test_transactional_emails_are_tracked_only_when_the_shop_turns_it_on(mailflow, monkeypatch):
    project(mailflow, monkeypatch)
    confirmation = parts(send(mailflow, "ana@example.com")["confirmation:order:A-1"])
    assert not any(BASE in part for part in confirmation)
    assert f"{SHOP}/account/orders/A-1?utm_source=mailflow" in confirmation[0]
    project(mailflow, monkeypatch, "  transactional: true")
    sent = send(mailflow, "ana@example.com", "bob@example.com")
    html, text = parts(sent["confirmation:order:A-2"])
    assert f"{BASE}/c/" in html and f"{BASE}/c/" in text
    assert mailflow.scalar("SELECT tracked FROM outbox WHERE key = 'confirmation:order:A-2'") == 1


def test_a_tampered_or_foreign_token_gets_400_and_nothing_is_recorded(shop):
    sent = send(shop, "ana@example.com", now="2026-03-03T10:05")
    link = next(h for h in hrefs(parts(sent["promo:order:A-1"])[0]) if "/c/" in h)
    token = urlsplit(link).path.rsplit("/", 1)[1]
    data, mac = token.split(".")
    flipped = data[:5] + ("A" if data[5] != "A" else "B") + data[6:]
    foreign = click_token(message_reference("promo:order:A-1", b"another secret"),
                          "https://evil.example/", b"another secret")
    before = shop.dump()
    with serving(shop) as port:
        for bad in (f"{flipped}.{mac}", f"{data}.{mac[:-1]}", foreign, "garbage", f"{data}."):
            response, _ = get(port, f"{BASE}/c/{bad}")
            assert response.status == 400, bad
            assert response.getheader("Location") is None
    assert shop.dump() == before


def test_a_good_token_of_a_message_the_store_no_longer_has_goes_to_the_home_page(shop):
    Store.open(shop.db).close()
    token = click_token(message_reference("promo:order:PURGED", SECRET.encode()),
                        f"{SHOP}/account/orders/PURGED", SECRET.encode())
    with serving(shop) as port:
        response, _ = get(port, f"{BASE}/c/{token}")
    assert (response.status, response.getheader("Location")) == (303, SHOP)
    assert clicks(shop) == []


def test_an_unsubscribed_customer_is_no_longer_tracked(mailflow, monkeypatch):
    project(mailflow, monkeypatch, "  transactional: true")
    sent = send(mailflow, "ana@example.com")
    link = next(h for h in hrefs(parts(sent["confirmation:order:A-1"])[0]) if "/c/" in h)
    assert mailflow("unsubscribe", "ana@example.com", "--now", "2026-03-02T11:00").exit_code == 0
    with serving(mailflow) as port:
        response, _ = get(port, link)
    assert response.status == 303  # the redirect still works
    assert response.getheader("Location").startswith(f"{SHOP}/products/mug?")
    assert clicks(mailflow) == []
    later = send(mailflow, "ana@example.com", "ana@example.com", now="2026-03-02T12:00")
    html, text = parts(later["confirmation:order:A-2"])
    assert BASE not in html and BASE not in text
    assert mailflow.scalar("SELECT tracked FROM outbox WHERE key = 'confirmation:order:A-2'") == 0


def test_a_head_request_is_answered_and_not_counted(shop):
    sent = send(shop, "ana@example.com", now="2026-03-03T10:05")
    link = next(h for h in hrefs(parts(sent["promo:order:A-1"])[0]) if "/c/" in h)
    with serving(shop) as port:
        response, _ = get(port, link, method="HEAD")
        assert response.status == 303
        assert get(port, link, method="POST")[0].status == 405
    assert clicks(shop) == []


def test_changing_the_url_of_a_token_breaks_its_signature():
    secret = SECRET.encode()

    @settings(max_examples=100, deadline=None, database=None)
    @given(st.text(min_size=1, max_size=40).map(lambda s: f"{SHOP}/products/{s}"),
           st.text(min_size=1, max_size=40).map(lambda s: f"https://evil.example/{s}"))
    def check(url: str, other: str) -> None:
        reference = message_reference("promo:order:A-1", secret)
        token = click_token(reference, url, secret)
        assert read_click_token(token, secret) == (NamedMessage(reference=reference), url)
        data, mac = token.split(".")
        for forged in (_referenced(reference) + _pack(other),
                       _pack("promo:order:A-1" + chr(10) + other)):  # as tokens before references
            with pytest.raises(BadTrackingToken):
                read_click_token(f"{_b64(forged)}.{mac}", secret)
        raw = bytearray(_unb64(data))
        for n in {0, 1, len(raw) // 2, len(raw) - 1}:
            changed = bytearray(raw)
            changed[n] ^= 0x01
            with pytest.raises(BadTrackingToken):
                read_click_token(f"{_b64(bytes(changed))}.{mac}", secret)

    check()


# -- opens ----------------------------------------------------------------------------------

@pytest.fixture
def opens_shop(mailflow, monkeypatch):
    project(mailflow, monkeypatch, "  opens: true")
    return mailflow


def pixel_of(message) -> str:
    html = parts(message)[0]
    found = re.findall(r'<img[^>]+src="([^"]+/o/[^"]+\.gif)"', html)
    assert len(found) == 1
    return unescape(found[0])


def opens(shop) -> list[dict]:
    return shop.query("SELECT outbox_key, rule, email_key, first_at, human_at, machine_at"
                      " FROM opens")


def test_opens_are_off_by_default(shop):
    sent = send(shop, "ana@example.com", now="2026-03-03T10:05")
    assert "/o/" not in parts(sent["promo:order:A-1"])[0]


def test_the_pixel_is_a_gif_never_cached_and_records_one_human_open(opens_shop):
    sent = send(opens_shop, "ana@example.com", now="2026-03-03T10:05")
    pixel = pixel_of(sent["promo:order:A-1"])
    later = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    browser = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101"
                             " Thunderbird/133.0"}
    with serving(opens_shop, clock=lambda: later) as port:
        for _ in range(3):
            response, body = get(port, pixel, browser)
            assert response.status == 200
            assert response.getheader("Content-Type") == "image/gif"
            assert "no-store" in response.getheader("Cache-Control")
            assert body == PIXEL and body[:6] == b"GIF89a" and body[-1:] == b";"
            assert (int.from_bytes(body[6:8], "little"), int.from_bytes(body[8:10], "little")) \
                == (1, 1)
    assert opens(opens_shop) == [{"outbox_key": "promo:order:A-1", "rule": "promo",
                                  "email_key": "ana@example.com",
                                  "first_at": "2026-03-03T12:00:00Z",
                                  "human_at": "2026-03-03T12:00:00Z", "machine_at": None}]


PROXIES = [
    "Mozilla/5.0",  # Apple Mail Privacy Protection
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
]
IPHONE = {"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)"
                        " AppleWebKit/605.1.15 Mobile/15E148"}


@pytest.mark.parametrize("agent", PROXIES)
def test_a_privacy_proxy_open_within_seconds_of_delivery_is_a_machine_open_and_a_later_human_one_apart(
        opens_shop, agent):
    sent = send(opens_shop, "ana@example.com", now="2026-03-03T10:05")
    pixel = pixel_of(sent["promo:order:A-1"])
    delivered = SENT + timedelta(days=1)
    times = iter([delivered + timedelta(seconds=3), datetime(2026, 3, 3, 18, 0, tzinfo=UTC)])
    with serving(opens_shop, clock=lambda: next(times)) as port:
        assert get(port, pixel, {"User-Agent": agent})[0].status == 200
        assert get(port, pixel, IPHONE)[0].status == 200
    [row] = opens(opens_shop)
    assert (row["first_at"], row["machine_at"], row["human_at"]) == (
        "2026-03-03T09:05:03Z", "2026-03-03T09:05:03Z", "2026-03-03T18:00:00Z")


@pytest.mark.parametrize("agent", PROXIES)
def test_a_proxy_open_hours_after_delivery_is_a_person_reading_through_the_proxy(
        opens_shop, agent):
    sent = send(opens_shop, "ana@example.com", now="2026-03-03T10:05")
    pixel = pixel_of(sent["promo:order:A-1"])
    with serving(opens_shop, clock=lambda: datetime(2026, 3, 3, 12, 0, tzinfo=UTC)) as port:
        assert get(port, pixel, {"User-Agent": agent})[0].status == 200
    [row] = opens(opens_shop)
    assert (row["human_at"], row["machine_at"]) == ("2026-03-03T12:00:00Z", None)


def test_a_reader_s_own_mail_client_within_seconds_of_delivery_is_a_person(opens_shop):
    sent = send(opens_shop, "ana@example.com", now="2026-03-03T10:05")
    pixel = pixel_of(sent["promo:order:A-1"])
    delivered = SENT + timedelta(days=1)
    with serving(opens_shop, clock=lambda: delivered + timedelta(seconds=2)) as port:
        get(port, pixel, IPHONE)
    [row] = opens(opens_shop)
    assert row["human_at"] == "2026-03-03T09:05:02Z" and row["machine_at"] is None


def test_a_burst_of_500_concurrent_clicks_is_recorded_and_every_redirect_is_right(shop):
    sent = send(shop, *[f"c{n}@example.com" for n in range(5)], now="2026-03-03T10:05")
    links = [(h, decoded(shop, h)) for key, message in sent.items() if key.startswith("promo:")
             for h in hrefs(parts(message)[0]) if "/c/" in h]
    assert len(links) == 15
    clicks_of = [links[n % len(links)] for n in range(500)]
    start = threading.Barrier(len(clicks_of))
    answers: list[tuple[int, str | None, str]] = []

    with serving(shop) as port:
        def click(link: str, original: str) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            start.wait()
            conn.request("GET", urlsplit(link).path)
            response = conn.getresponse()
            response.read()
            conn.close()
            answers.append((response.status, response.getheader("Location"), original))

        threads = [threading.Thread(target=click, args=(link, original))
                   for link, (_key, original) in clicks_of]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(answers) == 500
    assert all(status == 303 and location == original for status, location, original in answers)
    rows = shop.query("SELECT outbox_key, url, count FROM clicks")
    assert len(rows) == 15 and sum(r["count"] for r in rows) == 500
    expected = {(key, url): 0 for _h, (key, url) in links}
    for _h, (key, url) in clicks_of:
        expected[(key, url)] += 1
    assert {(r["outbox_key"], r["url"]): r["count"] for r in rows} == expected


def test_the_starters_cart_reminder_is_tracked_in_both_parts_and_keeps_its_unsubscribe(
        mailflow, monkeypatch):
    """The default template, no .txt twin: the text part is derived from the tracked HTML."""
    monkeypatch.setenv("MAILFLOW_SECRET", SECRET)
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    text = mailflow.config.read_text().replace("# tracking:\n#   url: https://boutique.example/mf",
                                               "tracking:\n  url: https://boutique.example/mf")
    mailflow.config.write_text(text.replace("  max_data_age: 1h\n", ""))  # no orders export
    header = ("cart_id,email,first_name,accepts_marketing,created_at,updated_at,completed_at,"
              "total,recovery_url,line_sku,line_name,line_quantity,line_price\n")
    cart = ("C1,lou@example.com,Lou,yes,2026-03-02 10:00,2026-03-02 10:05,,34.00,"
            "https://boutique.example/cart/C1,THE-1,Théière,1,34.00\n")
    assert mailflow("import", mailflow.write("carts.csv", header + cart), "--now",
                    "2026-03-02T10:06").exit_code == 0
    assert mailflow("send", "--now", "2026-03-02T11:00", "--rule", "abandoned-cart").exit_code == 0
    [(key, message)] = sent_messages(mailflow).items()
    html, text_part = parts(message)
    links = hrefs(html)
    shop_links = [h for h in links if h.startswith(SHOP) and not h.startswith(BASE)]
    assert len(shop_links) == 1 and shop_links[0].startswith(SHOP + "/desabonnement?token=")
    tracked = [decoded(mailflow, h) for h in links if h.startswith(BASE + "/c/")]
    assert (key, f"{SHOP}/cart/C1?utm_source=mailflow&utm_campaign=abandoned-cart") in tracked
    assert all(k == key for k, _url in tracked)
    assert f"{BASE}/c/" in text_part and "/desabonnement?token=" in text_part
    assert message["List-Unsubscribe"].startswith(f"<{SHOP}/desabonnement?token=")
    assert "/o/" not in html


def test_messages_rendered_ahead_by_a_worker_are_tracked_and_noted_alike(shop, monkeypatch):
    monkeypatch.setenv("MAILFLOW_RENDER_WORKERS", "1")
    sent = send(shop, "ana@example.com", "bob@example.com", now="2026-03-03T10:05")
    for key in ("promo:order:A-1", "promo:order:A-2"):
        links = [h for h in hrefs(parts(sent[key])[0]) if h.startswith(BASE + "/c/")]
        assert len(links) == 3
        assert {decoded(shop, h)[0] for h in links} == {key}
    assert shop.query("SELECT DISTINCT locale, tracked FROM outbox WHERE rule = 'promo'") == [
        {"locale": "fr", "tracked": 1}]


def test_the_real_serve_says_what_it_tracks_and_nothing_of_the_clickers(shop):
    import subprocess
    import sys

    sent = send(shop, "ana@example.com", now="2026-03-03T10:05")
    link = next(h for h in hrefs(parts(sent["promo:order:A-1"])[0]) if "/c/" in h)
    command = [sys.executable, "-m", "mailflow", "--db", str(shop.db), "--config",
               str(shop.config), "serve", "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        server.stderr.readline()  # the unsubscribe endpoint's line
        found = re.search(r"^serving the tracked links of https://boutique\.example/mf on"
                          r" http://127\.0\.0\.1:(\d+)$", server.stderr.readline().rstrip("\n"))
        assert found
        port = int(found.group(1))
        agent = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"}
        assert get(port, link, agent)[0].status == 303
        assert get(port, link[:-3] + "xyz", agent)[0].status == 400
    finally:
        server.terminate()
        out, err = server.communicate(timeout=10)
    assert (out, err) == ("", "")  # nothing per request: no address, no agent, no token
    assert [c[3] for c in clicks(shop)] == [1]


def test_a_pixel_still_shows_once_opens_are_turned_off_and_records_nothing(opens_shop):
    sent = send(opens_shop, "ana@example.com", now="2026-03-03T10:05")
    pixel = pixel_of(sent["promo:order:A-1"])
    opens_shop.config.write_text(opens_shop.config.read_text().replace("  opens: true\n", ""))
    later = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    with serving(opens_shop, clock=lambda: later) as port:
        response, body = get(port, pixel)
        assert (response.status, body) == (200, PIXEL)
        assert get(port, pixel.replace(".gif", "x.gif"))[0].status == 400
    assert opens(opens_shop) == []


def test_a_link_with_accents_redirects_to_the_same_address_percent_encoded(shop):
    rows = "A-1,ana@example.com,Ana,fr,paid,2026-03-02 10:00,10.00,Théière,1,10.00,yes\n"
    assert shop("import", shop.write("accents.csv", ORDERS + rows), "--now",
                "2026-03-02T10:01").exit_code == 0
    assert shop("send", "--now", "2026-03-03T10:05").exit_code == 0
    message = sent_messages(shop)["promo:order:A-1"]
    link = next(h for h in hrefs(parts(message)[0]) if "/c/" in h)
    original = decoded(shop, link)[1]
    assert original.startswith(f"{SHOP}/products/théière?")
    with serving(shop) as port:
        response, _ = get(port, link)
    assert response.getheader("Location") == original.replace("é", "%C3%A9").replace("è", "%C3%A8")
    assert clicks(shop)[0][1] == original


def test_an_unsubscribed_customers_open_is_not_recorded(opens_shop):
    sent = send(opens_shop, "ana@example.com", now="2026-03-03T10:05")
    pixel = pixel_of(sent["promo:order:A-1"])
    assert opens_shop("unsubscribe", "ana@example.com", "--now", "2026-03-03T11:00").exit_code == 0
    with serving(opens_shop, clock=lambda: datetime(2026, 3, 3, 12, 0, tzinfo=UTC)) as port:
        response, body = get(port, pixel, {"User-Agent": "Thunderbird/133.0"})
    assert (response.status, body) == (200, PIXEL)
    assert opens(opens_shop) == []
