"""What a tracked link tells whoever holds it: the e-mail is forwarded, a proxy or the shop logs
its URL, it stays in a browser's history. A token names its message by an opaque reference, so
the links of a welcome e-mail (whose outbox key holds the customer's address) name nobody, even
decoded as an attacker would (base64, then zlib with the public dictionary). Clicks, opens and
attribution go on through the real CLI and serve over HTTP; the tokens sent before keep
working; a purged message's lead to the home page."""

from __future__ import annotations

import base64
import email
import email.policy
import http.client
import re
import zlib
from contextlib import contextmanager
from datetime import UTC, datetime
from html import unescape
from urllib.parse import unquote, urlsplit

import pytest
from http_server import served

from mailflow.config import load_config
from mailflow.consent.tracking_tokens import _DICTIONARY
from mailflow.store import Store
from mailflow.web.tracking import PIXEL, TrackingApp

SECRET = "tokens-test-secret"
SHOP = "https://boutique.example"
BASE = f"{SHOP}/mf"
ADDRESS = "ana.martin@example.com"
KEY = f"welcome:customer:{ADDRESS}"
CUSTOMERS = "email,first_name,last_name,locale,accepts_marketing,created_at\n"
WELCOME_URL = f"{SHOP}/?utm_source=mailflow&utm_campaign=welcome"
# Made by the code before references (commit 15b61af, consent/tracking_tokens.py) with SECRET:
# click_token(KEY, WELCOME_URL) and open_token(KEY). E-mails already sent hold such tokens.
OLD_CLICK = "ZINaj7AlMS9RLxdoUWaeQ2oFUFVOqh5QARfM1CSgZzOBHtCDSuoTbQUA.kwtgwq8ut_5fUr0EpFpWxg"
OLD_OPEN = "ZINaj7AlMS9RLxdoUWaeQ2oFUFVOqh5QAQA.s1RRqY4xJPJOavtpCHZZ4w"


@pytest.fixture
def shop(mailflow, monkeypatch):
    """The starter project with tracking and opens on."""
    monkeypatch.setenv("MAILFLOW_SECRET", SECRET)
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    text = mailflow.config.read_text().replace(
        "# tracking:\n#   url: https://boutique.example/mf\n#   opens: false",
        "tracking:\n  url: https://boutique.example/mf\n  opens: true")
    assert "\ntracking:\n" in text
    mailflow.config.write_text(text)
    return mailflow


def welcome(shop, now: str = "2026-03-02T11:05", created: str = "2026-03-02 10:00"):
    """Ana signs up at `created` (shop time); the welcome is sent at `now`."""
    customers = shop.write("customers.csv", f"{CUSTOMERS}Ana.Martin@example.com,Ana,Martin,fr,yes,"
                                            f"{created}\n")
    imported = shop("import", customers, "--kind", "customers", "--now", "2026-03-02T10:01")
    assert imported.exit_code == 0, imported.stderr
    sent = shop("send", "--rule", "welcome", "--now", now)
    assert sent.exit_code == 0, sent.stderr
    [path] = (shop.folder / "p" / "outbox").glob("*.eml")
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def links_of(message) -> list[str]:
    """Every link of both parts: the HTML's href and src, the text part's URLs."""
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    return ([unescape(h) for h in re.findall(r'(?:href|src)="([^"]*)"', html)]
            + re.findall(r"https?://[^\s<>\"')\]]+", text))


def readable(link: str) -> list[bytes]:
    """What an attacker reads from a link: the link itself, percent-decoded, every base64url
    piece of it decoded, and whatever inflates from any byte of those (zlib or raw deflate,
    with or without the dictionary, which is in the source code), up to where it breaks."""
    found = [link.encode(), unquote(link).encode()]
    for piece in re.findall(r"[A-Za-z0-9_-]{8,}", link):
        piece = piece[:len(piece) // 4 * 4 + (len(piece) % 4 if len(piece) % 4 > 1 else 0)]
        blob = base64.urlsafe_b64decode(piece + "=" * (-len(piece) % 4))
        found.append(blob)
        for start in range(len(blob)):
            for wbits in (-15, 15, 31):
                for zdict in (None, _DICTIONARY):
                    inflate = (zlib.decompressobj(wbits, zdict=zdict) if zdict
                               else zlib.decompressobj(wbits))
                    out = b""
                    for n in range(start, len(blob)):
                        try:
                            out += inflate.decompress(blob[n:n + 1])
                        except zlib.error:
                            break
                    if out:
                        found.append(out)
    return found


def names_ana(link: str) -> bool:
    return any(b"ana.martin" in blob.lower() for blob in readable(link))


@contextmanager
def serving(shop, at: datetime = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)):
    """serve's tracking endpoint on a free port of 127.0.0.1, its clock at `at`."""
    Store.open(shop.db).close()
    with served(TrackingApp(load_config(shop.config), shop.db, lambda: at)) as port:
        yield port


def get(port: int, url: str, headers: dict | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", urlsplit(url).path, headers=headers or {})
    response = conn.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    conn.close()
    return response


def clicks(shop) -> list[tuple]:
    return [(r["outbox_key"], r["url"], r["count"]) for r in
            shop.query("SELECT outbox_key, url, count FROM clicks ORDER BY url")]


def test_no_link_of_a_tracked_welcome_names_the_customer_even_decoded(shop):
    message = welcome(shop)
    assert shop.scalar("SELECT key FROM outbox") == KEY  # the key does hold the address
    links = links_of(message)
    tracked = [link for link in links if link.startswith(f"{BASE}/c/")]
    pixel = [link for link in links if link.startswith(f"{BASE}/o/")]
    assert len(tracked) >= 2 and len(pixel) == 1
    assert any(link in message.get_body(("plain",)).get_content() for link in tracked)
    unsubscribe = [link for link in links if "/desabonnement?token=" in link]
    assert unsubscribe and all(names_ana(link) for link in unsubscribe)  # below
    for link in links:
        if link not in unsubscribe:
            assert not names_ana(link), link
    # the decoding above finds the address in a token made before references
    assert names_ana(f"{BASE}/c/{OLD_CLICK}") and names_ana(f"{BASE}/o/{OLD_OPEN}.gif")
    # The one exception, documented (docs/tracking.md): the unsubscribe link carries the
    # address, signed, so that the one-click unsubscribe names its recipient even once the
    # message is purged; so do the List-Unsubscribe headers.
    assert message["List-Unsubscribe"].startswith(f"<{SHOP}/desabonnement?token=")


def test_a_welcome_click_and_open_are_recorded_and_the_order_after_it_attributed(shop):
    message = welcome(shop)
    links = links_of(message)
    tracked = next(link for link in links if link.startswith(f"{BASE}/c/"))
    pixel = next(link for link in links if link.startswith(f"{BASE}/o/"))
    with serving(shop) as port:
        response = get(port, tracked)
        assert response.status == 303
        target = response.getheader("Location")
        assert target.startswith(SHOP) and target.endswith("utm_campaign=welcome")
        assert "/mf/" not in target
        opened = get(port, pixel, {"User-Agent": "Thunderbird/133.0"})
        assert (opened.status, opened.body) == (200, PIXEL)  # type: ignore[attr-defined]
    assert clicks(shop) == [(KEY, target, 1)]
    assert shop.query("SELECT outbox_key, email_key, human_at FROM opens") == [
        {"outbox_key": KEY, "email_key": ADDRESS, "human_at": "2026-03-02T12:00:00Z"}]
    orders = shop.write("orders.csv", "order_id,email,status,created_at,currency,total,line_name,"
                        "line_quantity,line_price,accepts_marketing\n"
                        "A-1,ana.martin@example.com,paid,2026-03-03 09:00,EUR,42.00,Mug,1,"
                        "42.00,yes\n")
    assert shop("import", orders, "--now", "2026-03-03T09:30").exit_code == 0
    assert shop.query("SELECT outbox_key, order_id, how FROM attributions") == [
        {"outbox_key": KEY, "order_id": "A-1", "how": "click"}]
    report = shop("report", "--json", "--now", "2026-03-04T10:00").json()
    figures = report["measured"]["rules"]["welcome"]
    assert (figures["clicked"], figures["orders"]["click"], figures["revenue"]["click"]) == (
        1, 1, {"EUR": "42.00"})


def test_tokens_sent_before_references_still_record_and_redirect(shop):
    welcome(shop)
    store = Store.open(shop.db)
    with store.transaction() as conn:  # as a message sent before 0018 is
        conn.execute("UPDATE outbox SET reference = NULL")
    store.close()
    tampered = OLD_CLICK[:7] + ("A" if OLD_CLICK[7] != "A" else "B") + OLD_CLICK[8:]
    with serving(shop) as port:
        response = get(port, f"{BASE}/c/{OLD_CLICK}")
        assert (response.status, response.getheader("Location")) == (303, WELCOME_URL)
        assert get(port, f"{BASE}/o/{OLD_OPEN}.gif").status == 200
        before = shop.dump()
        assert get(port, f"{BASE}/c/{tampered}").status == 400
        assert get(port, f"{BASE}/o/{OLD_OPEN[:-1]}x.gif").status == 400
        assert shop.dump() == before
    assert clicks(shop) == [(KEY, WELCOME_URL, 1)]
    assert shop.scalar("SELECT outbox_key FROM opens") == KEY


def test_a_tampered_new_token_gets_400_and_nothing_is_recorded(shop):
    links = links_of(welcome(shop))
    token = next(link for link in links if link.startswith(f"{BASE}/c/")).rsplit("/", 1)[1]
    data, mac = token.split(".")
    before = shop.dump()
    with serving(shop) as port:
        for n in (1, 3, 12, 20, len(data) - 1):  # the reference's bytes and the URL's
            changed = data[:n] + ("A" if data[n] != "A" else "B") + data[n + 1:]
            assert get(port, f"{BASE}/c/{changed}.{mac}").status == 400
        assert get(port, f"{BASE}/c/{data}.{mac[::-1]}").status == 400
    assert shop.dump() == before


def test_the_links_of_a_purged_message_lead_to_the_home_page_and_record_nothing(shop):
    links = links_of(welcome(shop))
    tracked = next(link for link in links if link.startswith(f"{BASE}/c/"))
    pixel = next(link for link in links if link.startswith(f"{BASE}/o/"))
    purged = shop("purge", "--older-than", "200d", "--now", "2026-10-01T10:00", "--json")
    assert purged.exit_code == 0 and purged.json()["messages"] == 1
    with serving(shop, datetime(2026, 10, 1, 12, 0, tzinfo=UTC)) as port:
        response = get(port, tracked)
        assert (response.status, response.getheader("Location")) == (303, SHOP)
        assert get(port, pixel).status == 200
    assert clicks(shop) == [] and shop.query("SELECT * FROM opens") == []


def test_a_message_held_by_quiet_hours_gets_its_reference_when_it_goes(shop):
    text = shop.config.read_text().replace("    template: welcome\n",
                                           '    template: welcome\n    quiet_hours: "21:00-08:00"\n')
    shop.config.write_text(text)
    customers = shop.write("customers.csv", f"{CUSTOMERS}{ADDRESS},Ana,Martin,fr,yes,"
                                            "2026-03-02 20:30\n")
    assert shop("import", customers, "--kind", "customers", "--now", "2026-03-02T20:31"
                ).exit_code == 0
    assert shop("send", "--rule", "welcome", "--now", "2026-03-02T21:40").exit_code == 0
    assert shop.query("SELECT status, reference FROM outbox") == [
        {"status": "deferred", "reference": None}]  # decided, not claimed: no e-mail yet
    assert shop("send", "--rule", "welcome", "--now", "2026-03-03T08:05").exit_code == 0
    [path] = (shop.folder / "p" / "outbox").glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    tracked = next(link for link in links_of(message) if link.startswith(f"{BASE}/c/"))
    with serving(shop, datetime(2026, 3, 3, 9, 0, tzinfo=UTC)) as port:
        assert get(port, tracked).status == 303
    assert [c[0] for c in clicks(shop)] == [KEY]


def test_a_message_is_found_by_its_reference_through_an_index(shop):
    welcome(shop)
    reference = shop.scalar("SELECT reference FROM outbox")
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", reference)  # 96 bits, url-safe
    store = Store.open(shop.db)
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    try:
        message = store.tracked_message(reference=reference)
        assert message is not None and message.key == KEY
        lookup = next(s for s in statements if "FROM outbox" in s)
        store.conn.set_trace_callback(None)
        plan = " ".join(str(row[-1]) for row in store.conn.execute(
            "EXPLAIN QUERY PLAN " + lookup.replace(f"'{reference}'", "?"), (reference,)))
    finally:
        store.close()
    assert "USING INDEX outbox_reference" in plan, plan
