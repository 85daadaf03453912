"""An unedited starter project must not reach customers: `check` names every sample value
`init` wrote (with its line), and a real SMTP send refuses while one is left."""

from __future__ import annotations

import re

from smtp_server import SinkServer

from mailflow.starter import PLACEHOLDERS

# What a shop owner writes instead of each of the starter's sample values.
REAL = {"Boutique Exemple": "La Théière Bleue", "boutique.example": "theiere-bleue.fr",
        "12 rue de la Paix": "3 quai des Brumes", "75002 Paris": "69002 Lyon",
        "FR76 3000 6000 0112 3456 7890 189": "FR14 2004 1010 0505 0001 3M02 606",
        "AGRIFRPP": "PSSTFRPPLYO"}
ORDERS = ("order_id,email,first_name,accepts_marketing,status,created_at,paid_at,total,line_name,"
          "line_quantity,line_price\n")
ORDER = "A-1,ana@example.com,Ana,yes,paid,2026-03-02 10:00,2026-03-02 10:00,10.00,Mug,1,10.00\n"
_LINE = re.compile(r"^rules\.yaml:(\d+): (\S+) (?:is still|still has) the starter's placeholder"
                   r" '([^']+)': .+$")


def starter(mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_SECRET", "s")
    assert mailflow("init", mailflow.folder / "p").exit_code == 0
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    return mailflow.config


def replace(config, *keep: str, smtp_port: int | None = None) -> None:
    text = config.read_text(encoding="utf-8")
    for sample, real in REAL.items():
        if sample not in keep:
            text = text.replace(sample, real)
    if smtp_port is not None:
        text = text.replace("  transport: file\n", "  transport: smtp\n  smtp:\n"
                            f"    host: 127.0.0.1\n    port: {smtp_port}\n    security: none\n")
    config.write_text(text, encoding="utf-8")


def test_check_names_every_placeholder_init_wrote_with_its_line(mailflow, monkeypatch):
    config = starter(mailflow, monkeypatch)
    result = mailflow("check")
    assert result.exit_code == 1
    problems = result.stderr.splitlines()
    assert ("rules.yaml:3: shop.name is still the starter's placeholder 'Boutique Exemple':"
            " write your shop's name") in problems
    written = config.read_text(encoding="utf-8").splitlines()
    flagged = set()
    for problem in problems:
        line, field, sample = _LINE.match(problem).groups()
        assert sample in written[int(line) - 1], problem  # the line where it is written
        flagged.add((field, sample))
    assert {sample for _, sample in flagged} == {p.text for p in PLACEHOLDERS}  # the whole list
    assert {field for field, _ in flagged} == {
        "shop.name", "shop.url", "shop.address", "shop.payment_instructions.fr",
        "shop.payment_instructions.en", "sender.from", "sender.reply_to", "unsubscribe.url"}
    assert len(problems) == len(flagged)  # one line each
    replace(config)
    fixed = mailflow("check")
    assert fixed.exit_code == 0, fixed.stderr
    assert "rules valid, every template renders" in fixed.stdout


def test_a_domain_that_merely_contains_the_starters_is_not_flagged(mailflow, monkeypatch):
    config = starter(mailflow, monkeypatch)
    replace(config)
    text = config.read_text(encoding="utf-8").replace("theiere-bleue.fr", "maboutique.example")
    config.write_text(text.replace("url: https://maboutique.example\n",
                                   "url: https://www.boutique.example\n"), encoding="utf-8")
    result = mailflow("check")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "rules.yaml:4: shop.url still has the starter's placeholder 'boutique.example':"
        " use your shop's own domain"]


def test_a_real_smtp_send_refuses_while_one_placeholder_is_left(mailflow, monkeypatch):
    config = starter(mailflow, monkeypatch)
    with SinkServer() as server:
        replace(config, "AGRIFRPP", smtp_port=server.port)
        mailflow.write("p/exports/orders_export_1.csv", ORDERS + ORDER)
        mailflow("status")  # the store exists: every command creates it
        before = mailflow.dump()
        for command in ("send", "run"):
            result = mailflow(command, "--now", "2026-03-02T10:05")
            assert result.exit_code == 2, result.stderr
            assert "rules.yaml:16: shop.payment_instructions.fr still has the starter's" \
                   " placeholder 'AGRIFRPP': write your own bank's BIC" in result.stderr
            assert "rules.yaml:22: shop.payment_instructions.en" in result.stderr
            assert "nothing is sent over SMTP until you replace them" in result.stderr
            assert mailflow.dump() == before  # run imported nothing either
        assert server.received == []
        dry = mailflow("send", "--dry-run", "--now", "2026-03-02T10:05")  # a rehearsal may
        assert dry.exit_code == 0, dry.stderr
        replace(config)
        sent = mailflow("run", "--now", "2026-03-02T11:05")  # the welcome is due an hour later
        assert sent.exit_code == 0, sent.stderr
        assert [m["X-Envelope-To"] for m in server.received] == ["ana@example.com"] * 2
        assert {m["Message-ID"].split("@")[1] for m in server.received} == {"theiere-bleue.fr>"}


def test_the_file_transport_of_the_demo_still_sends_an_unedited_project(mailflow, monkeypatch):
    config = starter(mailflow, monkeypatch)
    mailflow.write("p/exports/orders_export_1.csv", ORDERS + ORDER)
    result = mailflow("run", "--now", "2026-03-02T11:05")
    assert result.exit_code == 0, result.stderr
    assert len(list((config.parent / "outbox").glob("*.eml"))) == 2  # confirmation, welcome
