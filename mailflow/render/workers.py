"""Rendering ahead: a big batch is rendered and built in worker processes while the sending
process re-checks, claims, sends and records, one message at a time per connection.

Rendering is most of a message's cost and has no side effect, so it can run ahead on the
other cores. Workers are forked on Linux (they inherit the loaded code and configuration,
and never touch the store: they exit with `os._exit`, so SQLite's connection is never
closed from a child) and get chunks of messages in order, IN_FLIGHT per worker, the next
sent as soon as a result is read. A worker hands its results to a thread that writes them,
so it starts its next chunk while the send process has yet to read the last one (a result
is bigger than the pipe holds): with one chunk each, a worker waited on that write for a
fifth of a loaded machine's run, and the sender then waited on the worker.

Within a chunk each stage runs for all messages before the next (render, links,
inlining, text, bytes): the same code on many messages stays in the CPU's caches, about a
third faster than one message at a time.

A worker renders from the rows the planner holds when the chunk is handed out (read while
planning). The send process re-reads them at the moment of sending; if anything changed, or a
worker failed or took longer than WORKER_TIMEOUT, it renders the message itself.
"""

from __future__ import annotations

import contextlib
import gc
import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mailflow.errors import MailflowError, RenderError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from mailflow.render.compose import Composed, Composer
    from mailflow.rules.engine import Decision, Planner

CHUNK = 50  # messages per worker round trip: ~50 ms of rendering
IN_FLIGHT = 2  # chunks handed to a worker and not read back yet
LOOKAHEAD = 8  # chunks read back or in flight, at most, beyond the one being sent
MIN_BATCH = 2 * CHUNK  # below this, forking costs more than it saves
WORKERS_ENV = "MAILFLOW_RENDER_WORKERS"
# Workers run at the send process's own priority by default. At nice +10 a worker got a tenth
# of a core beside any busy process (the shop's web server, its database) and the sender waited
# for it (460 vs 984 msg/s beside one); at +2, once the sender no longer waited on the server,
# rendering became the critical path beside busy processes: 910 vs 1,045 msg/s at 0 beside two
# (docs/delivery.md, "Why 0"). MAILFLOW_RENDER_NICENESS makes them nicer where the web server
# must win.
WORKER_NICENESS = 0
NICENESS_ENV = "MAILFLOW_RENDER_NICENESS"
WORKER_TIMEOUT = 60.0  # seconds for a chunk (~50 ms normally): then the send process renders

Job = tuple[str, str, "str | None", dict[str, Any]]  # key, rule name, e-mail, rows
# subject, message id, bytes, render error, locale, tracked
Result = tuple["str | None", "str | None", "bytes | None", "str | None", "str | None", bool]


@dataclass
class Prepared:
    """A message rendered ahead: the rows it was rendered from, and its result."""

    rows: dict[str, Any]
    subject: str | None = None
    message_id: str | None = None
    data: bytes | None = None
    error: str | None = None  # a RenderError's message
    locale: str | None = None
    tracked: bool = False

    def built(self) -> Built:
        """(subject, Message-ID, bytes, locale, tracked), or the RenderError it met."""
        if self.error is not None or self.subject is None or self.message_id is None \
                or self.data is None or self.locale is None:
            raise RenderError(self.error or "rendered ahead without a result")
        return self.subject, self.message_id, self.data, self.locale, self.tracked


Built = tuple[str, str, bytes, str, bool]  # subject, Message-ID, bytes, locale, tracked


def worker_count(messages: int, env: dict[str, str] | os._Environ = os.environ) -> int:
    """Workers for a batch: one per usable core, none for a small batch or where processes
    cannot be forked; `MAILFLOW_RENDER_WORKERS` overrides (0: none)."""
    if messages == 0 or not sys.platform.startswith("linux"):  # fork is unsafe on macOS
        return 0
    if env.get(WORKERS_ENV, "").strip():
        try:
            return max(int(env[WORKERS_ENV]), 0)
        except ValueError:
            return 0
    if messages < MIN_BATCH:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(cores or 1, 1)


def worker_niceness(env: dict[str, str] | os._Environ = os.environ) -> int:
    """How much nicer than the send process a worker runs: WORKER_NICENESS, or
    `MAILFLOW_RENDER_NICENESS` (0 to 19; anything else: the default)."""
    text = env.get(NICENESS_ENV, "").strip()
    if text.isdigit() and int(text) <= 19:
        return int(text)
    return WORKER_NICENESS


def render_chunk(composer: Composer, jobs: list[Job], now: datetime) -> list[Result]:
    """(subject, message id, bytes, render error, locale, tracked) for each job, one stage at a time. Any
    exception of one message's rendering is that message's error, never the chunk's."""
    from mailflow.render.templates import render_failure

    composed: list[Composed | RenderError] = []
    for key, rule_name, email, rows in jobs:
        rule = composer.config.rule(rule_name)
        try:
            composed.append(composer.message_from_rows(key, rule, email, rows, now))
        except RenderError as exc:
            composed.append(exc)
        except MailflowError:  # the config's (sender.from, the secret): the send process says it
            raise
        except Exception as exc:
            composed.append(render_failure(exc, f"{rule.template}.html"))
    for stage in ("linked", "html", "text"):
        for number, c in enumerate(composed):
            if isinstance(c, RenderError):
                continue
            try:
                getattr(c.rendered, stage)
            except Exception as exc:
                composed[number] = render_failure(exc, c.rendered.template)
    results: list[Result] = []
    for c in composed:
        try:
            results.append((None, None, None, str(c), None, False) if isinstance(c, RenderError)
                           else (c.subject, c.message_id, c.build(), None, c.locale, c.tracked))
        except RenderError as exc:
            results.append((None, None, None, str(exc), None, False))
    return results


def _serve(conn: Connection, others: list[Connection], composer: Composer, now: datetime,
           inherited: frozenset[int], niceness: int) -> None:
    for fd in inherited:  # the run lock is the send process's: it ends with it
        os.close(fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the send process's to handle
    if niceness:
        os.nice(niceness)
    for other in others:  # so that the send process's death reaches every worker as end of file
        other.close()
    results: queue.SimpleQueue[Any] = queue.SimpleQueue()
    writer = threading.Thread(target=_write_results, args=(conn, results), daemon=True)
    writer.start()
    while True:
        try:
            jobs = conn.recv()
        except (EOFError, OSError):
            break
        try:
            reply: Any = render_chunk(composer, jobs, now)
        except Exception as exc:  # the send process renders these itself
            reply = f"{type(exc).__name__}: {exc}"
        results.put(reply)
    results.put(None)
    writer.join(WORKER_TIMEOUT)
    os._exit(0)


def _write_results(conn: Connection, results: queue.SimpleQueue[Any]) -> None:
    """A worker's results, in order, written while it renders the next chunk; None: no more."""
    while (reply := results.get()) is not None:
        try:
            conn.send(reply)
        except OSError:  # the send process is gone, or done with us
            return


class RenderAhead:
    """`take(d)` gives the decisions of `decisions`, in order, rendered by a worker, or None
    (render it yourself). A context manager: the workers stop at the end.

    The next chunk goes to whichever worker has room (IN_FLIGHT each), not to each in turn:
    beside busy processes one worker may get half the CPU of the other, and in turn the
    faster waited for the slower. Results are read as they come, kept until their turn
    (at most LOOKAHEAD chunks ahead of the one being sent)."""

    def __init__(self, composer: Composer | None, planner: Planner, decisions: list[Decision],
                 now: datetime, workers: int, inherited: frozenset[int] = frozenset(),
                 niceness: int = WORKER_NICENESS) -> None:
        """`composer`: None when nothing is to be sent (and so rendered). `inherited`:
        descriptors a worker closes first thing (the run lock's: delivery.lock.held()).
        `niceness`: added to the send process's by each worker (worker_niceness())."""
        self.composer, self.planner, self.now = composer, planner, now
        self.inherited, self.niceness = inherited, niceness
        self.chunks = [decisions[i:i + CHUNK] for i in range(0, len(decisions), CHUNK)]
        self.workers = min(workers, len(self.chunks))
        self.pipes: list[Connection] = []
        self.processes: list[BaseProcess] = []
        self.sent: dict[int, list[dict[str, Any]]] = {}  # chunk -> the rows it was given
        self.queued: dict[Connection, deque[int]] = {}  # a worker's chunks not read back
        self.done: dict[int, Any] = {}  # chunk -> its reply, read back before its turn
        self.next_chunk = 0  # the next chunk a worker is given
        self.turn = 0  # the next chunk handed out
        self.ready: deque[tuple[Decision, Prepared | None]] = deque()

    def __enter__(self) -> RenderAhead:
        if self.workers:
            self._warm_up()
            import multiprocessing  # ~12 ms: only for a batch that uses workers

            context = multiprocessing.get_context("fork")
            gc.freeze()  # a worker's collector then never walks (and so copies) the inherited heap
            try:
                self._start_workers(context)
            finally:
                gc.unfreeze()
            self._top_up()
        return self

    def _warm_up(self) -> None:
        """One message of each rule rendered here and thrown away before the workers are
        forked: they inherit its compiled templates and loaded modules, where each compiled
        them before its first chunk (four times that chunk's rendering, which the sender
        waited for). A failure here is that message's, met again when it is sent."""
        if self.composer is None:
            return
        firsts: dict[str, Decision] = {}
        for chunk in self.chunks:
            for d in chunk:
                firsts.setdefault(d.rule.name, d)
        for d in firsts.values():
            with contextlib.suppress(Exception):
                render_chunk(self.composer, [(d.key, d.rule.name, d.email,
                                              self.planner.context(d))], self.now)

    def _start_workers(self, context: Any) -> None:
        for _ in range(self.workers):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_serve, args=(theirs, [*self.pipes, ours], self.composer, self.now,
                                   self.inherited, self.niceness),
                daemon=True)
            process.start()
            theirs.close()
            self.pipes.append(ours)
            self.queued[ours] = deque()
            self.processes.append(process)

    def __exit__(self, *exc: object) -> None:
        self._close_pipes()
        for process in self.processes:
            process.join(timeout=2)
            if process.is_alive():
                process.kill()
                process.join()

    def take(self, d: Decision) -> Prepared | None:
        if not self.ready:
            self._next()
        expected, prepared = self.ready.popleft()
        if expected is not d:
            raise RuntimeError(f"rendered ahead out of order: {d.key}, expected {expected.key}")
        return prepared

    def _next(self) -> None:
        number, self.turn = self.turn, self.turn + 1
        if self.pipes:
            self._collect(number)
        rows = self.sent.pop(number, None)
        reply = self.done.pop(number, None)
        chunk = self.chunks[number]
        if rows is None or not isinstance(reply, list):  # no (working) worker: the send process renders
            self.ready.extend((d, None) for d in chunk)
            return
        for d, row, result in zip(chunk, rows, reply, strict=True):
            self.ready.append((d, Prepared(row, *result)))

    def _collect(self, number: int) -> None:
        """Read every result that has come, waiting up to WORKER_TIMEOUT for chunk
        `number`'s, and give each worker that has room its next chunk."""
        from multiprocessing.connection import wait

        self._top_up()
        deadline = time.monotonic() + WORKER_TIMEOUT
        while self.pipes:
            waiting = number in self.sent and number not in self.done
            arrived = set(wait(self.pipes, max(deadline - time.monotonic(), 0) if waiting else 0))
            if not arrived:
                if waiting:  # a worker stuck: the send process renders from here on
                    self._close_pipes()
                return
            for pipe in [p for p in self.pipes if p in arrived]:
                try:
                    reply = pipe.recv()
                except (EOFError, OSError):
                    return self._close_pipes()
                self.done[self.queued[pipe].popleft()] = reply
            self._top_up()

    def _top_up(self) -> None:
        for _ in range(IN_FLIGHT):
            for pipe in self.pipes:
                if len(self.queued[pipe]) < IN_FLIGHT:
                    self._feed(pipe)

    def _feed(self, pipe: Connection) -> None:
        number = self.next_chunk
        if not self.pipes or number >= len(self.chunks) or number >= self.turn + LOOKAHEAD:
            return
        self.planner.prefetch(self.chunks[number])  # a big batch's first rows are long gone
        jobs = [(d.key, d.rule.name, d.email, self.planner.context(d))
                for d in self.chunks[number]]
        try:
            pipe.send(jobs)
        except OSError:
            return self._close_pipes()
        self.sent[number] = [rows for *_, rows in jobs]
        self.queued[pipe].append(number)
        self.next_chunk += 1

    def _close_pipes(self) -> None:
        for pipe in self.pipes:
            pipe.close()
        self.pipes = []
