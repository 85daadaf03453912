"""The crash test (CONTRACT §8): `mailflow send` killed with SIGKILL at random moments of a
500-message batch, 20 times, then one normal run. No message is delivered twice, none
vanishes, and the ones a dead run may or may not have sent are `unknown`, never resent.

Real processes, a real SMTP server (aiosmtpd, in this process) and a real SQLite file. The
seed is fixed and printed in every assertion message; MAILFLOW_CRASH_SEED replays another.
"""

from __future__ import annotations

import email
import json
import os
import random
import time
from collections import Counter

from delivery_project import NOW, RULE, Project
from smtp_server import SinkServer

SEED = int(os.environ.get("MAILFLOW_CRASH_SEED", "20260302"))
MESSAGES = 500
KILLS = 20
CAP = 25  # deliveries a random kill waits for at most: 18 of them leave the late kill work


def wait_until(condition, process, seconds: float = 30.0) -> None:
    """Poll (2 ms) until condition() holds or the process ended by itself."""
    deadline = time.monotonic() + seconds
    while not condition() and process.poll() is None:
        assert time.monotonic() < deadline, "the mailflow process made no progress"
        time.sleep(0.002)


def test_send_killed_20_times_delivers_each_message_at_most_once_and_loses_none(tmp_path):
    rng = random.Random(SEED)
    history: list[str] = []

    def why(message: str) -> str:
        return f"{message} [seed {SEED}; runs: " + "; ".join(history) + "]"

    with SinkServer() as sink:
        project = Project(tmp_path, sink.port, MESSAGES)
        # Kills 1-18 land at random before the first message or after a random number of
        # deliveries; kill 19 a few messages before the end of the batch (the server answers
        # those slowly, or a fast sender finishes before the kill lands); kill 20 while the
        # client waits for the server's reply to the final dot (the server stalls), so that
        # one message is certainly left `sending` for the final run to recover.
        modes = ["before"] * 5 + ["during"] * 13
        rng.shuffle(modes)
        modes += ["late", "awaiting-reply"]
        assert len(modes) == KILLS
        killed_while_running = 0
        for number, mode in enumerate(modes, 1):
            delivered = len(sink.received)
            unclaimed = MESSAGES - project.query("SELECT count(*) FROM outbox")[0][0]
            left_sending = set(project.query("SELECT id FROM outbox WHERE status = 'sending'"))
            if mode == "awaiting-reply":
                sink.behaviour.stall_after_data = 60.0
            process = project.start("send", "--now", NOW, "--json")
            if mode == "before":  # the process needs ~0.5 s to reach its first message
                delay = rng.uniform(0.0, 0.6)
                what = f"after {delay:.3f}s"
                deadline = time.monotonic() + delay
                wait_until(lambda d=deadline, n=delivered + CAP: time.monotonic() >= d
                           or len(sink.received) >= n, process)
            elif mode in ("during", "late"):
                more = rng.randint(1, CAP) if mode == "during" else unclaimed - rng.randint(2, 6)
                what = f"after {more} more deliveries"
                if mode == "late":  # the last few answered slowly: the kill lands before the end
                    sink.behaviour.stall_after_data = 0.05
                    sink.behaviour.stall_from = delivered + more
                wait_until(lambda n=delivered + more: len(sink.received) >= n, process)
                time.sleep(rng.choice([0.0, rng.uniform(0.0, 0.01)]))  # anywhere in a message
            else:
                # the row this run claims, not the one an earlier kill left `sending`
                what = "while it waits for the reply to the final dot"
                wait_until(lambda earlier=left_sending: set(project.query(
                    "SELECT id FROM outbox WHERE status = 'sending'")) - earlier, process)
                time.sleep(rng.uniform(0.05, 0.3))  # rendered and sent long before: it waits
            running = process.poll() is None
            code = process.kill()
            sink.behaviour.stall_after_data, sink.behaviour.stall_from = 0.0, None
            killed_while_running += running
            statuses = project.statuses()
            history.append(f"#{number} {mode} {what}: {'SIGKILL' if running else f'exit {code}'},"
                           f" sink {delivered}->{len(sink.received)}, outbox {dict(statuses)}")
            assert running, why(f"run {number} ended by itself (exit {code}) before its kill:"
                                f" {process.stderr}")
            ids = sink.message_ids()
            assert len(ids) == len(set(ids)), why(f"a message was delivered twice after kill {number}")
            # one process sends one message at a time: a kill leaves at most one mid-send
            assert statuses["sending"] <= 1, why(f"kill {number} left several messages `sending`")
            assert set(statuses) <= {"sending", "sent", "unknown"}, why("unexpected outbox state")

        # The final, normal run recovers what the last kill left mid-send and sends the rest.
        assert project.statuses()["sending"] == 1, why("the last kill left no message `sending`")
        never_claimed = MESSAGES - project.query("SELECT count(*) FROM outbox")[0][0]
        final = project.run("send", "--now", NOW, "--json")
        history.append(f"final: exit {final.returncode}")
        assert final.returncode == 1, why(f"the run that recovered an interrupted message must"
                                          f" exit 1, not {final.returncode}: {final.stderr}")
        stderr = " ".join(final.stderr.split())
        assert "1 message(s) were being sent when an earlier run died" in stderr, why(stderr)
        report = json.loads(final.stdout)
        assert report["counts"] == ({"sent": never_claimed} if never_claimed else {}), why(
            f"the final run should send exactly the {never_claimed} never-claimed messages:"
            f" {report['counts']}")

        # What the sink received against what the outbox says.
        ids = sink.message_ids()
        outbox = project.outbox()
        statuses = Counter(status for status, _, _ in outbox.values())
        sent = {key for key, (status, _, _) in outbox.items() if status == "sent"}
        unknown = {key for key, (status, _, _) in outbox.items() if status == "unknown"}
        twice = [i for i, n in Counter(ids).items() if n > 1]
        assert not twice, why(f"delivered more than once: {twice}")
        strays = [i for i in ids if i not in project.keys_by_id]
        assert not strays, why(f"messages with a Message-ID of no logical message: {strays}")
        delivered = {project.keys_by_id[i] for i in ids}
        assert len(outbox) == MESSAGES, why(f"{MESSAGES - len(outbox)} messages vanished")
        assert statuses["sent"] + statuses["unknown"] == MESSAGES, why(f"states: {statuses}")
        assert sent <= delivered, why(f"`sent` but never received: {sorted(sent - delivered)}")
        assert delivered <= sent | unknown, why(
            f"received but neither sent nor unknown: {sorted(delivered - sent - unknown)}")
        assert len(ids) == len(sent) + len(delivered & unknown), why("sink and outbox disagree")
        assert 1 <= len(unknown) <= killed_while_running, why(f"{len(unknown)} unknown")
        for key, (status, msg_id, attempts) in outbox.items():
            assert attempts == 1, why(f"{key} was claimed {attempts} times")
            if status == "sent":
                assert project.keys_by_id.get(msg_id) == key, why(f"{key}: Message-ID {msg_id}")
        for message in sink.received:
            key = project.keys_by_id[message["Message-ID"]]
            assert message["X-Envelope-To"] == project.emails[key], why(f"{key}: wrong recipient")
            assert email.utils.parseaddr(message["To"])[1] == project.emails[key], why(key)
        recovered = project.query("SELECT count(*) FROM outbox_attempts WHERE outcome = 'unknown'"
                                  " AND detail = 'the run died while sending'")[0][0]
        assert recovered == len(unknown), why("every unknown was recovered from a dead run")

        # `status` shows the unknowns; a later run never resends them, and exits 1 until a
        # human dismisses them (or resends them).
        status = project.run("status", "--now", NOW, "--json")
        assert status.returncode == 0, why(status.stderr)
        assert json.loads(status.stdout)["outbox"] == {RULE: dict(statuses)}, why(status.stdout)
        assert json.loads(status.stdout)["awaiting_human"]["count"] == len(unknown), why(status.stdout)
        again = project.run("send", "--now", NOW, "--json")
        assert again.returncode == 1, why(f"unknown messages wait for a human: {again.stderr}")
        assert "unknown (maybe delivered)" in again.stderr, why(again.stderr)
        assert json.loads(again.stdout)["messages"] == [], why(again.stdout)
        dismissed = project.run("dismiss", "--rule", RULE, "--now", NOW, "--json")
        assert dismissed.returncode == 0, why(dismissed.stderr)
        assert json.loads(dismissed.stdout)["count"] == len(unknown), why(dismissed.stdout)
        quiet = project.run("send", "--now", NOW, "--json")
        assert quiet.returncode == 0, why(f"dismissed, nothing new: exit 0: {quiet.stderr}")
        assert sink.message_ids() == ids, why("a later run delivered again")
        print(why(f"ok: {dict(statuses)}, {len(delivered & unknown)} unknown arrived"))
