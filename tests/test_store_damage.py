"""Damage found in the middle of a command, after the store opened fine: a malformed page of a
table the command reaches late, or bytes changed inside a row where SQLite's checks cannot see
them (its pages carry no checksum). Exit 2 and one line saying the file is damaged, never an
internal error, never a message failed as if its template were wrong; the file untouched."""

from __future__ import annotations

import gc
import sqlite3
from pathlib import Path

import pytest
from test_store_faults import CANONICAL, _damage, one_line

from mailflow.records import ExitCode

NOW = "2026-03-01T10:02"
READS = [("send", "--dry-run", "--now", NOW), ("send", "--dry-run", "--json", "--now", NOW),
         ("preview", "order-confirmation", "--order", "A-1", "--format", "text")]


@pytest.fixture
def project(mailflow, monkeypatch):
    """A project with one order due for its confirmation, its store closed (all in the file)."""
    mailflow("init", mailflow.folder / "project")
    mailflow.config = mailflow.folder / "project" / "rules.yaml"
    monkeypatch.setenv("MAILFLOW_SECRET", "test")
    imported = mailflow("import", mailflow.write("o.csv", CANONICAL), "--now", NOW)
    assert imported.exit_code in (0, 1), imported.stderr  # 1: the starter's consent warning
    gc.collect()  # the in-process CLI's connection sits in a reference cycle: close it now
    assert not Path(f"{mailflow.db}-wal").exists()
    return mailflow


def test_a_damaged_page_met_while_planning_and_rendering_exits_2(project):
    assert project("send", "--dry-run", "--now", NOW).exit_code == 0
    gc.collect()
    conn = sqlite3.connect(project.db)
    page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'order_lines'"
                        ).fetchone()[0]
    conn.close()
    data = _damage(project.db.read_bytes(), page)
    project.db.write_bytes(data)
    # (`status --json` counts the lines through the order_lines_product index, which is whole)
    for command in READS[::2]:
        result = project(*command)
        assert result.exit_code == ExitCode.USAGE, (command, result.stdout, result.stderr)
        line = one_line(result.stderr)
        assert f"{project.db}: the database is damaged (database disk image is malformed)" in line
        assert "restore it from a backup; mailflow never repairs or overwrites it" in line
        assert "render_error" not in result.stdout
    assert project.db.read_bytes() == data


def test_a_text_that_is_not_utf8_inside_a_row_is_damage_not_an_internal_error(project):
    data = project.db.read_bytes()
    assert data.count(b"ana@example.com") >= 2  # the order's row and its index entries
    data = data.replace(b"ana@example.com", b"ana@exam\xffle.com")
    project.db.write_bytes(data)
    for command in READS:
        result = project(*command)
        assert result.exit_code == ExitCode.USAGE, (command, result.stdout, result.stderr)
        line = one_line(result.stderr)
        assert f"{project.db}: the database is damaged (a text that is not UTF-8 in the column" \
            in line
        assert "ana@" not in line  # the damaged text (personal data) is not repeated
    assert project.db.read_bytes() == data
