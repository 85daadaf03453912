"""Sending speed end to end (CONTRACT §10): mailflow against two references, in one run.

Everything runs on loopback against one Postfix `smtp-sink` (accepts and discards) on a free
port of 127.0.0.1, started here and stopped at the end:

  - mailflow: a store with N due order confirmations (imported from a generated canonical
    CSV, not timed), then the whole `mailflow send` process timed: plan, render, inline
    (css-inline), build (in render workers, one per core, as a real run does), send over
    one SMTP connection, record;
  - django-post_office: N pre-built messages of the same size queued in a throwaway Django
    project (SQLite), then only `send_queued_mail`'s work timed (its defaults otherwise);
  - Postfix `smtp-source`: N messages of the same size over one session and one connection.

Targets: mailflow >= 1.8x post_office, >= 40% of smtp-source. Each figure is the median of
`--runs`; the sink's own counter checks that every message really arrived.

    python bench/send.py                       # 10,000 messages, 3 runs
    python bench/send.py --messages 2000 --runs 1
    python bench/send.py --load 2              # beside 2 busy processes (a shop's web server,
                                               # its database), all three alike

`--load N` starts N CPU-bound processes (busy loops at this script's priority) before the
timed runs and stops them at the end: a shop's server is rarely idle while it sends.
`--niceness K` sets MAILFLOW_RENDER_NICENESS for mailflow's render workers (default: theirs).

Needs Postfix's smtp-sink and smtp-source (Debian: `apt-get install postfix`, its daemon
never started), css-inline (`pip install -e '.[test]'`), and pip access to install django and
django-post-office into a venv cached in bench/.cache/ (`--fresh-venv`: a throwaway one).
"""

from __future__ import annotations

import argparse
import compileall
import csv
import json
import os
import pwd
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

import yaml

from mailflow.render.workers import NICENESS_ENV, worker_count, worker_niceness

HERE = Path(__file__).resolve().parent
PACKAGE_DATA = HERE.parent / "mailflow" / "data"
CACHE = HERE / ".cache"
MAILFLOW = shutil.which("mailflow", path=str(Path(sys.executable).parent)) or shutil.which("mailflow")
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
FROM = "bonjour@boutique-bench.example"
SLOW_MESSAGES = 12

PO_SETTINGS = """\
SECRET_KEY = "bench-only"
INSTALLED_APPS = ["django.contrib.contenttypes", "post_office"]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {db!r}}}}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
TEMPLATES = [{{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}}]
EMAIL_BACKEND = "post_office.EmailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = {port}
EMAIL_TIMEOUT = 30
POST_OFFICE = {{
    "BACKENDS": {{"default": "django.core.mail.backends.smtp.EmailBackend"}},
    "BATCH_SIZE": {batch},
}}
"""

# Runs inside the throwaway venv: queue N messages (not timed), then time the sending.
PO_WORKER = """\
import json, sys, time
import django
django.setup()
from django.core.mail.utils import DNS_NAME
from post_office import mail, settings as po_settings
from post_office.models import STATUS, Email, Log

n, body_path, lockfile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
body = json.load(open(body_path, encoding="utf-8"))
Log.objects.all().delete()
Email.objects.all().delete()
kwargs = [dict(sender=body["from"], recipients=[f"client{i}@example.com"], subject=body["subject"],
               message=body["text"], html_message=body["html"]) for i in range(n)]
for start in range(0, n, 2000):
    mail.send_many(kwargs[start:start + 2000])
sample = Email.objects.first().email_message().message().as_bytes()
DNS_NAME.get_fqdn()  # resolved once per process by Django: not part of the sending
started = time.perf_counter()
mail.send_queued_mail_until_done(lockfile)
seconds = time.perf_counter() - started
print(json.dumps({
    "seconds": seconds,
    "sent": Email.objects.filter(status=STATUS.sent).count(),
    "not_sent": Email.objects.exclude(status=STATUS.sent).count(),
    "size": len(sample),
    "batch_size": po_settings.get_batch_size(),
    "threads": po_settings.get_threads_per_process(),
    "log_level": po_settings.get_log_level(),
}))
"""


# post_office cannot be imported before Django is configured: look for it without importing it
CHECK_VENV = "import django, importlib.util, sys; sys.exit(importlib.util.find_spec('post_office') is None)"


class BenchError(Exception):
    pass


@dataclass
class Result:
    seconds: float
    delivered: int
    note: str = ""
    sessions: int | None = None  # SMTP sessions the sink saw, where checked


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postfix_tool(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/lib/postfix/sbin") / name) if p.exists()),
        None)
    if not found:
        raise BenchError(f"{name} not found: install Postfix (Debian: DEBIAN_FRONTEND=noninteractive "
                         "apt-get install -y postfix, 'No configuration'; its daemon is never needed)")
    return found


class Sink:
    """Postfix's smtp-sink on 127.0.0.1, with its running counters (-c) read from a file."""

    def __init__(self, folder: Path, name: str, extra: tuple[str, ...] = (), lifetime: int = 7200):
        self.port = free_port()
        self.log = folder / f"{name}.out"
        command = [postfix_tool("smtp-sink"), "-c", *extra]
        if os.geteuid() == 0:  # smtp-sink refuses to run as root without a user to switch to
            command += ["-u", "nobody" if _user_exists("nobody") else pwd.getpwuid(65534).pw_name]
        command += [f"127.0.0.1:{self.port}", "1000"]
        if shutil.which("timeout"):  # stops by itself even if this script is killed
            command = ["timeout", "-k", "5", str(lifetime), *command]
        self.handle = self.log.open("wb")
        self.process = subprocess.Popen(command, stdout=self.handle, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"smtp-sink exited: {self.log.read_text(errors='replace').strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            raise BenchError(f"smtp-sink did not listen on 127.0.0.1:{self.port} within 10 s")

    def counters(self) -> tuple[int, int]:
        """(sessions ended, messages received) so far: the sink prints `sess=S quit=Q mesg=M`
        at every '.' and every end of session."""
        time.sleep(0.1)
        counts = re.findall(rb"sess=(\d+) quit=\d+ mesg=(\d+)", self.log.read_bytes())
        return (int(counts[-1][0]), int(counts[-1][1])) if counts else (0, 0)

    def messages(self) -> int:
        return self.counters()[1]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.handle.close()


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def run(command: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{Path(command[0]).name} did not finish within {timeout:.0f} s") from exc


def _tail(data: bytes, lines: int = 5) -> str:
    return " | ".join(data.decode(errors="replace").strip().splitlines()[-lines:])


# -- mailflow ---------------------------------------------------------------------------------

class Project:
    """A temporary mailflow project: rules.yaml, the package's templates, a pristine store."""

    def __init__(self, folder: Path, port: int, messages: int, connections: int | None = None):
        self.folder = folder
        folder.mkdir(parents=True)
        shutil.copytree(PACKAGE_DATA / "templates", folder / "templates")
        defaults = yaml.safe_load((PACKAGE_DATA / "rules.yaml").read_text(encoding="utf-8"))
        delivery: dict = {"transport": "smtp",
                          "smtp": {"host": "127.0.0.1", "port": port, "security": "none"}}
        if connections is not None:
            delivery["connections"] = connections
        # the starter's sample shop and domain are refused over SMTP (mailflow/starter.py)
        shop = {**defaults["shop"], "name": "Boutique Bench", "url": "https://boutique-bench.example",
                "address": "1 rue du Banc, 69001 Lyon, France"}
        shop.pop("payment_instructions", None)
        rules = {"shop": shop, "sender": {"from": f"Boutique Bench <{FROM}>"}, "delivery": delivery,
                 "rules": [{"name": "order-confirmation", "on": "order.placed",
                            "template": "order_confirmation"}]}
        self.rules = folder / "rules.yaml"
        self.rules.write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False),
                              encoding="utf-8")
        self.pristine = folder / "pristine.db"
        exports = folder / "orders.csv"
        write_orders(exports, messages)
        done = self.mailflow(self.pristine, "import", str(exports), "--quiet", timeout=600)
        if done.returncode != 0:
            raise BenchError(f"mailflow import failed ({done.returncode}): {_tail(done.stderr)}")
        for suffix in ("-wal", "-shm"):
            if Path(f"{self.pristine}{suffix}").exists():
                raise BenchError(f"{self.pristine.name}{suffix} left after import: cannot copy the store")

    def mailflow(self, db: Path, *arguments: str, timeout: float,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        command = [MAILFLOW, "--db", str(db), "--config", str(self.rules), *arguments,
                   "--now", NOW.isoformat()]
        return run(command, timeout, cwd=self.folder, env=env)

    def sample_message(self) -> bytes:
        done = self.mailflow(self.pristine, "preview", "order-confirmation", "--order", "B0000001",
                             "--format", "eml", timeout=60)
        if done.returncode != 0 or not done.stdout.strip():
            raise BenchError(f"mailflow preview failed ({done.returncode}): {_tail(done.stderr)}")
        return done.stdout

    def fresh_store(self, name: str) -> Path:
        db = self.folder / f"{name}.db"
        shutil.copyfile(self.pristine, db)
        return db

    def outbox_files(self) -> int:
        outbox = self.folder / "outbox"
        return sum(1 for _ in outbox.iterdir()) if outbox.is_dir() else 0


def write_orders(path: Path, count: int) -> None:
    """One paid order per row, placed 5 minutes before NOW: all due for order-confirmation."""
    placed = (NOW - timedelta(minutes=5)).isoformat()
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["order_id", "email", "first_name", "status", "created_at", "total",
                      "line_sku", "line_name", "line_quantity", "line_price"])
        for i in range(1, count + 1):
            out.writerow([f"B{i:07d}", f"client{i}@example.com", ("Zoé", "Jean-Luc", "Anaïs")[i % 3],
                          "paid", placed, "59.80", "MUG-01", "Mug émaillé bleu", 2, "29.90"])


def time_mailflow(project: Project, sink: Sink, name: str, expected: int) -> Result:
    db = project.fresh_store(name)
    shutil.rmtree(project.folder / "outbox", ignore_errors=True)
    env = os.environ | {"MAILFLOW_INLINER": "css-inline"}
    sessions, before = sink.counters()
    started = time.perf_counter()
    done = project.mailflow(db, "send", "--quiet", timeout=max(300.0, expected / 20), env=env)
    seconds = time.perf_counter() - started
    sessions_after, after = sink.counters()
    delivered, sessions = after - before, sessions_after - sessions
    note = ""
    if done.returncode != 0:
        note = f"mailflow send exited {done.returncode}: {_tail(done.stderr)}"
    elif delivered != expected:
        files = project.outbox_files()
        note = f"the sink received {delivered:,} of {expected:,} messages"
        if files:
            note += (f"; `delivery.transport: smtp` wrote {files:,} .eml files into outbox/ instead"
                     " (the SMTP transport is not wired in yet)")
    for leftover in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        leftover.unlink(missing_ok=True)
    return Result(seconds, delivered, note, sessions)


# -- django-post_office -----------------------------------------------------------------------

class PostOffice:
    def __init__(self, folder: Path, port: int, sample: bytes, batch: int, fresh_venv: bool):
        self.folder = folder
        folder.mkdir(parents=True)
        self.python = self._venv(folder / "venv" if fresh_venv else CACHE / "post_office-venv")
        (folder / "bench_settings.py").write_text(
            PO_SETTINGS.format(db=str(folder / "post_office.sqlite3"), port=port, batch=batch))
        (folder / "worker.py").write_text(PO_WORKER)
        parsed = BytesParser(policy=policy.default).parsebytes(sample)
        body = {"from": str(parsed["From"]), "subject": str(parsed["Subject"]),
                "text": parsed.get_body(("plain",)).get_content(),
                "html": parsed.get_body(("html",)).get_content()}
        (folder / "body.json").write_text(json.dumps(body), encoding="utf-8")
        self.env = os.environ | {"DJANGO_SETTINGS_MODULE": "bench_settings", "PYTHONPATH": str(folder)}
        done = run([self.python, "-m", "django", "migrate", "--noinput", "-v", "0"], 300,
                   cwd=folder, env=self.env)
        if done.returncode != 0:
            raise BenchError(f"post_office migrate failed: {_tail(done.stderr)}")
        versions = run([self.python, "-c", "import django, importlib.metadata as m; "
                        "print(django.get_version(), m.version('django-post-office'))"], 60)
        self.versions = versions.stdout.decode().split()

    @staticmethod
    def _venv(venv: Path) -> str:
        python = venv / "bin" / "python"
        if python.exists() and run([str(python), "-c", CHECK_VENV], 60).returncode == 0:
            return str(python)
        shutil.rmtree(venv, ignore_errors=True)
        venv.parent.mkdir(parents=True, exist_ok=True)
        print(f"creating a venv with django and django-post-office in {venv} ...", file=sys.stderr)
        for command in ([sys.executable, "-m", "venv", str(venv)],
                        [str(python), "-m", "pip", "install", "-q", "django", "django-post-office"]):
            done = run(command, 900)
            if done.returncode != 0:
                raise BenchError(f"{' '.join(command[:4])} failed: {_tail(done.stderr)}")
        return str(python)

    def time(self, sink: Sink, expected: int, run_no: int) -> tuple[Result, dict]:
        before = sink.messages()
        done = run([self.python, "worker.py", str(expected), "body.json",
                    str(self.folder / f"lock-{run_no}")], max(600.0, expected / 10),
                   cwd=self.folder, env=self.env)
        if done.returncode != 0:
            raise BenchError(f"post_office worker failed: {_tail(done.stderr)}")
        info = json.loads(done.stdout.decode().strip().splitlines()[-1])
        delivered = sink.messages() - before
        note = "" if delivered == expected == info["sent"] else (
            f"the sink received {delivered:,}, post_office marked {info['sent']:,} sent of {expected:,}")
        return Result(info["seconds"], delivered, note), info


# -- smtp-source ------------------------------------------------------------------------------

def time_smtp_source(sink: Sink, expected: int, size: int) -> Result:
    command = [postfix_tool("smtp-source"), "-s", "1", "-d", "-m", str(expected), "-l", str(size),
               "-M", "bench.example", "-f", FROM, "-t", "client@example.com", f"127.0.0.1:{sink.port}"]
    before = sink.messages()
    started = time.perf_counter()
    done = run(command, max(300.0, expected / 50))
    seconds = time.perf_counter() - started
    delivered = sink.messages() - before
    note = ""
    if done.returncode != 0:
        note = f"smtp-source exited {done.returncode}: {_tail(done.stderr)}"
    elif delivered != expected:
        note = f"the sink received {delivered:,} of {expected:,}"
    return Result(seconds, delivered, note)


# -- load -------------------------------------------------------------------------------------

def _busy() -> None:
    count = 0
    while True:
        count += 1


class Load:
    """N CPU-bound processes beside the run, at this script's priority, until stop()."""

    def __init__(self, processes: int):
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self.processes = [context.Process(target=_busy, daemon=True) for _ in range(processes)]
        for process in self.processes:
            process.start()

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.join(5)
        self.processes = []


# -- the run ----------------------------------------------------------------------------------

def slow_server(work: Path) -> None:
    """mailflow against `smtp-sink -w 1` (1 s before answering DATA), 1 and 4 connections."""
    print(f"\nslow server (smtp-sink -w 1: 1 s before each DATA reply), {SLOW_MESSAGES} messages:")
    sink = Sink(work, "slow-sink", ("-w", "1"), lifetime=600)
    try:
        seconds = {}
        for connections in (1, 4):
            project = Project(work / f"slow-{connections}", sink.port, SLOW_MESSAGES, connections)
            result = time_mailflow(project, sink, "slow", SLOW_MESSAGES)
            if result.note:
                print(f"  delivery.connections: {connections}: not measured: {result.note}")
                return
            seconds[connections] = result.seconds
            print(f"  delivery.connections: {connections}  {result.seconds:6.1f} s"
                  f"  {SLOW_MESSAGES / result.seconds:6.2f} messages/s")
        if seconds[4] > 0.6 * seconds[1]:
            print("  delivery.connections is accepted by the config but the transport does not use"
                  " it: 4 connections took as long as 1")
    finally:
        sink.stop()


def _load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="messages per run (10,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each; the median is kept (3)")
    parser.add_argument("--batch-size", type=int, default=1000, help="post_office BATCH_SIZE (1000)")
    parser.add_argument("--fresh-venv", action="store_true",
                        help="install django-post-office into a throwaway venv, not bench/.cache/")
    parser.add_argument("--no-slow", action="store_true", help="skip the slow-server comparison")
    parser.add_argument("--load", type=int, default=0,
                        help="CPU-bound processes running beside every timed run (0)")
    parser.add_argument("--niceness", type=int, default=None,
                        help="MAILFLOW_RENDER_NICENESS for mailflow's render workers")
    args = parser.parse_args()
    if args.messages < 1 or args.runs < 1 or args.load < 0:
        parser.error("--messages and --runs must be at least 1, --load at least 0")
    if args.niceness is not None:
        os.environ[NICENESS_ENV] = str(args.niceness)
    if MAILFLOW is None:
        raise BenchError(f"no `mailflow` command next to {sys.executable}: pip install -e '.[test]'")
    try:
        import css_inline  # noqa: F401
    except ImportError as exc:
        raise BenchError("css-inline is not installed: pip install -e '.[test]'") from exc
    postfix_tool("smtp-source")
    # as `pip install` leaves it: an editable install under PYTHONDONTWRITEBYTECODE would
    # compile every module of each timed `mailflow send` (post_office's venv has its .pyc)
    compileall.compile_dir(str(HERE.parent / "mailflow"), quiet=1)
    n = args.messages
    work = Path(tempfile.mkdtemp(prefix="mailflow-bench-send-"))
    sink = None
    load = None
    mailflow_ok = True
    try:
        sink = Sink(work, "sink")
        print(f"smtp-sink on 127.0.0.1:{sink.port}; building a store of {n:,} due order confirmations ...",
              file=sys.stderr)
        project = Project(work / "mailflow", sink.port, n)
        sample = project.sample_message()
        post_office = PostOffice(work / "post_office", sink.port, sample, args.batch_size,
                                 args.fresh_venv)
        results: dict[str, list[Result]] = {"mailflow": [], "post_office": [], "smtp-source": []}
        po_info: dict = {}
        background = _load_average()  # the other work on this machine, before ours
        load = Load(args.load)
        for k in range(args.runs):
            print(f"run {k + 1} of {args.runs} ...", file=sys.stderr)
            if mailflow_ok:
                result = time_mailflow(project, sink, f"run-{k}", n)
                results["mailflow"].append(result)
                if result.note:
                    mailflow_ok = False
            result, po_info = post_office.time(sink, n, k)
            results["post_office"].append(result)
            results["smtp-source"].append(time_smtp_source(sink, n, len(sample)))
        load.stop()

        cores = os.cpu_count()
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
        print(f"\nsending {n:,} order confirmations to Postfix smtp-sink on loopback, median of"
              f" {args.runs} run(s); {cores} cores ({usable} usable); beside {args.load} busy"
              f" process(es) (--load {args.load}); load average before: {background}")
        print(f"message size: mailflow {len(sample):,} bytes (text + HTML);"
              f" post_office {po_info.get('size', 0):,} bytes (same text and HTML, built by Django);"
              f" smtp-source -l {len(sample):,}")
        rates: dict[str, float] = {}
        labels = {
            "mailflow": (f"mailflow send (process, css-inline, 1 connection,"
                         f" {worker_count(n)} render workers at nice +{worker_niceness()})"),
            "post_office": (f"django-post_office {'/'.join(post_office.versions)} send_queued_mail"
                            f" (batch {po_info.get('batch_size')}, {po_info.get('threads')} threads,"
                            f" log level {po_info.get('log_level')})"),
            "smtp-source": "Postfix smtp-source (-s 1 -d: one session, one connection)",
        }
        for name, runs in results.items():
            failed = next((r.note for r in runs if r.note), None)
            if not runs or failed:
                print(f"  {labels[name]}:\n      NOT MEASURED: {failed or 'no run'}")
                continue
            seconds = statistics.median(r.seconds for r in runs)
            rates[name] = n / seconds
            each = ", ".join(f"{n / r.seconds:,.0f}" for r in runs)
            sessions = sorted({r.sessions for r in runs if r.sessions is not None})
            seen = f"; SMTP sessions seen by the sink: {'/'.join(map(str, sessions))}" if sessions else ""
            print(f"  {labels[name]}:\n      {rates[name]:9,.0f} messages/s"
                  f"  ({seconds:.2f} s; runs: {each}/s{seen})")
        if "mailflow" in rates:
            for reference, target, fmt in (("post_office", 1.8, "{:.2f}x"), ("smtp-source", 0.40, "{:.0%}")):
                if reference in rates:
                    ratio = rates["mailflow"] / rates[reference]
                    verdict = "met" if ratio >= target else "MISSED"
                    print(f"mailflow / {reference}: {fmt.format(ratio):>6}   (target >= {fmt.format(target)}:"
                          f" {verdict})")
        else:
            print("mailflow / post_office, mailflow / smtp-source: n/a (mailflow's SMTP sending was not"
                  " measured, see above)")
        sink.stop()
        sink = None
        if args.no_slow:
            print("\nslow server: skipped (--no-slow)")
        elif not mailflow_ok:
            print("\nslow server: skipped (mailflow's SMTP transport does not work yet)")
        else:
            slow_server(work)
    finally:
        if load is not None:
            load.stop()
        if sink is not None:
            sink.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0 if mailflow_ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench/send.py: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
