"""`delivery.connections`: a server slow to answer is sent to over several connections at
once, and every guarantee of one connection still holds (real processes, a real SMTP server
that takes its time after each message)."""

from __future__ import annotations

import json

from delivery_project import NOW, Project
from smtp_server import SinkServer


def with_connections(project: Project, connections: int) -> None:
    text = project.config.read_text(encoding="utf-8")
    project.config.write_text(text.replace("    timeout: 20s\n",
                                           f"    timeout: 20s\n  connections: {connections}\n"),
                              encoding="utf-8")


def test_four_connections_to_a_slow_server_deliver_each_message_once(tmp_path):
    with SinkServer() as sink:
        project = Project(tmp_path, sink.port, 24)
        with_connections(project, 4)
        sink.behaviour.stall_after_data = 0.15  # a slow server: 150 ms before each 250
        before = sink.sessions  # aiosmtpd's own check that it listens is one
        done = project.run("send", "--now", NOW, "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["counts"] == {"sent": 24}
        assert [m["key"] for m in report["messages"]] == sorted(project.emails)  # in due order
        assert sink.sessions - before == 4
        assert sink.most_open_sessions == 4  # side by side, not one after another
        ids = sink.message_ids()
        assert sorted(ids) == sorted(project.keys_by_id)  # each exactly once
        for message in sink.received:
            assert message["X-Envelope-To"] == project.emails[project.keys_by_id[message["Message-ID"]]]
        assert project.statuses() == {"sent": 24}
        assert project.query("SELECT count(*) FROM outbox_attempts") == [(24,)]


def test_a_refusal_on_one_connection_stops_them_all_and_loses_nothing(tmp_path):
    with SinkServer() as sink:
        project = Project(tmp_path, sink.port, 30)
        with_connections(project, 3)
        sink.behaviour.stall_after_data = 0.05
        sink.behaviour.data = "550 5.7.26 unauthenticated mail is prohibited"
        sink.behaviour.times = 1
        done = project.run("send", "--now", NOW, "--json")
        assert done.returncode == 3, done.stderr
        assert "5.7.26" in done.stderr
        statuses = project.statuses()
        assert "sending" not in statuses and "unknown" not in statuses
        assert sum(statuses.values()) <= 30
        assert statuses["sent"] == len(sink.received) < 30  # the others stopped too
        assert not project.query("SELECT * FROM suppressions")
        # the next run (the server fixed) sends the rest, none twice
        again = project.run("send", "--now", NOW, "--json")
        assert again.returncode == 0, again.stderr
        assert project.statuses() == {"sent": 30}
        assert sorted(sink.message_ids()) == sorted(project.keys_by_id)


def test_one_message_due_opens_one_connection(tmp_path):
    with SinkServer() as sink:
        project = Project(tmp_path, sink.port, 1)
        with_connections(project, 4)
        before = sink.sessions
        done = project.run("send", "--now", NOW)
        assert done.returncode == 0, done.stderr
        assert sink.sessions - before == 1 and len(sink.received) == 1
