"""Unsubscribes: honoured at once for marketing, never for order e-mails; signed tokens; the
RFC 8058 one-click endpoint over real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import logging
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
from http_server import served

from mailflow.config import load_config
from mailflow.consent.tokens import make_token
from mailflow.store import Store
from mailflow.web.server import DEFAULT_TIMEOUT
from mailflow.web.unsubscribe import UnsubscribeApp

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


@contextmanager
def serving(shop, timeout: int = DEFAULT_TIMEOUT):
    """The endpoint on a free port of 127.0.0.1, in a thread, as `mailflow serve` runs it."""
    Store.open(shop.db).close()  # serve migrates the store before it listens
    with served(UnsubscribeApp(load_config(shop.config), shop.db), timeout) as port:
        yield port


@pytest.fixture
def endpoint(shop):
    with serving(shop) as port:
        yield shop, port


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


ONE_CLICK = b"List-Unsubscribe=One-Click"


def stored(shop) -> list[str]:
    return [r["email_key"] for r in shop.query("SELECT email_key FROM suppressions ORDER BY 1")]


def test_pages_are_never_cached_and_other_methods_are_told_what_is_allowed(endpoint):
    _, port = endpoint
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", unsub_path("zoe@example.com"))
    page = conn.getresponse()
    page.read()
    assert page.getheader("Cache-Control") == "no-store"
    assert page.getheader("Content-Type") == "text/html; charset=utf-8"
    assert page.getheader("Server") == "mailflow"
    for method in ("HEAD", "OPTIONS", "PATCH"):
        conn.request(method, unsub_path("zoe@example.com"))
        answer = conn.getresponse()
        answer.read()
        assert (answer.status, answer.getheader("Allow")) == (405, "GET, POST")
    conn.close()


def test_a_signed_token_for_something_that_is_not_an_address_is_refused(endpoint):
    shop, port = endpoint
    path = "/desabonnement?token=" + make_token("not an address", SECRET.encode())
    status, page = request(port, "POST", path, ONE_CLICK)
    assert status == 400 and "Ce lien de désabonnement n'est pas valide." in page
    assert stored(shop) == []


def test_a_burst_of_200_one_click_posts_is_stored_whole(endpoint):
    shop, port = endpoint
    emails = [f"burst{i}@example.com" for i in range(200)]
    everyone_ready = threading.Barrier(len(emails))
    answers: dict[str, int | str] = {}

    def click(email: str) -> None:
        everyone_ready.wait()
        try:
            answers[email] = request(port, "POST", unsub_path(email), ONE_CLICK)[0]
        except OSError as exc:
            answers[email] = repr(exc)

    clickers = [threading.Thread(target=click, args=(email,)) for email in emails]
    for thread in clickers:
        thread.start()
    for thread in clickers:
        thread.join(60)
    assert Counter(answers.values()) == {200: 200}
    assert stored(shop) == sorted(emails)


@pytest.fixture
def quick(shop):
    with serving(shop, timeout=1) as port:
        yield shop, port


def connect(port: int, data: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(data)
    return sock


def still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)


def closed_by(sock: socket.socket, deadline: float) -> bool:
    """True once the server closed the socket (EOF or reset), False if still open at deadline."""
    sock.settimeout(max(deadline - time.monotonic(), 0.01))
    try:
        while sock.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_slow_client_is_closed_after_the_timeout_and_others_are_served_meanwhile(quick):
    shop, port = quick
    head = f"POST {unsub_path('slow@example.com')} HTTP/1.1\r\nHost: x\r\nContent-Length: 26\r\n\r\n"
    short_body = connect(port, head.encode() + b"List-Unsub")
    half_request = connect(port, b"POST /desabonnement?tok")
    last_sent = time.monotonic()
    assert request(port, "POST", unsub_path("fast@example.com"), ONE_CLICK)[0] == 200
    assert still_open(short_body) and still_open(half_request)
    assert closed_by(short_body, last_sent + 5)
    assert time.monotonic() - last_sent >= 0.9  # the timeout, not at once
    assert closed_by(half_request, last_sent + 5)
    short_body.close()
    half_request.close()
    assert stored(shop) == ["fast@example.com"]


def test_idle_connections_are_closed_after_the_timeout_and_do_not_shut_others_out(quick):
    shop, port = quick
    idle = [connect(port) for _ in range(100)]
    kept_alive = connect(port, f"GET {unsub_path('zoe@example.com')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert kept_alive.recv(4096).startswith(b"HTTP/1.1 200 OK")
    try:
        assert request(port, "POST", unsub_path("zoe@example.com"), ONE_CLICK)[0] == 200
        assert all(still_open(sock) for sock in [*idle, kept_alive])
        deadline = time.monotonic() + 5
        assert all(closed_by(sock, deadline) for sock in [*idle, kept_alive])
    finally:
        for sock in [*idle, kept_alive]:
            sock.close()
    assert stored(shop) == ["zoe@example.com"]


def test_waitress_messages_are_cut_before_an_address_a_path_or_a_token(endpoint, capfd):
    token = make_token("zoe@example.com", SECRET.encode())
    waitress = logging.getLogger("waitress")
    # as waitress words them (wasyncore.handle_error, channel.service, server.readable)
    waitress.error("uncaptured python exception, closing channel <waitress.channel.HTTPChannel"
                   " connected 127.0.0.1:51234 at 0x7f3a> (builtins.OSError:boom [x|y|1])")
    try:
        raise ValueError(token)
    except ValueError:
        waitress.exception(f"Exception while serving /desabonnement?token={token}")
    waitress.warning("total open connections reached the connection limit, no longer accepting"
                     " new connections")
    waitress.info("Client disconnected while serving /desabonnement")
    err = capfd.readouterr().err
    assert err.splitlines() == [
        "waitress: uncaptured python exception, closing channel …",
        "waitress: Exception while serving … (ValueError)",
        "waitress: total open connections reached the connection limit, no longer accepting new"
        " connections"]


def test_a_store_that_fails_gets_a_retry_page_and_a_line_without_the_visitor(endpoint, capfd):
    shop, port = endpoint
    shop.db.unlink()
    shop.db.mkdir()  # what no SQLite can open
    path = unsub_path("zoe@example.com")
    status, page = request(port, "POST", path, ONE_CLICK)
    assert status == 500 and "réessayez dans un moment" in page
    err = capfd.readouterr().err
    assert "serve: the store failed, the visitor was asked to retry:" in err
    assert "is a folder, not a database file" in err
    for secret in ("zoe@example.com", path.split("=")[1], "127.0.0.1"):
        assert secret not in err


def test_the_real_command_serves_on_the_port_it_prints_and_says_nothing_of_visitors(shop):
    shop("status")
    command = [sys.executable, "-m", "mailflow", "--db", str(shop.db), "--config", str(shop.config),
               "serve", "--port", "0", "--timeout", "1s"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = server.stderr.readline()
        found = re.search(r"^serving https://boutique\.example/desabonnement\?token=\{token\}"
                          r" on http://127\.0\.0\.1:(\d+)$", first.rstrip("\n"))
        assert found, first
        port = int(found.group(1))
        path = unsub_path("zoe@example.com")
        assert request(port, "POST", path, ONE_CLICK)[0] == 200
        assert request(port, "GET", path)[0] == 200
        assert request(port, "POST", unsub_path("zoe@example.com", "other"), ONE_CLICK)[0] == 400
        assert request(port, "POST", path, b"x" * 5000)[0] == 413
        short_body = connect(port, f"POST {path} HTTP/1.1\r\nContent-Length: 99\r\n\r\nList".encode())
        assert closed_by(short_body, time.monotonic() + 5)
        short_body.close()
        reset = connect(port, f"GET {path} HTTP/1.1\r\n".encode())
        reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        reset.close()
        assert request(port, "GET", path)[0] == 200
    finally:
        server.terminate()
        out, err = server.communicate(timeout=10)
    assert (out, err) == ("", "")  # nothing per request: no address, no token
    assert stored(shop) == ["zoe@example.com"]
