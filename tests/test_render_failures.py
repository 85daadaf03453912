"""A template that breaks at render time (a Python error inside an expression, not only an
undefined name) fails the one message it was rendering: the others go, the run says which
file and line, and the next run neither retries it nor stops at it."""

from __future__ import annotations

import pytest

RULES = """\
shop: {name: Boutique Test, url: "https://boutique-test.example", timezone: UTC, locale: fr}
sender: {from: "Boutique Test <bonjour@boutique-test.example>"}
delivery: {transport: file, dir: outbox}
rules:
  - {name: thanks, on: order.placed, template: thanks}
"""
TEMPLATE = """\
{{% extends "_layout.fr.html" %}}
{{% block subject %}}Merci {{{{ order.id }}}}{{% endblock %}}
{{% block body %}}
<p>Bonjour {{{{ order.first_name }}}}</p>
<p>{{% if order.id == "B-1" %}}{{{{ {broken} }}}}{{% else %}}{{{{ order.total }}}}{{% endif %}}</p>
{{% endblock %}}
"""
HEADER = "order_id,email,first_name,status,created_at,total,line_name,line_quantity,line_price\n"
BROKEN = [
    ("order.total * 0.2", "TypeError: can't multiply sequence by non-int of type 'float'"),
    ("100 / (order.lines | length - 1)", "ZeroDivisionError: division by zero"),
    ("order.lines[5].name", "list object has no element 5"),
]


def project(mailflow, broken: str):
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    mailflow.config.write_text(RULES, encoding="utf-8")
    (mailflow.folder / "p" / "templates" / "thanks.fr.html").write_text(
        TEMPLATE.format(broken=broken), encoding="utf-8")


def orders(mailflow, *ids: str, now: str) -> None:
    rows = "".join(f"{i},{i.lower()}@example.com,Ana,paid,2026-03-02 10:00,20.00,Mug,1,20.00\n"
                   for i in ids)
    assert mailflow("import", mailflow.write(f"o-{ids[0]}.csv", HEADER + rows), "--now", now
                    ).exit_code == 0


@pytest.mark.parametrize("workers", ["0", "2"])
@pytest.mark.parametrize(("broken", "what"), BROKEN)
def test_a_template_error_fails_its_message_only_and_the_next_run_goes_on(
        mailflow, monkeypatch, broken, what, workers):
    monkeypatch.setenv("MAILFLOW_RENDER_WORKERS", workers)  # 2: rendered by forked workers
    project(mailflow, broken)
    orders(mailflow, "A-1", "B-1", "C-1", now="2026-03-02T10:01")
    result = mailflow("send", "--now", "2026-03-02T10:05", "--json")
    assert result.exit_code == 1, result.stderr
    assert "internal error" not in result.stderr
    outcome = {m["to"]: (m["status"], m["reason"]) for m in result.json()["messages"]}
    assert outcome["a-1@example.com"] == ("sent", None)
    assert outcome["c-1@example.com"] == ("sent", None)
    status, reason = outcome["b-1@example.com"]
    assert status == "failed"
    assert reason.startswith("render_error: templates/thanks.fr.html:5: ") and what in reason
    assert f"failed: thanks to b-1@example.com: {reason}" in result.stderr
    stored = mailflow.query("SELECT status, reason, attempts FROM outbox WHERE subject_id = 'B-1'")
    assert stored == [{"status": "failed", "reason": reason, "attempts": 1}]
    assert len(list((mailflow.folder / "p" / "outbox").glob("*.eml"))) == 2
    # the next run sends what is new, and leaves the failed one alone
    orders(mailflow, "D-1", now="2026-03-02T10:10")
    again = mailflow("send", "--now", "2026-03-02T10:15", "--json")
    assert [(m["to"], m["status"]) for m in again.json()["messages"]] == [
        ("d-1@example.com", "sent")]
    assert again.exit_code == 1  # until a human resends or dismisses it (test_follow_up.py)
    assert "1 message failed and waits for you" in again.stderr
    assert mailflow.scalar("SELECT attempts FROM outbox WHERE subject_id = 'B-1'") == 1


def test_a_dry_run_shows_the_same_failure(mailflow):
    project(mailflow, BROKEN[0][0])
    orders(mailflow, "A-1", "B-1", now="2026-03-02T10:01")
    dry = mailflow("send", "--dry-run", "--now", "2026-03-02T10:05", "--json")
    assert dry.exit_code == 1
    failed = [m for m in dry.json()["messages"] if m["status"] == "failed"]
    assert [m["reason"].split(": ", 2)[1] for m in failed] == ["templates/thanks.fr.html:5"]


def test_check_names_the_line_that_breaks_only_when_shipping_is_empty(mailflow):
    project(mailflow, "order.total")
    templates = mailflow.folder / "p" / "templates"
    for locale in ("fr", "en"):
        (templates / f"shipping_note.{locale}.html").write_text(
            f'{{% extends "_layout.{locale}.html" %}}\n{{% block subject %}}Note{{% endblock %}}\n'
            "{% block body %}\n<p>{{ order.shipping + ' €' }}</p>\n{% endblock %}\n",
            encoding="utf-8")
    result = mailflow("check")
    assert result.exit_code == 1
    lines = [p for p in result.stderr.splitlines() if "shipping_note" in p]
    assert len(lines) == 2, lines  # one per template and language, not one per sample
    for locale, problem in zip(("en", "fr"), sorted(lines), strict=True):
        assert problem.startswith(f"templates/shipping_note.{locale}.html:4: TypeError: "
                                  "unsupported operand type(s) for +: 'NoneType' and 'str'")
        assert "(with sample data: amounts missing)" in problem
    # the fictional order of `preview` has shipping and tracking: it renders
    assert mailflow("preview", "shipping_note", "--format", "text").exit_code == 0
