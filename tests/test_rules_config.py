"""A bad rules.yaml: exit 2, `rules.yaml:LINE: what`, and the nearest valid word."""

from __future__ import annotations

import pytest

BASE = """\
shop:
  timezone: Europe/Paris
sender:
  from: Shop <hi@shop.example>
rules:
  - name: confirmation
    on: order.placed
    template: order_confirmation
"""


@pytest.fixture
def project(mailflow):
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    return mailflow


@pytest.mark.parametrize(("text", "expected"), [
    (BASE + "    aftr: 20m\n", "rules.yaml:9: unknown key 'aftr' in a rule (did you mean 'after'?)"),
    (BASE.replace("order.placed", "order.shiped"),
     "rules.yaml:7: rule confirmation: trigger 'order.shiped' is not valid (did you mean 'order.shipped'?)"),
    (BASE + "    after: 20 minutes\n", "rules.yaml:9: rule confirmation: after: bad duration '20 minutes'"),
    (BASE.replace("order_confirmation", "order_confirmaton"),
     "rules.yaml:8: rule confirmation: no template templates/order_confirmaton.html"
     " (did you mean 'order_confirmation'?)"),
    (BASE.replace("shop:", "shopp:"),
     "rules.yaml:1: unknown key 'shopp' in rules.yaml (did you mean 'shop'?)"),
    (BASE + "    category: marketting\n",
     "rules.yaml:9: rule confirmation: category 'marketting' is not valid (did you mean 'marketing'?)"),
    (BASE + "    cap: once a day\n",
     "rules.yaml:9: rule confirmation: cap 'once a day': write it like '1 per 24h'"),
    (BASE + "    skip_if: [order_complete]\n",
     "rules.yaml:9: rule confirmation: unknown condition 'order_complete' (did you mean 'order_completed'?)"),
    (BASE + "    where: order.total >\n", "rules.yaml:9: rule confirmation: where:"),
    (BASE + "    quiet_hours: 9pm-8am\n", "rules.yaml:9: rule confirmation: quiet_hours: write it like"),
    (BASE + "  - name: confirmation\n    on: order.placed\n    template: order_confirmation\n",
     "rules.yaml:9: two rules are named 'confirmation'"),
    (BASE + "delivery:\n  smtp:\n    host: x\n    password: hunter2\n",
     "rules.yaml:12: secrets never go in rules.yaml"),
    (BASE.replace("Europe/Paris", "Europe/Pariss"), "rules.yaml:2: shop.timezone: unknown timezone"),
    (BASE + "delivery:\n  connections: many\n",
     "rules.yaml:10: delivery.connections 'many': a whole number from 1 to 16"),
    (BASE + "delivery:\n  connections: 0\n",
     "rules.yaml:10: delivery.connections 0: a whole number from 1 to 16"),
    (BASE + "delivery:\n  smtp:\n    host: x\n    port: 25a\n",
     "rules.yaml:12: delivery.smtp.port '25a': a whole number from 1 to 65535"),
])
def test_a_bad_rules_file_names_the_line_and_the_nearest_word(project, text, expected):
    project.config.write_text(text)
    for command in (("check",), ("send", "--dry-run")):
        result = project(*command)
        assert result.exit_code == 2
        assert expected in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr


def test_check_finds_nothing_but_the_starters_placeholders_in_the_default_rules(project):
    result = project("check")
    assert result.exit_code == 1  # tests/test_starter.py: once replaced, exit 0
    problems = result.stderr.splitlines()
    assert problems and all("the starter's placeholder" in p for p in problems), problems


def test_send_without_a_rules_file_says_how_to_make_one(mailflow):
    mailflow.config = mailflow.folder / "nowhere.yaml"
    result = mailflow("send")
    assert result.exit_code == 2
    assert "nowhere.yaml: no such file: write one with `mailflow init`" in result.stderr


def test_marketing_rules_need_the_signing_secret_from_the_environment(project, monkeypatch):
    monkeypatch.delenv("MAILFLOW_SECRET", raising=False)
    orders = project.write("o.csv", "order_id,email,status,created_at,line_name\n"
                                    "A-1,ana@example.com,paid,2026-03-01 09:59,Mug\n")
    project("import", orders, "--now", "2026-03-01T10:00")
    result = project("send", "--now", "2026-03-01T10:00")
    assert result.exit_code == 2
    assert "MAILFLOW_SECRET is not set" in result.stderr
    assert project.scalar("SELECT count(*) FROM outbox WHERE status = 'sent'") == 0
    assert not (project.config.parent / "outbox").exists()
