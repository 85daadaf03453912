"""`send --dry-run` prints each message as it is decided and rendered (a JSON array written
as it goes with --json), so that 10,000 due never sit in memory at once (bench/dryrun.py
measures it); its output stays byte for byte what it was when the whole report was built
first: tests/golden/dry_run/ holds that output, captured before streaming, for a shop whose
run has something of everything (sent, skipped, deferred, failed, waiting for a human)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden" / "dry_run"
NOW = "2026-03-02T09:00"
ORDERS = (
    "order_id,email,status,created_at,total,line_sku,line_name,line_quantity,line_price\n"
    "A-1,ana@example.com,paid,2026-03-02 08:00,10.00,S1,Mug,1,10.00\n"
    "A-2,,paid,2026-03-02 08:05,12.00,S1,Mug,1,12.00\n"
    "A-3,bob@example.com,shipped,2026-03-01 08:10,14.00,S2,Tasse,2,7.00\n"
    "A-4,chloe@example.com,cancelled,2026-03-02 08:15,9.00,S3,Bol,1,9.00\n"
    "A-5,dan@example.com,paid,2026-03-02 08:20,30.00,S1,Mug,3,10.00\n"
)
# a rule whose template breaks on every order: failed messages, exit 1, lines on stderr; due
# after others, so that --quiet first holds lines back, then prints them
BROKEN_RULE = """
  - name: broken-survey
    on: order.placed
    after: 30m
    template: broken_survey
"""
BROKEN_TEMPLATE = ("{% block subject %}Survey {{ order.number | no_such_filter }}{% endblock %}"
                   "<p>hello</p>")
COMMANDS = {
    "text": ("send", "--dry-run", "--now", NOW),
    "json": ("send", "--dry-run", "--json", "--now", NOW),
    "quiet": ("send", "--dry-run", "--quiet", "--now", NOW),
    "quiet-clean": ("send", "--dry-run", "--quiet", "--rule", "order-confirmation", "--now", NOW),
    "limit": ("send", "--dry-run", "--json", "--limit", "1", "--now", NOW),
}


def setup_shop(mf) -> None:
    mf("init", mf.folder / "shop")
    mf.config = mf.folder / "shop" / "rules.yaml"
    mf.config.write_text(mf.config.read_text(encoding="utf-8").replace(
        "\nrules:\n", "\nrules:\n" + BROKEN_RULE, 1), encoding="utf-8")
    (mf.folder / "shop" / "templates" / "broken_survey.html").write_text(BROKEN_TEMPLATE)
    mf("import", mf.write("orders.csv", ORDERS), "--now", "2026-03-02T08:30")


@pytest.fixture
def shop(mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_SECRET", "test")
    setup_shop(mailflow)
    return mailflow


@pytest.mark.parametrize("name", COMMANDS)
def test_the_dry_runs_output_is_byte_identical_to_before_streaming(shop, name):
    result = shop(*COMMANDS[name])
    assert result.stdout == (GOLDEN / f"{name}.stdout").read_text()
    assert result.stderr == (GOLDEN / f"{name}.stderr").read_text()
    assert int(result.exit_code) == int((GOLDEN / f"{name}.exit").read_text())
    if name in ("json", "limit"):  # one document, as emit_json writes it
        document = json.loads(result.stdout)
        assert result.stdout == json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def test_a_dry_run_with_nothing_due_is_still_one_json_document(shop):
    result = shop("send", "--dry-run", "--json", "--now", "2027-01-01T09:00")
    document = result.json()
    assert document["messages"] == [] and document["counts"] == {}
    assert result.stdout == json.dumps(document, ensure_ascii=False, indent=2) + "\n"
