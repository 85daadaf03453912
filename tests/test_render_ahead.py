"""Rendering ahead in worker processes (mailflow/render/workers.py): a big batch is rendered by
forked workers while one process sends. Whatever renders a message, the customer gets the
same e-mail; data that changes after planning is what the e-mail says; a worker that dies
costs speed, never a message."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailflow.config import load_config
from mailflow.delivery.connections import ConnectionWorker
from mailflow.delivery.transports import FileTransport
from mailflow.records import Action, eml_name
from mailflow.render.compose import Composer
from mailflow.render.workers import MIN_BATCH, RenderAhead, worker_count, worker_niceness
from mailflow.rules.engine import Planner
from mailflow.store import Store

NOW = "2026-03-02T12:00:00+00:00"
RULES = """\
shop:
  name: Boutique Test
  url: https://boutique.example
  address: 1 rue Test, 75001 Paris
  timezone: Europe/Paris
  locale: fr
  currency: EUR
sender:
  from: Boutique Test <bonjour@boutique.example>
delivery:
  transport: file
  dir: outbox
rules:
  - name: order-confirmation
    on: order.placed
    template: order_confirmation
"""
HEADER = ("order_id,email,first_name,last_name,locale,status,created_at,total,line_sku,line_name,"
          "line_quantity,line_price\n")
NAMES = ("Zoé", "Jean-Luc", "Anaïs", "<b>Eve</b>", "O'Brien", "Łukasz")
BOUNDARY = re.compile(rb"=_mailflow_[0-9a-f]{32}")


def orders_csv(count: int, first_name: str | None = None) -> str:
    rows = []
    for i in range(count):
        name = first_name or NAMES[i % len(NAMES)]
        locale = ("fr", "en", "")[i % 3]
        total = f"{10 + i % 7}.{i % 100:02d}"
        rows.append(f"A{i:04d},client{i}@example.com,{name},Martin,{locale},paid,"
                    f"2026-03-02 11:{i % 60:02d}:00,{total},SKU{i % 5},Mug n°{i % 5},"
                    f"{1 + i % 3},{total}\n")
    return HEADER + "".join(rows)


def project(folder: Path, count: int) -> Path:
    folder.mkdir()
    run(folder, "init", str(folder))
    (folder / "rules.yaml").write_text(RULES, encoding="utf-8")
    (folder / "orders.csv").write_text(orders_csv(count), encoding="utf-8")
    run(folder, "import", "orders.csv", "--format", "mailflow", "--now", NOW)
    return folder


def run(folder: Path, *args: str, workers: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MAILFLOW_DB", "MAILFLOW_CONFIG")}
    env["MAILFLOW_INLINER"] = "css-inline"
    if workers is not None:
        env["MAILFLOW_RENDER_WORKERS"] = workers
    done = subprocess.run([sys.executable, "-m", "mailflow", "--db", "mailflow.db", "--config",
                           "rules.yaml", *args], cwd=folder, env=env, text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def emails(folder: Path) -> dict[str, bytes]:
    return {p.name: BOUNDARY.sub(b"BOUNDARY", p.read_bytes())
            for p in sorted((folder / "outbox").glob("*.eml"))}


def test_messages_rendered_by_workers_are_the_messages_rendered_in_process(tmp_path):
    alone = project(tmp_path / "alone", 130)
    helped = project(tmp_path / "helped", 130)
    run(alone, "send", "--now", NOW, workers="0")
    run(helped, "send", "--now", NOW, workers="2")
    in_process, by_workers = emails(alone), emails(helped)
    assert len(in_process) == 130
    assert by_workers == in_process  # byte for byte, but for the random MIME boundary
    sample = by_workers[eml_name("order-confirmation:order:A0003")].decode()
    assert "&lt;b&gt;Eve&lt;/b&gt;" in sample.replace("=\r\n", "")


@pytest.fixture
def planned(tmp_path):
    folder = project(tmp_path / "shop", 120)
    store = Store.open(folder / "mailflow.db")
    config = load_config(folder / "rules.yaml")
    now = datetime.fromisoformat(NOW)
    planner = Planner(store, config, now)
    sends = planner.plan()
    yield folder, store, config, planner, sends, now
    store.close()


def send_all(store, planner, composer, sends, now, ahead, folder) -> list[dict]:
    sender = ConnectionWorker(store, planner, composer, FileTransport(folder / "outbox"), now,
                    store.start_run("send", now, datetime.now(UTC)))
    entries = [sender.send(d, ahead.take(d)) for d in sends]
    sender.close()
    return entries


def test_an_order_changed_after_planning_is_sent_as_it_is_now(planned):
    folder, store, config, planner, sends, now = planned
    composer = Composer(config, planner)
    with RenderAhead(composer, planner, sends, now, workers=1) as ahead:
        first = ahead.take(sends[0])  # rendered by the worker from what planning read
        assert first is not None and b"Zo=C3=A9" in first.data
        # the shop's next export renames the customer of the first order, mid-run
        (folder / "orders.csv").write_text(orders_csv(1, first_name="Renée"), encoding="utf-8")
        run(folder, "import", "orders.csv", "--format", "mailflow", "--now", NOW)
        sender = ConnectionWorker(store, planner, composer, FileTransport(folder / "outbox"), now,
                        store.start_run("send", now, datetime.now(UTC)))
        sender.send(sends[0], first)
        second = ahead.take(sends[1])
        sender.send(sends[1], second)
        sender.close()
    sent_first = (folder / "outbox" / eml_name(sends[0].key)).read_bytes()
    assert b"Ren=C3=A9e" in sent_first and b"Zo=C3=A9" not in sent_first
    # an unchanged order goes out exactly as the worker built it
    assert (folder / "outbox" / eml_name(sends[1].key)).read_bytes() == second.data
    assert [r["status"] for r in store.rows("SELECT status FROM outbox ORDER BY id")] == \
        ["sent", "sent"]


def test_a_change_another_connection_commits_after_planning_is_what_the_recheck_sees(planned):
    """The rows planning read are kept for the re-check at the moment of sending only while
    no other connection has committed (Planner._forget_if_written): here the shop cancels
    the first order (an import) and another connection renames the second's customer,
    mid-run."""
    folder, _, _, planner, sends, _ = planned
    first, second, third = sends[:3]
    assert planner.decide(third, None).action is Action.SEND  # nothing committed since
    (folder / "orders.csv").write_text(
        HEADER + f"{first.subject_id},{first.email},Zoé,Martin,fr,cancelled,"
        "2026-03-02 11:00:00,10.00,SKU0,Mug n°0,1,10.00\n", encoding="utf-8")
    run(folder, "import", "orders.csv", "--format", "mailflow", "--now", NOW)
    other = sqlite3.connect(folder / "mailflow.db")
    with other:
        other.execute("UPDATE customers SET first_name = 'Anaïs-Marie' WHERE email_key = ?",
                      (second.email_key,))
    other.close()
    assert planner.decide(first, None).action is Action.SKIP
    assert planner.decide(second, None).action is Action.SEND
    assert planner.context(second)["customer"]["first_name"] == "Anaïs-Marie"


def test_a_worker_that_dies_costs_no_message(planned):
    folder, store, config, planner, sends, now = planned
    composer = Composer(config, planner)
    with RenderAhead(composer, planner, sends, now, workers=1) as ahead:
        ahead.processes[0].kill()
        ahead.processes[0].join()
        entries = send_all(store, planner, composer, sends, now, ahead, folder)
    assert [e["status"] for e in entries] == ["sent"] * 120
    assert len(emails(folder)) == 120
    statuses = store.rows("SELECT status, count(*) AS n FROM outbox GROUP BY status")
    assert statuses == [{"status": "sent", "n": 120}]


def test_every_outcome_is_recorded_once_with_its_attempt(planned):
    folder, store, config, planner, sends, now = planned
    composer = Composer(config, planner)
    with RenderAhead(composer, planner, sends, now, workers=2) as ahead:
        send_all(store, planner, composer, sends, now, ahead, folder)
    rows = store.rows("SELECT o.status, o.attempts, count(a.id) AS logged FROM outbox o"
                      " JOIN outbox_attempts a ON a.outbox_id = o.id GROUP BY o.id")
    assert len(rows) == 120
    assert {(r["status"], r["attempts"], r["logged"]) for r in rows} == {("sent", 1, 1)}


def test_workers_run_at_the_send_process_priority_so_a_busy_machine_does_not_starve_them(planned):
    _, _, config, planner, sends, now = planned
    composer = Composer(config, planner)
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    for niceness in (worker_niceness({}), worker_niceness({"MAILFLOW_RENDER_NICENESS": "5"})):
        with RenderAhead(composer, planner, sends, now, workers=1, niceness=niceness) as ahead:
            assert ahead.take(sends[0]) is not None  # the worker has answered: it is set up
            worker = ahead.processes[0].pid
            assert os.getpriority(os.PRIO_PROCESS, worker) == min(ours + niceness, 19)
    assert worker_niceness({}) == 0  # the sender's equal: rendering is the critical path
    assert worker_niceness({"MAILFLOW_RENDER_NICENESS": "10"}) == 10
    assert worker_niceness({"MAILFLOW_RENDER_NICENESS": "-5"}) == 0  # never above the sender


def test_a_cron_tick_with_few_messages_forks_nothing():
    assert worker_count(MIN_BATCH - 1, {}) == 0
    assert worker_count(5, {"MAILFLOW_RENDER_WORKERS": "2"}) == 2
    assert worker_count(10_000, {"MAILFLOW_RENDER_WORKERS": "0"}) == 0
    assert worker_count(10_000, {"MAILFLOW_RENDER_WORKERS": "many"}) == 0
    usable = len(os.sched_getaffinity(0))
    assert worker_count(10_000, {}) == usable


def test_a_killed_run_leaves_no_lock_behind_even_while_its_workers_live(tmp_path):
    from delivery_project import NOW as RUN_NOW
    from delivery_project import Project
    from smtp_server import SinkServer

    from mailflow.delivery.lock import run_lock

    with SinkServer() as sink:
        project = Project(tmp_path, sink.port, 300)
        project.env["MAILFLOW_RENDER_WORKERS"] = "2"
        process = project.start("send", "--now", RUN_NOW)
        sink.wait_for(3, seconds=30)
        workers = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        assert len(workers) == 2
        for pid in workers:  # alive, and stopped: they cannot exit on their own
            os.kill(int(pid), signal.SIGSTOP)
        try:
            process.kill()
            with run_lock(project.db) as mine:
                assert mine, "the dead run's workers still hold the run lock"
        finally:
            for pid in workers:
                os.kill(int(pid), signal.SIGKILL)
                os.kill(int(pid), signal.SIGCONT)


def test_a_stuck_worker_is_given_up_and_the_sender_renders(planned, monkeypatch):
    import mailflow.render.workers

    folder, store, config, planner, sends, now = planned
    monkeypatch.setattr(mailflow.render.workers, "WORKER_TIMEOUT", 0.3)
    composer = Composer(config, planner)
    with RenderAhead(composer, planner, sends, now, workers=1) as ahead:
        os.kill(ahead.processes[0].pid, signal.SIGSTOP)  # alive, and never answering
        try:
            entries = send_all(store, planner, composer, sends, now, ahead, folder)
        finally:
            os.kill(ahead.processes[0].pid, signal.SIGCONT)
    assert [e["status"] for e in entries] == ["sent"] * 120
    assert len(emails(folder)) == 120


def test_over_one_connection_each_customer_gets_their_own_message_once(tmp_path):
    """One connection with render workers: each message's rendering is fetched from the
    workers while the server answers the message before it (delivery/connections.py)."""
    from delivery_project import NOW as RUN_NOW
    from delivery_project import Project
    from smtp_server import SinkServer

    with SinkServer() as sink:
        project = Project(tmp_path, sink.port, 150)
        project.env["MAILFLOW_RENDER_WORKERS"] = "2"
        before = sink.sessions  # aiosmtpd's own check that it listens is one
        done = project.run("send", "--now", RUN_NOW)
        assert done.returncode == 0, done.stderr
        sink.wait_for(150)
        assert sink.sessions - before == 1
        by_recipient: dict[str, list] = {}
        for message in list(sink.received):
            by_recipient.setdefault(message["X-Envelope-To"], []).append(message)
    assert sorted(by_recipient) == sorted(project.emails.values())
    for key, address in project.emails.items():
        [message] = by_recipient[address]  # once, and the right one
        assert message["To"].addresses[0].addr_spec == address
        assert project.keys_by_id[message["Message-ID"]] == key
        assert key.rsplit(":", 1)[1] in message["Subject"]  # its own order's number
    assert project.statuses() == {"sent": 150}
    assert {attempts for _, _, attempts in project.outbox().values()} == {1}
