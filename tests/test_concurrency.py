"""Runs side by side (CONTRACT §8): real `mailflow send` processes on one store, delivering to
one real SMTP server. Without the run lock (`--no-lock`), the database's claims alone keep
every message to exactly one sender; with it, a second run steps aside at once."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter

from delivery_project import NOW, RULE, Project
from smtp_server import SinkServer

from mailflow.delivery.lock import run_lock

LOCK_HELD = "another mailflow run holds the lock"


def sent_keys(stdout: str) -> list[str]:
    return [m["key"] for m in json.loads(stdout)["messages"] if m["status"] == "sent"]


def test_four_unlocked_runs_started_together_deliver_every_message_exactly_once(tmp_path):
    with SinkServer() as sink:
        project = Project(tmp_path, sink.port, 300)
        # A starting gate: while the test holds SQLite's write lock, each process starts,
        # plans the same 300 messages and then waits (busy_timeout) to record its run; on
        # COMMIT they all go for the same keys, in the same order, at the same moment.
        gate = sqlite3.connect(project.db, isolation_level=None)
        gate.execute("BEGIN IMMEDIATE")
        processes = [project.start("send", "--no-lock", "--now", NOW, "--json") for _ in range(4)]
        time.sleep(1.0)  # let them load and plan: a late one only makes the race milder
        gate.execute("COMMIT")
        gate.close()
        codes = [p.wait(timeout=60) for p in processes]
        assert codes == [0, 0, 0, 0], [p.stderr for p in processes]

        by_process = [sent_keys(p.stdout) for p in processes]
        shares = [len(keys) for keys in by_process]
        claimed = Counter(key for keys in by_process for key in keys)
        assert not [k for k, n in claimed.items() if n > 1], f"sent by two runs ({shares})"
        assert set(claimed) == set(project.emails), f"not sent by any run ({shares})"

        ids = sink.message_ids()
        twice = [i for i, n in Counter(ids).items() if n > 1]
        assert not twice, f"delivered more than once: {twice} (runs sent {shares})"
        assert len(ids) == 300
        assert {project.keys_by_id[i] for i in ids} == set(project.emails)
        for message in sink.received:
            key = project.keys_by_id[message["Message-ID"]]
            assert message["X-Envelope-To"] == project.emails[key]

        outbox = project.outbox()
        assert len(outbox) == 300
        for key, (status, msg_id, attempts) in outbox.items():
            assert (status, project.keys_by_id.get(msg_id), attempts) == ("sent", key, 1), key
        assert project.query("SELECT outcome, count(*) FROM outbox_attempts GROUP BY 1") == [
            ("sent", 300)]
        assert project.query("SELECT count(*) FROM runs WHERE finished_at IS NOT NULL") == [(4,)]
        print(f"messages sent by each of the 4 runs: {shares}")


def test_a_run_started_while_another_holds_the_lock_exits_0_at_once_and_sends_nothing(tmp_path):
    with SinkServer() as sink:
        project = Project(tmp_path, sink.port, 20)
        with run_lock(project.db) as holding:
            assert holding
            result = project.run("send", "--now", NOW, "--json")
        assert result.returncode == 0, result.stderr
        assert LOCK_HELD in " ".join(result.stderr.split())
        assert str(project.db) in result.stderr
        assert result.stdout == ""
        assert sink.message_ids() == []
        assert project.query("SELECT count(*) FROM outbox") == [(0,)]
        assert project.query("SELECT count(*) FROM runs") == [(0,)]

        # once the lock is free, the next run does the work
        result = project.run("send", "--now", NOW, "--json")
        assert result.returncode == 0, result.stderr
        assert len(sent_keys(result.stdout)) == 20
        assert sorted(sink.message_ids()) == sorted(project.keys_by_id)


def test_two_locked_runs_started_together_one_does_all_the_work(tmp_path):
    with SinkServer() as sink:
        project = Project(tmp_path, sink.port, 100)
        processes = [project.start("send", "--now", NOW, "--json") for _ in range(2)]
        codes = [p.wait(timeout=60) for p in processes]
        assert codes == [0, 0], [p.stderr for p in processes]
        # the lock is held from before the plan until every message is decided: the run that
        # did not get it either stepped aside or came after and found nothing due
        outputs = [sent_keys(p.stdout) if p.stdout else None for p in processes]
        worker = 0 if outputs[0] else 1
        other = processes[1 - worker]
        assert sorted(outputs[worker]) == sorted(project.emails)
        assert outputs[1 - worker] in (None, []), outputs
        if outputs[1 - worker] is None:
            assert LOCK_HELD in " ".join(other.stderr.split())
        ids = sink.message_ids()
        assert len(ids) == len(set(ids)) == 100
        assert Counter(status for status, _, _ in project.outbox().values()) == {"sent": 100}
        status = project.run("status", "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["outbox"] == {RULE: {"sent": 100}}
