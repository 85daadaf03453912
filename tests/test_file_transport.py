"""The `file` transport under kills: a message is an .eml file only once it is whole, no
temporary is ever left visible, and a message a dead run never wrote goes out again instead
of becoming `unknown`. Real processes killed with SIGKILL, a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from delivery_project import NOW, RULES, Project

MESSAGES = 300


def _file_project(folder: Path, orders: int) -> Project:
    project = Project(folder, 1, orders)  # no SMTP server: the config is rewritten below
    smtp = RULES[RULES.index("  transport: smtp"):RULES.index("unsubscribe:")]
    project.config.write_text(RULES.replace(smtp, "  transport: file\n  dir: outbox\n"),
                              encoding="utf-8")
    return project


def _files(folder: Path) -> tuple[list[str], list[str]]:
    """(the .eml files a mail client would open, anything else) in the outbox."""
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    shown = [n for n in names if n.endswith(".eml") and not n.startswith(".")]
    return shown, [n for n in names if n not in shown]


def _hidden_partial(name: str) -> bool:
    """Where the system refuses O_TMPFILE's linkat (some sandboxes), a message is written under
    a hidden name first: a kill may leave that one, never an .eml or an .eml.tmp."""
    return name.startswith(".mailflow-") and name.endswith(".part")


def test_a_send_killed_mid_batch_leaves_no_temporary_and_the_next_run_sends_the_rest_once(
        tmp_path):
    project = _file_project(tmp_path, MESSAGES)
    outbox = tmp_path / "outbox"
    for wanted in (20, 120):
        process = project.start("send", "--now", NOW, "--quiet")
        deadline = time.monotonic() + 60
        while len(_files(outbox)[0]) < wanted and process.poll() is None:
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.001)
        process.kill()
        eml, other = _files(outbox)
        assert all(_hidden_partial(n) for n in other), other
        for name in eml:  # every visible message is whole
            assert (outbox / name).read_bytes().rstrip().endswith(b"--"), name
    done = project.run("send", "--now", NOW, "--json")
    assert done.returncode == 0, done.stderr
    eml, other = _files(outbox)
    assert (len(eml), other) == (MESSAGES, [])
    assert project.statuses() == {"sent": MESSAGES}


def test_a_message_left_sending_is_sent_if_written_and_queued_again_if_not(tmp_path):
    project = _file_project(tmp_path, 3)
    assert project.run("send", "--now", NOW).returncode == 0
    outbox = tmp_path / "outbox"
    eml, _ = _files(outbox)
    (outbox / eml[0]).unlink()  # as if the run died before writing it
    conn = sqlite3.connect(project.db)
    conn.execute("UPDATE outbox SET status = 'sending'")  # all three claimed when it died
    conn.commit()
    conn.close()
    (outbox / "old.eml.tmp").write_bytes(b"half a message")  # what an older mailflow left
    again = project.run("send", "--now", NOW, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["recovered_unknown"] == 0
    assert project.statuses() == {"sent": 3}
    assert _files(outbox) == (sorted(eml), [])
    attempts = dict(project.query("SELECT outcome, count(*) FROM outbox_attempts"
                                  " WHERE outcome IN ('sent', 'requeued') GROUP BY outcome"))
    assert attempts["requeued"] == 1
