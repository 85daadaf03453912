"""A shop project for the delivery-guarantee tests (test_crash, test_concurrency): N due
order confirmations, delivered over SMTP to a `SinkServer`, and `mailflow` run as real
processes (never in-process: they are killed, and run side by side)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from mailflow.render.mime import message_id

NOW = "2026-03-02T12:00:00"  # every run acts at this time: nothing in mailflow waits for the clock
RULE = "order-confirmation"
DOMAIN = "boutique-test.example"

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
unsubscribe:
  url: https://boutique-test.example/unsub?token={{token}}
  secret_env: MAILFLOW_SECRET
rules:
  - name: order-confirmation
    on: order.placed
    template: order_confirmation
"""

ORDER_HEADER = ("order_id,email,first_name,accepts_marketing,status,created_at,paid_at,"
                "total,payment_method,line_sku,line_name,line_quantity,line_price\n")


class Project:
    """`mailflow init` + rules.yaml + N orders placed in the hour before NOW, imported through
    the real CLI in a subprocess."""

    def __init__(self, folder: Path, smtp_port: int, orders: int) -> None:
        self.folder = folder
        self.db = folder / "mailflow.db"
        self.config = folder / "rules.yaml"
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("MAILFLOW_DB", "MAILFLOW_CONFIG")}
        self.env |= {"MAILFLOW_INLINER": "css-inline", "MAILFLOW_SECRET": "test-secret"}
        self.started = 0
        done = self.run("init", str(folder))
        assert done.returncode == 0, done.stderr
        self.config.write_text(RULES.format(port=smtp_port), encoding="utf-8")
        start = datetime(2026, 3, 2, 11, 0)
        rows = []
        self.emails: dict[str, str] = {}  # outbox key -> recipient
        for i in range(orders):
            created = (start + timedelta(seconds=5 * i)).strftime("%Y-%m-%d %H:%M:%S")
            email = f"client{i:04d}@example.com"
            self.emails[f"{RULE}:order:T-{i:04d}"] = email
            rows.append(f"T-{i:04d},{email},Camille,yes,paid,{created},{created},"
                        f"20.00,Carte,MUG,Mug,1,20.00\n")
        export = folder / "orders.csv"
        export.write_text(ORDER_HEADER + "".join(rows), encoding="utf-8")
        done = self.run("import", str(export), "--format", "mailflow", "--now", NOW)
        assert done.returncode == 0, done.stderr
        # the Message-ID every logical message must carry, whichever run sends it
        self.keys_by_id = {message_id(key, DOMAIN): key for key in self.emails}
        assert len(self.keys_by_id) == orders

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "mailflow", "--db", str(self.db), "--config",
                str(self.config), *args]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), cwd=self.folder, env=self.env, text=True,
                              capture_output=True, timeout=timeout)

    def start(self, *args: str) -> Process:
        """A background `mailflow` whose output goes to files (a pipe nobody reads while the
        process runs would block it once full)."""
        self.started += 1
        out = self.folder / f"run{self.started}.out"
        err = self.folder / f"run{self.started}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            popen = subprocess.Popen(self.argv(*args), cwd=self.folder, env=self.env,
                                     stdout=stdout, stderr=stderr)
        return Process(popen, out, err)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        conn = sqlite3.connect(self.db, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def outbox(self) -> dict[str, tuple[str, str | None, int]]:
        """key -> (status, message_id, attempts)"""
        return {key: (status, msg_id, attempts) for key, status, msg_id, attempts in
                self.query("SELECT key, status, message_id, attempts FROM outbox")}

    def statuses(self) -> Counter:
        return Counter(dict(self.query("SELECT status, count(*) FROM outbox GROUP BY status")))


class Process:
    def __init__(self, popen: subprocess.Popen, out: Path, err: Path) -> None:
        self.popen, self.out, self.err = popen, out, err

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def kill(self) -> int:
        """SIGKILL (no clean-up of any kind in mailflow), and reap it: its return code."""
        self.popen.kill()
        return self.popen.wait(timeout=30)

    def wait(self, timeout: float = 60) -> int:
        return self.popen.wait(timeout=timeout)

    @property
    def stdout(self) -> str:
        return self.out.read_text(encoding="utf-8")

    @property
    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8")
