"""Unsubscribes: honoured at once for marketing, never for order e-mails; signed tokens; the
RFC 8058 one-click endpoint over real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import threading
from urllib.parse import urlsplit

import pytest

from mailflow.config import load_config
from mailflow.serve import make_server
from mailflow.tokens import make_token

SECRET = "unsub-test-secret"
RULES = """\
shop: {name: Boutique, url: "https://boutique.example", timezone: Europe/Paris, locale: fr}
sender: {from: "Boutique <bonjour@boutique.example>"}
unsubscribe: {url: "https://boutique.example/desabonnement?token={token}"}
rules:
  - {name: confirmation, on: order.placed, template: order_confirmation}
  - {name: review, on: order.placed, after: 1d, template: review_request, category: marketing}
"""
ORDERS = ("order_id,email,first_name,locale,status,created_at,total,line_name,line_quantity,"
          "line_price,accepts_marketing\n")


@pytest.fixture
def shop(mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_SECRET", SECRET)
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    mailflow.config.write_text(RULES)
    return mailflow


def orders(shop, *rows: str, now: str) -> None:
    result = shop("import", shop.write(f"o{now[-5:].replace(':', '')}.csv",
                                       ORDERS + "\n".join(rows) + "\n"), "--now", now)
    assert result.exit_code == 0, result.stderr


def row(order_id: str, email: str, created: str, locale: str = "fr") -> str:
    return f"{order_id},{email},Ana,{locale},paid,{created},10.00,Mug,1,10.00,yes"


def sent(shop, now: str) -> list[tuple[str, str, str | None]]:
    return [(m["rule"], m["status"], m["reason"])
            for m in shop("send", "--now", now, "--json").json()["messages"]]


def test_an_unsubscribe_blocks_marketing_after_it_and_never_order_emails(shop):
    orders(shop, row("A-1", "ana@example.com", "2026-03-02 10:00"), now="2026-03-02T10:01")
    assert sent(shop, "2026-03-02T10:05") == [("confirmation", "sent", None)]
    assert shop("unsubscribe", "ANA@example.com", "--now", "2026-03-02T12:00").exit_code == 0
    assert sent(shop, "2026-03-03T10:05") == [("review", "skipped", "unsubscribed")]
    orders(shop, row("A-2", "ana@example.com", "2026-03-04 10:00"), now="2026-03-04T10:01")
    assert sent(shop, "2026-03-04T10:05") == [("confirmation", "sent", None)]
    assert shop("resubscribe", "ana@example.com").exit_code == 0
    assert sent(shop, "2026-03-05T10:05") == [("review", "sent", None)]


def test_an_unsubscribe_after_the_send_does_not_rewrite_history(shop):
    orders(shop, row("A-1", "ana@example.com", "2026-03-02 10:00"), now="2026-03-02T10:01")
    assert sent(shop, "2026-03-03T10:05") == [("confirmation", "sent", None),
                                              ("review", "sent", None)]
    shop("unsubscribe", "ana@example.com", "--now", "2026-03-03T11:00")
    assert shop.scalar("SELECT status FROM outbox WHERE rule = 'review'") == "sent"


def test_a_token_from_another_secret_or_altered_by_one_character_is_refused(shop):
    good = make_token("ana@example.com", SECRET.encode())
    other = make_token("ana@example.com", b"another-secret")
    altered = good[:-1] + ("A" if good[-1] != "A" else "B")
    shop("status")
    before = shop.dump()
    for token in (other, altered, "garbage", good.replace(".", "")):
        result = shop("unsubscribe", "--token", token)
        assert result.exit_code == 2
        assert "invalid or was altered: nothing changed" in result.stderr
    assert shop.dump() == before
    assert shop("unsubscribe", "--token", good).exit_code == 0
    assert shop.scalar("SELECT email_key FROM suppressions") == "ana@example.com"


@pytest.fixture
def endpoint(shop):
    config = load_config(shop.config)
    server = make_server(config, shop.db, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield shop, server.server_port
    server.shutdown()
    server.server_close()


def request(port: int, method: str, path: str, body: bytes | None = None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read().decode()
    conn.close()
    return response.status, data


def unsub_path(email: str, secret: str = SECRET) -> str:
    url = urlsplit(f"https://boutique.example/desabonnement?token={make_token(email, secret.encode())}")
    return f"{url.path}?{url.query}"


def test_one_click_post_unsubscribes_at_once(endpoint):
    shop, port = endpoint
    status, _ = request(port, "POST", unsub_path("zoe@example.com"), b"List-Unsubscribe=One-Click",
                        {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200
    assert [r["email_key"] for r in shop.query("SELECT email_key FROM suppressions")] == [
        "zoe@example.com"]


def test_get_shows_a_page_in_the_customers_language_with_a_button(endpoint):
    shop, port = endpoint
    orders(shop, row("E-1", "sam@example.com", "2026-03-02 10:00", locale="en"),
           now="2026-03-02T10:01")
    status, page = request(port, "GET", unsub_path("sam@example.com"))
    assert status == 200
    assert 'lang="en"' in page and "Stop receiving our marketing e-mails at sam@example.com" in page
    assert '<form method="post">' in page and 'value="One-Click"' in page
    status, page = request(port, "GET", unsub_path("zoe@example.com"))  # unknown: shop language
    assert status == 200 and "Me désabonner" in page
    assert shop.query("SELECT * FROM suppressions") == []  # GET changes nothing


def test_bad_tokens_wrong_methods_and_oversized_bodies_change_nothing(endpoint):
    shop, port = endpoint
    shop("status")
    before = shop.dump()
    one_click = b"List-Unsubscribe=One-Click"
    assert request(port, "POST", unsub_path("zoe@example.com", "other"), one_click)[0] == 400
    assert request(port, "GET", unsub_path("zoe@example.com")[:-2] + "xx")[0] == 400
    assert request(port, "POST", "/desabonnement", one_click)[0] == 400
    assert request(port, "POST", unsub_path("zoe@example.com"), b"hello")[0] == 400
    assert request(port, "PUT", unsub_path("zoe@example.com"), one_click)[0] == 405
    assert request(port, "DELETE", unsub_path("zoe@example.com"))[0] == 405
    assert request(port, "POST", unsub_path("zoe@example.com"), b"x" * 5000)[0] == 413
    for length in ("-1", "lots"):
        assert request(port, "POST", unsub_path("zoe@example.com"), None,
                       {"Content-Length": length})[0] == 400
    assert request(port, "GET", "/elsewhere?token=x")[0] == 404
    assert shop.dump() == before
