"""SMTP servers that misbehave on purpose (aiosmtpd on 127.0.0.1), one test per fault of
CONTRACT §8: outbox states, suppressions, exit codes and what the server received."""

from __future__ import annotations

import ssl

import pytest
import trustme
from smtp_server import SinkServer


@pytest.fixture(autouse=True, params=[True, False], ids=["pipelining", "one-command-a-time"])
def pipelining(request, monkeypatch):
    """Each fault with a server that pipelines (the next envelope goes behind each message)
    and with one that does not."""
    monkeypatch.setattr(SinkServer, "offers_pipelining", request.param)

ORDERS = ("order_id,email,first_name,status,created_at,total,line_name,line_quantity,line_price\n"
          "A-1,ana@example.com,Ana,paid,2026-03-02 10:00,10.00,Mug,1,10.00\n"
          "B-1,bob@example.com,Bob,paid,2026-03-02 10:00,12.00,Cup,1,12.00\n")


def project(mailflow, port: int, security: str = "none", extra: str = "") -> None:
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    mailflow.config.write_text(f"""\
shop: {{name: Boutique, url: "https://boutique-test.example", timezone: Europe/Paris, locale: fr}}
sender: {{from: "Boutique <bonjour@boutique-test.example>"}}
delivery:
  transport: smtp
  smtp:
    host: 127.0.0.1
    port: {port}
    security: {security}
    timeout: 2s
{extra}
rules:
  - {{name: confirmation, on: order.placed, template: order_confirmation}}
""")
    assert mailflow("import", mailflow.write("o.csv", ORDERS), "--now", "2026-03-02T10:01"
                    ).exit_code == 0


def states(mailflow) -> dict[str, tuple[str, str | None]]:
    return {r["subject_id"]: (r["status"], r["reason"]) for r in
            mailflow.query("SELECT subject_id, status, reason FROM outbox ORDER BY subject_id")}


def suppressed(mailflow) -> list[str]:
    return [r["email_key"] for r in mailflow.query("SELECT email_key FROM suppressions")]


def send(mailflow, now: str = "2026-03-02T10:05"):
    return mailflow("send", "--now", now, "--json")


def test_421_on_mail_defers_and_the_next_run_sends(mailflow):
    with SinkServer() as server:
        project(mailflow, server.port)
        server.behaviour.mail, server.behaviour.times = "421 4.7.0 too busy, try later", 1
        first = send(mailflow)
        assert first.exit_code == 0
        assert states(mailflow)["A-1"][0] == "deferred"
        assert "421" in states(mailflow)["A-1"][1]
        assert states(mailflow)["B-1"] == ("sent", None)  # reconnected for the next message
        assert len(server.received) == 1
        retry = mailflow.query("SELECT next_attempt_at FROM outbox WHERE subject_id = 'A-1'")
        assert retry[0]["next_attempt_at"] == "2026-03-02T09:10:00Z"  # 5 minutes later
        assert send(mailflow, "2026-03-02T10:06").json()["messages"] == []  # not yet
        assert send(mailflow, "2026-03-02T10:10").exit_code == 0
        assert states(mailflow)["A-1"] == ("sent", None)
        assert sorted(server.message_ids()) == sorted(set(server.message_ids()))
        assert len(server.received) == 2


@pytest.mark.parametrize("reply", ["450 4.2.0 greylisted, come back later",
                                   "451 4.7.1 greylisting in action"])
def test_greylisting_on_rcpt_then_success_on_the_next_run(mailflow, reply):
    with SinkServer() as server:
        project(mailflow, server.port)
        server.behaviour.rcpt = {"ana@example.com": reply}
        server.behaviour.times = 1
        assert send(mailflow).exit_code == 0
        assert states(mailflow)["A-1"][0] == "deferred"
        assert [m["X-Envelope-To"] for m in server.received] == ["bob@example.com"]
        assert send(mailflow, "2026-03-02T10:15").exit_code == 0
        assert states(mailflow)["A-1"] == ("sent", None)
        log = mailflow("log", "--json").json()
        assert next(r for r in log if r["to"] == "ana@example.com")["attempts"] == 2


def test_550_5_1_1_fails_and_suppresses_the_address(mailflow):
    with SinkServer() as server:
        project(mailflow, server.port)
        server.behaviour.rcpt = {"ana@example.com": "550 5.1.1 <ana@example.com>: no such user"}
        result = send(mailflow)
        assert result.exit_code == 1  # a failed message needs a human
        assert states(mailflow)["A-1"][0] == "failed"
        assert "5.1.1" in states(mailflow)["A-1"][1]
        assert suppressed(mailflow) == ["ana@example.com"]
        assert states(mailflow)["B-1"] == ("sent", None)
        # a later order to that address is skipped as suppressed, not sent
        mailflow("import", mailflow.write("o2.csv", ORDERS.replace("A-1", "A-2")
                                          .replace("B-1", "B-2")), "--now", "2026-03-02T10:20")
        later = send(mailflow, "2026-03-02T10:21")
        assert ("ana@example.com", "skipped", "suppressed") in [
            (m["to"], m["status"], m["reason"]) for m in later.json()["messages"]]
        assert later.exit_code == 0  # a hard bounce waits for nobody: suppression handles it


def test_550_5_7_26_stops_the_batch_and_suppresses_nobody(mailflow):
    with SinkServer() as server:
        project(mailflow, server.port)
        server.behaviour.data = "550 5.7.26 unauthenticated mail is prohibited by DMARC policy"
        result = send(mailflow)
        assert result.exit_code == 3
        assert "5.7.26" in result.stderr and "DMARC" in result.stderr
        assert suppressed(mailflow) == []
        assert server.received == []
        status = states(mailflow)
        assert [s for s, _ in status.values()] == ["deferred"]  # the first one, back in the queue
        server.behaviour.data = None
        assert send(mailflow, "2026-03-02T10:06").exit_code == 0
        assert [s for s, _ in states(mailflow).values()] == ["sent", "sent"]


@pytest.mark.parametrize(("where", "reply", "state"), [
    ("rcpt", "452 4.2.2 mailbox full", "deferred"),
    ("data", "552 5.3.4 message too big", "failed"),
])
def test_storage_refusals(mailflow, where, reply, state):
    with SinkServer() as server:
        project(mailflow, server.port)
        if where == "rcpt":
            server.behaviour.rcpt = {"ana@example.com": reply}
        else:
            server.behaviour.data, server.behaviour.times = reply, 1
        result = send(mailflow)
        assert states(mailflow)["A-1"][0] == state
        assert suppressed(mailflow) == []
        assert result.exit_code == (1 if state == "failed" else 0)
        assert len(server.received) == 1


def test_554_after_data_fails_without_suppressing(mailflow):
    with SinkServer() as server:
        project(mailflow, server.port)
        server.behaviour.data, server.behaviour.times = "554 5.6.0 message rejected", 1
        assert send(mailflow).exit_code == 1
        assert states(mailflow)["A-1"][0] == "failed"
        assert suppressed(mailflow) == []
        assert send(mailflow, "2026-03-02T11:00").json()["messages"] == []  # never retried


def test_a_disconnect_after_the_final_dot_is_unknown_and_never_resent(mailflow):
    with SinkServer() as server:
        project(mailflow, server.port)
        server.behaviour.disconnect_after_data, server.behaviour.times = True, 1
        result = send(mailflow)
        assert result.exit_code == 1
        assert states(mailflow)["A-1"][0] == "unknown"
        assert states(mailflow)["B-1"] == ("sent", None)
        assert len(server.dropped) == 1  # the server did get the whole message
        later = send(mailflow, "2026-03-02T12:00")
        assert later.json()["messages"] == []
        assert later.exit_code == 1 and "1 message is unknown (maybe delivered)" in later.stderr
        status = mailflow("status", "--json").json()
        assert status["outbox"]["confirmation"] == {"sent": 1, "unknown": 1}
        key = mailflow.scalar("SELECT key FROM outbox WHERE subject_id = 'A-1'")
        again = mailflow("resend", key, "--now", "2026-03-02T12:00")
        assert again.exit_code == 0, again.stderr
        assert send(mailflow, "2026-03-02T12:01").exit_code == 0
        assert states(mailflow)["A-1"] == ("sent", None)
        ids = server.message_ids()
        assert len(ids) == 2 and len(set(ids)) == 2


def test_421_to_quit_after_250_is_still_sent(mailflow):
    with SinkServer() as server:
        project(mailflow, server.port)
        server.behaviour.quit_reply = "421 4.3.2 shutting down"
        result = send(mailflow)
        assert result.exit_code == 0, result.stderr
        assert [s for s, _ in states(mailflow).values()] == ["sent", "sent"]
        assert len(server.received) == 2


def test_a_server_that_stalls_past_the_timeout_after_the_dot_is_unknown(mailflow):
    with SinkServer() as server:
        project(mailflow, server.port)
        server.behaviour.stall_after_data, server.behaviour.times = 4.0, 1
        result = send(mailflow)
        assert result.exit_code == 1
        assert states(mailflow)["A-1"][0] == "unknown"
        assert "no reply" in states(mailflow)["A-1"][1]


def test_no_starttls_offered_means_no_plaintext_and_no_login(mailflow, monkeypatch):
    monkeypatch.setenv("SMTP_PASS", "secret")
    with SinkServer(users={"shop": "secret"}) as server:  # no TLS context: no STARTTLS
        project(mailflow, server.port, security="starttls",
                extra="    username: shop\n    password_env: SMTP_PASS")
        result = send(mailflow)
        assert result.exit_code == 3
        assert "does not offer STARTTLS" in result.stderr
        assert server.received == []
        assert {s for s, _ in states(mailflow).values()} == {"deferred"}


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def _tls_context(ca) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def test_a_certificate_we_do_not_trust_is_refused(mailflow, ca, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with SinkServer(tls_context=_tls_context(ca)) as server:
        project(mailflow, server.port, security="starttls")
        result = send(mailflow)
        assert result.exit_code == 3
        assert "TLS" in result.stderr and "CERTIFICATE_VERIFY_FAILED" in result.stderr
        assert server.received == []


def test_the_same_certificate_is_accepted_with_a_trust_store_that_has_its_ca(
        mailflow, ca, monkeypatch, tmp_path):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setenv("SMTP_PASS", "secret")
    with SinkServer(tls_context=_tls_context(ca), users={"shop": "secret"}) as server:
        project(mailflow, server.port, security="starttls",
                extra="    username: shop\n    password_env: SMTP_PASS")
        result = send(mailflow)
        assert result.exit_code == 0, result.stderr
        assert len(server.received) == 2


def test_a_wrong_password_stops_the_batch(mailflow, ca, monkeypatch, tmp_path):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setenv("SMTP_PASS", "wrong")
    with SinkServer(tls_context=_tls_context(ca), users={"shop": "secret"}) as server:
        project(mailflow, server.port, security="starttls",
                extra="    username: shop\n    password_env: SMTP_PASS")
        result = send(mailflow)
        assert result.exit_code == 3
        assert "refused the login of shop" in result.stderr and "535" in result.stderr
        assert server.received == []
        assert suppressed(mailflow) == []
