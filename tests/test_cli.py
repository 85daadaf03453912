"""The command line as a script or a person meets it: init, status, errors, --json."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mailflow.store.migrations import MIGRATIONS

CANONICAL = (
    "order_id,email,status,created_at,total,line_sku,line_name,line_quantity,line_price\n"
    "A-1,ana@example.com,paid,2026-03-01 10:00,10.00,S1,Mug,1,10.00\n"
)


def test_init_writes_a_starter_project_that_never_overwrites(mailflow, tmp_path):
    target = tmp_path / "shop"
    result = mailflow("init", target)
    assert result.exit_code == 0
    assert (target / "rules.yaml").read_text().startswith("# mailflow rules")
    assert (target / "templates").is_dir()
    assert (target / "exports").is_dir()
    (target / "rules.yaml").write_text("shop: {name: Mine}\n")
    again = mailflow("init", target)
    assert again.exit_code == 2
    assert "already exists" in again.stderr
    assert (target / "rules.yaml").read_text() == "shop: {name: Mine}\n"


def test_any_command_creates_and_migrates_the_store(mailflow):
    assert mailflow("status").exit_code == 0
    conn = sqlite3.connect(mailflow.db)
    applied = [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY name")]
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert applied == [name for name, _ in MIGRATIONS]
    assert mode == "wal"
    assert mailflow("status").exit_code == 0  # a second open applies nothing twice


def test_status_reports_counts_and_freshness(mailflow):
    mailflow("import", mailflow.write("o.csv", CANONICAL), "--now", "2026-03-01T12:00:00+01:00")
    result = mailflow("status", "--json", "--now", "2026-03-01T12:30:00+01:00")
    summary = result.json()
    assert (summary["orders"], summary["carts"], summary["customers"]) == (1, 0, 1)
    assert summary["newest_import_at"] == "2026-03-01T11:00:00Z"
    assert summary["newest_import_age"] == "30m"
    assert summary["outbox"] == {}
    text = mailflow("status", "--now", "2026-03-01T12:30:00+01:00").stdout
    assert "2026-03-01T11:00:00Z (30m ago)" in text


def test_json_output_is_one_document_and_nothing_else(mailflow):
    path = mailflow.write("o.csv", CANONICAL + "B-2,bob@example.com,paid,never,1,,,,\n")
    result = mailflow("import", path, "--json")
    document = result.json()  # raises if anything else is on stdout
    assert document["files"][0]["rejected"] == [
        {"line": 3, "reason": "created_at: unreadable date 'never'"}]
    assert result.exit_code == 1
    assert f"{path}:3: created_at: unreadable date 'never'" in result.stderr


def test_errors_are_one_line_without_traceback(mailflow):
    result = mailflow("import", mailflow.folder / "missing.csv")
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "missing.csv: no such file" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    bad_format = mailflow("import", mailflow.write("o.csv", CANONICAL), "--format", "magento")
    assert bad_format.exit_code == 2
    assert "unknown --format 'magento'" in bad_format.stderr
    bad_now = mailflow("status", "--now", "tomorrow")
    assert bad_now.exit_code == 2
    assert "--now 'tomorrow' is not a timestamp" in bad_now.stderr


def test_a_missing_file_among_several_imports_nothing(mailflow):
    good = mailflow.write("o.csv", CANONICAL)
    mailflow("status")
    before = mailflow.dump()
    result = mailflow("import", good, mailflow.folder / "typo.csv")
    assert result.exit_code == 2
    assert mailflow.dump() == before


def test_bad_config_names_the_file_and_line(mailflow):
    mailflow.write_config("shop:\n  timezone: Europe/Pariss\n")
    result = mailflow("status")
    assert result.exit_code == 2
    assert "rules.yaml" in result.stderr and "Europe/Pariss" in result.stderr
    mailflow.write_config("shop:\n  name: [unclosed\n")
    result = mailflow("status")
    assert result.exit_code == 2
    assert "rules.yaml:3: not valid YAML" in result.stderr


def test_quiet_prints_nothing_when_all_is_well(mailflow):
    result = mailflow("import", "--quiet", mailflow.write("o.csv", CANONICAL))
    assert result.exit_code == 0
    assert result.stdout == ""


def test_the_console_script_runs_as_a_real_process(tmp_path: Path):
    mailflow = Path(sys.executable).with_name("mailflow")
    result = subprocess.run([mailflow, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "import" in result.stdout and "status" in result.stdout
    result = subprocess.run([mailflow, "--db", tmp_path / "x.db", "import", tmp_path / "nope.csv"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_line_100_of_an_export_is_printed_as_written_never_as_an_emoji(mailflow):
    rows = "".join(f"A-{i},a{i}@example.com,paid,2026-03-01 10:00,10.00,S1,Mug,1,10.00\n"
                   for i in range(98))  # lines 2 to 99
    path = mailflow.write("orders.csv", CANONICAL.splitlines(keepends=True)[0] + rows
                          + "B-1,b@example.com,paid,[bold]never[/bold],1,,,,\n")
    result = mailflow("import", path)
    assert result.exit_code == 1
    assert f"{path}:100: created_at: unreadable date '[bold]never[/bold]'" in result.stderr
    assert "💯" not in result.stderr


def test_line_100_of_rules_yaml_is_printed_as_written(mailflow):
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    filler = "".join(f"# note {i}\n" for i in range(95))
    mailflow.config.write_text("shop:\n  timezone: Europe/Paris\nrules:\n" + filler
                               + "  - name: confirmation\n    aftr: 20m\n")
    result = mailflow("check")
    assert result.exit_code == 2
    assert "rules.yaml:100: unknown key 'aftr' in a rule (did you mean 'after'?)" in result.stderr
    assert "💯" not in result.stderr


def test_a_name_with_markup_and_emoji_codes_is_shown_verbatim(mailflow, monkeypatch):
    monkeypatch.setenv("MAILFLOW_SECRET", "s")
    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    mailflow.config.write_text(
        "shop: {name: Boutique, url: 'https://shop.example', timezone: UTC, locale: fr}\n"
        "sender: {from: 'Boutique <bonjour@shop.example>'}\n"
        "rules:\n  - {name: thanks, on: order.placed, template: order_confirmation,"
        " subject: 'Merci {{ order.first_name }}'}\n")
    name = "[bold]x[/bold] :smile:"
    mailflow("import", mailflow.write("o.csv", "order_id,email,first_name,status,created_at\n"
                                               f"A-1,ana@example.com,{name},paid,2026-03-01 10:00\n"),
             "--now", "2026-03-01T10:01")
    dry = mailflow("send", "--dry-run", "--now", "2026-03-01T10:05")
    assert dry.exit_code == 0, dry.stderr
    assert f"'Merci {name}'" in dry.stdout
    assert mailflow("send", "--now", "2026-03-01T10:05").exit_code == 0
    log = mailflow("log")
    assert f"Merci {name}" in log.stdout and "😄" not in log.stdout


def test_error_text_with_brackets_is_printed_verbatim_on_a_terminal_too(mailflow, tmp_path):
    result = mailflow("send", "--rule", "[x] :100:")
    assert result.exit_code == 2
    assert "no rule named '[x] :100:'" in result.stderr
    mailflow_script = Path(sys.executable).with_name("mailflow")
    colour = subprocess.run([mailflow_script, "--db", tmp_path / "t.db", "import",
                             tmp_path / "[x] :100:.csv"], capture_output=True, text=True,
                            env={"FORCE_COLOR": "1", "PATH": "/usr/bin:/bin"}, check=False)
    assert colour.returncode == 2
    assert "\x1b[" in colour.stderr  # a terminal: the styled prefix
    assert f"{tmp_path / '[x] :100:.csv'}: no such file" in colour.stderr



@pytest.mark.parametrize("command", [
    ("status",), ("log",), ("send", "--dry-run", "--now", "2026-03-01T10:05"), ("report",),
    ("send", "--rule", "nope"),  # one that fails
])
def test_every_command_closes_the_store_when_it_ends(mailflow, monkeypatch, command):
    from mailflow.store import Store

    opened, closed = [], []
    real_open, real_close = Store.open.__func__, Store.close

    def counting_open(cls, *args, **kwargs):
        opened.append(1)
        return real_open(cls, *args, **kwargs)

    def counting_close(self):
        closed.append(1)
        real_close(self)

    mailflow("init", mailflow.folder / "p")
    mailflow.config = mailflow.folder / "p" / "rules.yaml"
    monkeypatch.setattr(Store, "open", classmethod(counting_open))
    monkeypatch.setattr(Store, "close", counting_close)
    mailflow(*command)
    assert opened == [1]
    assert closed == [1]
