"""A store this user cannot write (a backup, a copy on a read-only mount, another user's file):
the commands that only read still work on it, write nothing (the file's bytes and mtime stay,
no -wal or -shm appears beside it), and the others refuse in one line, exit 2.

Tests may run as root, whom file modes do not stop: the commands then run in a process
without CAP_DAC_OVERRIDE (test_store_faults._bound_by_file_modes), where they bind."""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from test_store_faults import CANONICAL, _bound_by_file_modes, one_line

from mailflow.records import ExitCode

# The real CLI, several commands in one process (one start for all), as the user it runs as.
RUN_COMMANDS = """\
import json, sys
from typer.testing import CliRunner
from mailflow.cli import app
results = []
for args in json.loads(sys.argv[1]):
    r = CliRunner().invoke(app, args, catch_exceptions=False)
    results.append({"exit_code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr})
print(json.dumps(results))
"""
NOW = "2026-03-01T10:02"


def run_unprivileged(mf, *commands: tuple[str, ...]) -> list[dict]:
    preexec = _bound_by_file_modes()
    args = [["--db", str(mf.db), "--config", str(mf.config), *command] for command in commands]
    done = subprocess.run([sys.executable, "-c", RUN_COMMANDS, json.dumps(args)],
                          capture_output=True, text=True, preexec_fn=preexec, cwd=mf.folder,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def project(mailflow, monkeypatch):
    """A project with one order due for its confirmation, and its store closed."""
    mailflow("init", mailflow.folder / "project")
    mailflow.config = mailflow.folder / "project" / "rules.yaml"
    monkeypatch.setenv("MAILFLOW_SECRET", "test")
    imported = mailflow("import", mailflow.write("o.csv", CANONICAL), "--now", NOW)
    assert imported.exit_code in (0, 1), imported.stderr  # 1: the starter's consent warning
    gc.collect()  # the in-process CLI's connection sits in a reference cycle: close it now
    assert not Path(f"{mailflow.db}-wal").exists()
    yield mailflow
    mailflow.folder.chmod(0o755)


def untouched(mf):
    """What proves a command wrote nothing: the file's bytes and mtime, and its folder."""
    return mf.db.read_bytes(), mf.db.stat().st_mtime_ns, sorted(os.listdir(mf.db.parent))


READS = [("status", "--json"), ("log", "--json"), ("report", "--json", "--now", NOW),
         ("send", "--dry-run", "--json", "--now", NOW),
         ("preview", "order-confirmation", "--order", "A-1", "--format", "text")]


@pytest.mark.parametrize("folder_writable, reads", [(False, READS), (True, READS[::3])],
                         ids=["folder-read-only", "file-read-only"])
def test_the_commands_that_only_read_work_on_a_read_only_store_and_write_nothing(
        project, folder_writable, reads):
    writable = [project(*command) for command in reads]
    assert [r.exit_code for r in writable] == [0] * len(reads)
    before = untouched(project)
    project.db.chmod(0o444)
    if not folder_writable:
        project.folder.chmod(0o555)
    read_only = run_unprivileged(project, *reads)
    assert [(r["exit_code"], r["stderr"]) for r in read_only] == [(0, "")] * len(reads)
    # the same answers as from the writable store
    assert [r["stdout"] for r in read_only] == [r.stdout for r in writable]
    assert json.loads(read_only[0]["stdout"])["orders"] == 1
    dry = json.loads(read_only[reads.index(READS[3])]["stdout"])
    assert "would_send" in {m["status"] for m in dry["messages"]}
    assert untouched(project) == before


def test_a_command_that_writes_refuses_a_read_only_store_in_one_line(project):
    before = untouched(project)
    project.db.chmod(0o444)
    project.folder.chmod(0o555)
    more = project.folder / "o.csv"
    send, imported = run_unprivileged(project, ("send", "--now", NOW), ("import", str(more)))
    for result in (send, imported):
        assert result["exit_code"] == ExitCode.USAGE
        line = one_line(result["stderr"])
        assert f"{project.db}: its folder {project.folder} is read-only" in line
        assert "nothing was changed" in line
    assert untouched(project) == before


def test_a_read_only_store_that_needs_migrating_says_so(project):
    conn = sqlite3.connect(project.db)
    newest = conn.execute("SELECT max(name) FROM migrations").fetchone()[0]
    conn.execute("DELETE FROM migrations WHERE name = ?", (newest,))
    conn.commit()
    conn.close()
    before = untouched(project)
    project.db.chmod(0o444)
    (status,) = run_unprivileged(project, ("status",))
    assert status["exit_code"] == ExitCode.USAGE
    line = one_line(status["stderr"])
    assert (f"{project.db}: read-only for this user, and made by an older mailflow: its schema"
            f" needs migrating first ({newest}); run any mailflow command on it once with write"
            " access") in line
    assert untouched(project) == before


HOLD_COMMITTED = """\
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA wal_autocheckpoint = 0")
conn.execute("UPDATE orders SET status = 'shipped' WHERE id = 'A-1'")
print("committed", flush=True)
sys.stdin.read()
"""


def test_a_read_only_store_shows_what_a_writer_at_work_committed(project):
    """While the cron run writes (its -wal beside the file), a read-only reader sees what it
    committed, not only what is checkpointed into the file."""
    writer = subprocess.Popen([sys.executable, "-c", HOLD_COMMITTED, str(project.db)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "committed\n"
        assert Path(f"{project.db}-wal").exists()
        project.db.chmod(0o444)
        project.folder.chmod(0o555)
        (status,) = run_unprivileged(project, ("status", "--json"))
    finally:
        project.folder.chmod(0o755)
        writer.stdin.close()
        writer.wait(timeout=10)
    assert status["exit_code"] == 0, status["stderr"]
    assert json.loads(status["stdout"])["orders_by_status"] == {"shipped": 1}


@pytest.fixture
def folder_restored(mailflow):
    yield mailflow.folder
    mailflow.folder.chmod(0o755)  # for the clean-up


def test_a_read_only_file_of_another_application_or_empty_is_named_so(mailflow,
                                                                     folder_restored):
    foreign = mailflow.folder / "places.sqlite"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")
    conn.commit()
    conn.close()
    empty = mailflow.folder / "empty.db"
    empty.write_bytes(b"")
    for path in (foreign, empty):
        path.chmod(0o444)
    folder_restored.chmod(0o555)
    before = [(p.read_bytes(), p.stat().st_mtime_ns) for p in (foreign, empty)]
    mailflow.db = foreign
    (other,) = run_unprivileged(mailflow, ("status",))
    mailflow.db = empty
    (nothing,) = run_unprivileged(mailflow, ("log",))
    assert (other["exit_code"], nothing["exit_code"]) == (ExitCode.USAGE, ExitCode.USAGE)
    assert (f"{foreign}: an SQLite database of another application (tables moz_places), not"
            " mailflow's") in one_line(other["stderr"])
    assert (f"{empty}: an empty database, and read-only for this user: mailflow cannot create"
            " its store in it") in one_line(nothing["stderr"])
    assert [(p.read_bytes(), p.stat().st_mtime_ns) for p in (foreign, empty)] == before
    assert sorted(os.listdir(mailflow.folder)) == ["empty.db", "places.sqlite", "rules.yaml"]
