"""Pool codes over real SMTP (aiosmtpd on 127.0.0.1): a message the server defers keeps its
code for its retry, one it refuses gives it back, and `mailflow send` SIGKILLed in the middle
of a batch never gives one code to two people nor loses a code on a message that was not
sent (real processes, like tests/test_crash.py).

The seed is fixed and printed in every assertion message; MAILFLOW_CRASH_SEED replays another.
"""

from __future__ import annotations

import email
import os
import random
import re
import time
from collections import Counter

from delivery_project import Project
from smtp_server import SinkServer
from test_crash import wait_until

SEED = int(os.environ.get("MAILFLOW_CRASH_SEED", "20260314"))
NOW = "2026-03-02T12:00:00"
CODE = re.compile(r"PANIER-\d{4}")

RULES = """\
shop:
  name: Boutique Test
  url: https://boutique-test.example
  address: 1 rue Test, 75001 Paris
  timezone: Europe/Paris
  locale: fr
  currency: EUR
sender:
  from: Boutique Test <bonjour@boutique-test.example>
delivery:
  transport: smtp
  smtp:
    host: 127.0.0.1
    port: {port}
    security: none
    timeout: 20s
  marketing_gap: 0
unsubscribe:
  url: https://boutique-test.example/unsub?token={{token}}
  secret_env: MAILFLOW_SECRET
rules:
  - name: abandoned-cart
    on: cart.abandoned
    after: 20m
    template: abandoned_cart
    category: marketing
    offer:
      pool: panier
      text: "5 € offerts"
      warn_below: 0
"""
CART_HEADER = ("cart_id,email,first_name,accepts_marketing,created_at,updated_at,total,"
               "line_sku,line_name,line_quantity,line_price\n")


class OfferProject(Project):
    """`mailflow init`, a cart reminder with a pool of codes, N abandoned carts."""

    def __init__(self, folder, smtp_port: int, carts: int, codes: int,
                 first_name=lambda n: "Lou") -> None:
        self.folder, self.db, self.config = folder, folder / "mailflow.db", folder / "rules.yaml"
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("MAILFLOW_DB", "MAILFLOW_CONFIG")}
        self.env |= {"MAILFLOW_INLINER": "css-inline", "MAILFLOW_SECRET": "test-secret"}
        self.started = 0
        assert self.run("init", str(folder)).returncode == 0
        self.config.write_text(RULES.format(port=smtp_port), encoding="utf-8")
        self.emails = {f"abandoned-cart:cart:C-{n:04d}@2026-03-02T10:{n % 40:02d}:00Z":
                       f"client{n:04d}@example.com" for n in range(carts)}
        rows = [f"C-{n:04d},client{n:04d}@example.com,{first_name(n)},yes,2026-03-02 10:00:00,"
                f"2026-03-02 11:{n % 40:02d}:00,34.00,THE-1,Théière,1,34.00\n" for n in range(carts)]
        (folder / "carts.csv").write_text(CART_HEADER + "".join(rows), encoding="utf-8")
        done = self.run("import", str(folder / "carts.csv"), "--now", NOW)
        assert done.returncode == 0, done.stderr
        (folder / "codes.txt").write_text("".join(f"PANIER-{n:04d}\n" for n in range(codes)))
        done = self.run("codes", "import", str(folder / "codes.txt"), "--pool", "panier")
        assert done.returncode == 0, done.stderr

    def bound(self) -> dict[str, str]:
        """message key -> the code the store gave it"""
        return dict(self.query("SELECT outbox_key, code FROM offer_codes"
                               " WHERE outbox_key IS NOT NULL"))


def received_codes(sink: SinkServer) -> list[tuple[str, str]]:
    """(recipient, code) of every message the server accepted."""
    found = []
    for message in sink.received:
        text = message.get_body(("plain",)).get_content()
        codes = set(CODE.findall(text))
        assert len(codes) == 1, f"one code per e-mail, not {codes}"
        found.append((email.utils.parseaddr(message["To"])[1], codes.pop()))
    return found


def test_a_deferral_keeps_the_code_for_the_retry_and_a_refusal_gives_it_back(tmp_path):
    with SinkServer() as sink:
        project = OfferProject(tmp_path, sink.port, carts=3, codes=5)
        sink.behaviour.rcpt = {"client0000@example.com": "450 4.2.0 mailbox busy",
                               "client0001@example.com": "550 5.1.1 no such user"}
        first = project.run("send", "--now", NOW, "--json")
        assert first.returncode == 1, first.stderr  # the refusal: exit 1
        states = {k: (s, c) for k, s, c in project.query(
            "SELECT key, status, offer_code FROM outbox ORDER BY key")}
        keys = sorted(project.emails)
        assert states[keys[0]] == ("deferred", "PANIER-0000"), "deferred: the code stays with it"
        assert states[keys[1]] == ("failed", None), "refused: nobody saw its code"
        assert states[keys[2]] == ("sent", "PANIER-0002")
        assert project.bound() == {keys[0]: "PANIER-0000", keys[2]: "PANIER-0002"}
        sink.behaviour.rcpt = {}
        retry = project.run("send", "--now", "2026-03-02T12:10:00", "--json")
        assert retry.returncode == 0, retry.stderr  # a refusal is the server's final answer
        assert received_codes(sink) == [("client0002@example.com", "PANIER-0002"),
                                        ("client0000@example.com", "PANIER-0000")]
        free = [c for (c,) in project.query("SELECT code FROM offer_codes WHERE outbox_key IS"
                                            " NULL ORDER BY id")]
        assert free == ["PANIER-0001", "PANIER-0003", "PANIER-0004"], "the refused one's is back"


def test_a_message_whose_template_breaks_after_its_claim_gives_its_code_back(tmp_path):
    with SinkServer() as sink:
        project = OfferProject(tmp_path, sink.port, carts=3, codes=5,
                               first_name=lambda n: "Boom" if n == 1 else "Lou")
        template = tmp_path / "templates" / "abandoned_cart.fr.html"
        template.write_text(template.read_text(encoding="utf-8").replace(
            "{% block body %}", "{% block body %}{% if cart.first_name == 'Boom' %}"
            "{{ cart.nothing_here.at_all }}{% endif %}", 1), encoding="utf-8")
        result = project.run("send", "--now", NOW, "--json")
        assert result.returncode == 1
        failed = project.query("SELECT key, reason, offer_code FROM outbox WHERE status = 'failed'")
        assert len(failed) == 1 and failed[0][1].startswith("render_error") and failed[0][2] is None
        assert failed[0][0] not in project.bound()
        assert sorted(code for _, code in received_codes(sink)) == ["PANIER-0000", "PANIER-0002"]


def test_send_killed_mid_batch_never_gives_a_code_twice_nor_loses_one(tmp_path):
    rng = random.Random(SEED)
    history: list[str] = []
    carts, codes = 300, 260

    def why(message: str) -> str:
        return f"{message} [seed {SEED}; runs: " + "; ".join(history) + "]"

    with SinkServer() as sink:
        project = OfferProject(tmp_path, sink.port, carts=carts, codes=codes)
        modes = ["during"] * 7 + ["awaiting-reply"]
        for number, mode in enumerate(modes, 1):
            delivered = len(sink.received)
            left_sending = set(project.query("SELECT id FROM outbox WHERE status = 'sending'"))
            if mode == "awaiting-reply":
                sink.behaviour.stall_after_data = 60.0
            process = project.start("send", "--now", NOW, "--json")
            if mode == "during":
                more = rng.randint(1, 25)
                wait_until(lambda n=delivered + more: len(sink.received) >= n, process)
                time.sleep(rng.choice([0.0, rng.uniform(0.0, 0.01)]))
            else:
                wait_until(lambda earlier=left_sending: set(project.query(
                    "SELECT id FROM outbox WHERE status = 'sending'")) - earlier, process)
                time.sleep(rng.uniform(0.05, 0.3))
            running = process.poll() is None
            code = process.kill()
            sink.behaviour.stall_after_data = 0.0
            history.append(f"#{number} {mode}: {'SIGKILL' if running else f'exit {code}'},"
                           f" sink {delivered}->{len(sink.received)}")
            assert running, why(f"run {number} ended by itself before its kill: {process.stderr}")
            got = received_codes(sink)
            by_code = Counter(code for _, code in set(got))
            assert not [c for c, n in by_code.items() if n > 1], why("a code went to two people")
        final = project.run("send", "--now", NOW, "--json")
        history.append(f"final: exit {final.returncode}")

        statuses = {key: status for key, status in project.query("SELECT key, status FROM outbox")}
        bound = project.bound()
        got = received_codes(sink)
        holder = {project.emails[key]: code for key, code in bound.items()}
        assert len(statuses) == carts, why(f"every message was decided: {final.stderr}"
                                           f" {final.stdout[-2000:]}")
        counts = Counter(statuses.values())
        assert counts["sent"] + counts["unknown"] == codes, why(f"codes all given: {counts}")
        assert counts["skipped"] == carts - codes, why(f"the rest no_code_left: {counts}")
        assert {r for (r,) in project.query("SELECT reason FROM outbox WHERE status = 'skipped'")
                } == {"no_code_left"}, why("skip reasons")
        assert len(set(bound.values())) == len(bound) == codes, why("one code per message")
        assert {statuses[key] for key in bound} <= {"sent", "unknown"}, why(
            "a code is held only by a message that went, or may have")
        for recipient, code in got:
            assert holder[recipient] == code, why(f"{recipient} got {code}, the store says"
                                                  f" {holder[recipient]}")
        assert project.query("SELECT count(*) FROM offer_codes WHERE outbox_key IS NULL"
                             )[0][0] == 0, why("none left unused while messages were skipped")
        # what a dead run may not have sent keeps its code: `resend` sends that same code
        arrived = {recipient for recipient, _ in got}
        missing = sorted(key for key, status in statuses.items()
                         if status == "unknown" and project.emails[key] not in arrived)
        if missing:
            assert project.run("resend", *missing, "--now", NOW).returncode == 0
            again = project.run("send", "--now", NOW, "--json")
            history.append(f"resend {len(missing)}: exit {again.returncode}")
        got = received_codes(sink)
        assert {recipient: code for recipient, code in got} == holder, why(
            "every code held reached its holder, and nobody else")
        assert len({code for _, code in got}) == codes, why("no code was lost")
        print(why(f"ok: {dict(counts)}, {len(missing)} unknown resent with their code"))


def test_four_unlocked_runs_at_once_give_each_code_to_one_message(tmp_path):
    """Without the run lock, only the claims' transactions keep codes apart: four runs plan
    the same codes for the same messages, and each message still gets one code, once."""
    import sqlite3

    with SinkServer() as sink:
        project = OfferProject(tmp_path, sink.port, carts=200, codes=150)
        gate = sqlite3.connect(project.db, isolation_level=None)
        gate.execute("BEGIN IMMEDIATE")  # every run plans, then waits here to record its run
        processes = [project.start("send", "--no-lock", "--now", NOW, "--json") for _ in range(4)]
        time.sleep(1.0)
        gate.execute("COMMIT")
        gate.close()
        assert [p.wait(timeout=60) for p in processes] == [0, 0, 0, 0], \
            [p.stderr for p in processes]
        got = received_codes(sink)
        assert len(got) == 150 and len({r for r, _ in got}) == 150
        assert len({c for _, c in got}) == 150, "no code went to two people"
        holder = {project.emails[key]: code for key, code in project.bound().items()}
        assert dict(got) == holder
        counts = Counter(s for (s,) in project.query("SELECT status FROM outbox"))
        assert counts == {"sent": 150, "skipped": 50}
