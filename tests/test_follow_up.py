"""Failed and unknown messages wait for a human: every run exits 1 and says so until they
are resent (`mailflow resend KEY... | --rule R | --since D`) or dismissed (`mailflow
dismiss`); an SMTP hard bounce, which suppression handles, does not wait."""

from __future__ import annotations

import email
from email import policy

RULES = """\
shop: {name: Boutique Test, url: "https://boutique-test.example", timezone: UTC, locale: fr}
sender: {from: "Boutique Test <bonjour@boutique-test.example>"}
delivery: {transport: file, dir: outbox}
rules:
  - {name: thanks, on: order.placed, template: thanks}
  - {name: big, on: order.placed, template: order_confirmation, where: "order.total > 10"}
"""
TEMPLATE = """\
{{% extends "_layout.fr.html" %}}
{{% block subject %}}Merci {{{{ order.id }}}}{{% endblock %}}
{{% block body %}}
<p>{{{{ {expression} }}}}</p>
{{% endblock %}}
"""
BROKEN = "order.total * 0.2 if order.first_name == 'Broken' else order.total"
FIXED = "order.total"
HEADER = "order_id,email,first_name,status,created_at,total,line_name,line_quantity,line_price\n"


def project(mailflow, rules: str = RULES):
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    mailflow.config.write_text(rules, encoding="utf-8")
    template(mailflow, BROKEN)


def template(mailflow, expression: str) -> None:
    (mailflow.folder / "p" / "templates" / "thanks.fr.html").write_text(
        TEMPLATE.format(expression=expression), encoding="utf-8")


def orders(mailflow, *rows: tuple[str, str, str], now: str) -> None:
    text = "".join(f"{i},{i.lower()}@example.com,{name},paid,{at},20.00,Mug,1,20.00\n"
                   for i, name, at in rows)
    assert mailflow("import", mailflow.write(f"o-{rows[0][0]}.csv", HEADER + text), "--now", now
                    ).exit_code == 0


def send(mailflow, now: str, *extra: str):
    return mailflow("send", "--now", now, "--rule", "thanks", *extra)


def states(mailflow) -> dict[str, str]:
    return {r["subject_id"]: r["status"] for r in mailflow.query(
        "SELECT subject_id, status FROM outbox WHERE rule = 'thanks'")}


def test_failed_messages_keep_every_run_at_exit_1_until_resent(mailflow):
    project(mailflow)
    orders(mailflow, ("A-1", "Ana", "2026-03-01 10:00"), ("B-1", "Broken", "2026-03-01 10:00"),
           now="2026-03-01T10:01")
    first = send(mailflow, "2026-03-01T10:05")
    assert first.exit_code == 1
    assert ("1 message failed and waits for you (thanks: 1 failed): fix the template (or the"
            " where:), `mailflow log --rule thanks` says why; then `mailflow resend --rule"
            " thanks`, or `mailflow dismiss --rule thanks`") in " ".join(first.stderr.split())
    orders(mailflow, ("C-1", "Broken", "2026-03-02 10:00"), ("D-1", "Dan", "2026-03-02 10:00"),
           now="2026-03-02T10:01")
    assert send(mailflow, "2026-03-02T10:05").exit_code == 1
    quiet = send(mailflow, "2026-03-02T11:00", "--quiet", "--json")  # nothing new, still 1
    assert quiet.exit_code == 1 and quiet.json()["messages"] == []
    assert quiet.json()["awaiting_human"] == {"count": 2, "rules": {"thanks": {"failed": 2}}}
    assert quiet.stderr.count("wait for you") == 1  # once per run
    status = mailflow("status", "--json").json()
    assert status["awaiting_human"] == {"count": 2, "rules": {"thanks": {"failed": 2}}}
    assert "awaiting you" in mailflow("status").stdout
    # --since: only what failed in the last 12 hours; --dry-run changes nothing
    before = mailflow.dump()
    dry = mailflow("resend", "--since", "12h", "--dry-run", "--now", "2026-03-02T11:00")
    assert dry.exit_code == 0, dry.stderr
    assert "would be requeued: thanks:order:C-1 (failed: render_error: templates/thanks.fr.html:4:" \
        in dry.stdout
    assert "B-1" not in dry.stdout and "1 message would be requeued (dry run" in dry.stdout
    assert mailflow.dump() == before
    # the template fixed, every failed message of the rule goes again
    template(mailflow, FIXED)
    again = mailflow("resend", "--rule", "thanks", "--now", "2026-03-02T11:05", "--json")
    assert again.exit_code == 0, again.stderr
    assert again.json()["count"] == 2
    assert [m["key"] for m in again.json()["messages"]] == ["thanks:order:B-1", "thanks:order:C-1"]
    sent = send(mailflow, "2026-03-02T11:06", "--json")
    assert sent.exit_code == 0, sent.stderr
    assert sorted(m["to"] for m in sent.json()["messages"]) == ["b-1@example.com",
                                                                "c-1@example.com"]
    assert states(mailflow) == dict.fromkeys(("A-1", "B-1", "C-1", "D-1"), "sent")
    ids = [email.message_from_bytes(p.read_bytes(), policy=policy.default)["Message-ID"]
           for p in (mailflow.folder / "p" / "outbox").glob("thanks_order_B-1*")]
    assert ids == [sent.json()["messages"][0]["message_id"]]
    assert send(mailflow, "2026-03-02T11:07").exit_code == 0


def test_resend_names_each_key_and_refuses_what_it_cannot_resend(mailflow):
    project(mailflow)
    orders(mailflow, ("A-1", "Ana", "2026-03-01 10:00"), ("B-1", "Broken", "2026-03-01 10:00"),
           now="2026-03-01T10:01")
    send(mailflow, "2026-03-01T10:05")
    before = mailflow.dump()
    for args, says in [
            (("thanks:order:B-1", "thanks:order:A-1"), "'thanks:order:A-1': is sent; only unknown"
                                                       " or failed messages can be resent"),
            (("thanks:order:X-9",), "'thanks:order:X-9': no such message"),
            (("thanks:order:B-1", "--rule", "thanks"), "message keys, or --rule/--since: not both"),
            ((), "resend needs message keys"),
            (("--since", "soon"), "--since: bad duration 'soon'")]:
        result = mailflow("resend", *args, "--now", "2026-03-01T11:00")
        assert result.exit_code == 2, (args, result.stderr)
        assert says in result.stderr, result.stderr
    assert mailflow.dump() == before  # all or nothing
    result = mailflow("resend", "thanks:order:B-1", "--now", "2026-03-01T11:00")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "requeued: thanks:order:B-1 (failed: render_error: templates/thanks.fr.html:4: TypeError:"
        " can't multiply sequence by non-int of type 'float')",
        "1 message requeued: the next `mailflow send` delivers them, with their Message-ID"]
    nothing = mailflow("resend", "--rule", "thanks", "--now", "2026-03-01T11:00")
    assert nothing.exit_code == 0 and "nothing to resend" in nothing.stdout


def test_dismissed_messages_stay_in_the_log_and_the_exit_code_returns_to_0(mailflow):
    project(mailflow, RULES.replace("order.total > 10", "order.total.nope > 1"))
    orders(mailflow, ("A-1", "Ana", "2026-03-01 10:00"), ("B-1", "Broken", "2026-03-01 10:00"),
           now="2026-03-01T10:01")
    result = mailflow("send", "--now", "2026-03-01T10:05")
    assert result.exit_code == 1
    assert "3 messages failed and wait for you (big: 2 failed, thanks: 1 failed)" in \
        " ".join(result.stderr.split())  # a where: that cannot be evaluated waits too
    dry = mailflow("dismiss", "--rule", "big", "--dry-run", "--now", "2026-03-01T11:00")
    assert dry.exit_code == 0 and dry.stdout.count("would be dismissed: big:order:") == 2
    assert mailflow("send", "--now", "2026-03-01T11:00").exit_code == 1
    done = mailflow("dismiss", "--rule", "big", "--since", "2h", "--now", "2026-03-01T11:00",
                    "--json")
    assert done.exit_code == 0 and done.json()["count"] == 2
    still = mailflow("run", "--now", "2026-03-01T11:01")  # the cron entry point too
    assert still.exit_code == 1 and "1 message failed and waits for you (thanks: 1 failed)" in \
        " ".join(still.stderr.split())
    assert mailflow("dismiss", "thanks:order:B-1", "--now", "2026-03-01T11:02").exit_code == 0
    clear = mailflow("send", "--now", "2026-03-01T11:03")
    assert (clear.exit_code, clear.stderr) == (0, "")
    assert mailflow("status", "--json").json()["awaiting_human"]["count"] == 0
    log = {r["key"]: r for r in mailflow("log", "--json").json()}
    assert log["thanks:order:B-1"]["status"] == "failed"
    assert log["thanks:order:B-1"]["dismissed_at"] == "2026-03-01T11:02:00Z"
    assert "(dismissed 2026-03-01T11:02:00Z)" in mailflow("log", "--rule", "thanks").stdout
    # a dismissed message can still be resent on purpose, by its key
    template(mailflow, FIXED)
    assert mailflow("resend", "thanks:order:B-1", "--now", "2026-03-01T11:04").exit_code == 0
    assert mailflow("send", "--now", "2026-03-01T11:05").exit_code == 0
    assert states(mailflow)["B-1"] == "sent"
