"""Pipelining across messages (RFC 2920): the next message's envelope leaves right behind a
message's final dot, yet a message's content leaves only once it is claimed and the one
before it recorded, and an envelope opened for a message that is then skipped delivers
nothing. A scripted SMTP server on 127.0.0.1 (raw sockets: aiosmtpd cannot tell what arrived
before it replied) and the real CLI in a subprocess."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from delivery_project import NOW, RULE, Project

DEADLINE = 10.0  # seconds a step may take before the test fails (never a timing assertion)


@dataclass
class Received:
    connection: int
    recipient: str
    content: bytes
    envelope_behind: bool  # the next MAIL arrived before the dot was answered
    previous_recorded: bool | None = None  # the previous message was `sent` when this one's content came
    # the next MAIL was read with the dot, no read later: it left in the same write
    envelope_with_dot: bool = False


@dataclass
class ScriptedServer:
    """Accepts connections one at a time, offers PIPELINING, answers 250/354. Before answering
    a dot it waits for the next MAIL (if `expect_behind` says one comes), and calls `on_dot`."""

    db: str = ""
    expect_behind: Callable[[int], bool] = lambda number: False
    on_dot: Callable[[int], None] = lambda number: None
    received: list[Received] = field(default_factory=list)
    cut_mid_data: list[str] = field(default_factory=list)  # recipients whose DATA was cut
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):  # shutdown wakes the accept() (close would not)
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(DEADLINE)

    def _serve(self) -> None:
        connection = 0
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            connection += 1
            sock.settimeout(DEADLINE)
            try:
                self._session(sock, connection)
            except Exception as exc:  # the test reads it: a thread's exception is silent
                self.problems.append(f"{type(exc).__name__}: {exc}")
            finally:
                sock.close()

    def _session(self, sock: socket.socket, connection: int) -> None:
        buffer = bytearray()

        def line() -> bytes | None:
            while b"\r\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                buffer.extend(chunk)
            end = buffer.index(b"\r\n") + 2
            text = bytes(buffer[:end])
            del buffer[:end]
            return text

        sock.sendall(b"220 scripted ESMTP\r\n")
        recipient = ""
        while (command := line()) is not None:
            verb = command[:4].upper()
            if verb == b"EHLO":
                sock.sendall(b"250-scripted\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == b"RCPT":
                recipient = command.decode().split("<", 1)[1].split(">", 1)[0]
                sock.sendall(b"250 ok\r\n")
            elif verb == b"DATA":
                sock.sendall(b"354 go ahead\r\n")
                if not self._data(sock, buffer, line, connection, recipient):
                    self.cut_mid_data.append(recipient)
                    return
            elif verb == b"QUIT":
                sock.sendall(b"221 bye\r\n")
                return
            else:  # MAIL, RSET, NOOP
                sock.sendall(b"250 ok\r\n")

    def _data(self, sock: socket.socket, buffer: bytearray, line: Callable[[], bytes | None],
              connection: int, recipient: str) -> bool:
        first = line()
        if first is None:
            return False
        previous = self._previous_recorded()
        content = bytearray(first)
        while content[-5:] != b"\r\n.\r\n" and first != b".\r\n":
            more = line()
            if more is None:
                return False
            content.extend(more)
        number = len(self.received) + 1
        with_dot = b"MAIL FROM:" in buffer
        behind = False
        if self.expect_behind(number):  # wait (no reply yet) for the next envelope to arrive
            while b"MAIL FROM:" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buffer.extend(chunk)
            behind = b"MAIL FROM:" in buffer
        self.received.append(Received(connection, recipient, bytes(content), behind, previous,
                                      envelope_with_dot=with_dot))
        self.on_dot(number)
        sock.sendall(b"250 2.0.0 queued\r\n")
        return True

    def _previous_recorded(self) -> bool | None:
        if not self.received:
            return None
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT status FROM outbox WHERE email_key = ?",
                              (self.received[-1].recipient.lower(),)).fetchall()
        return rows == [("sent",)]


def test_each_envelope_leaves_behind_the_previous_message_whose_outcome_is_recorded_first(tmp_path):
    with ScriptedServer(expect_behind=lambda number: number < 4) as server:
        project = Project(tmp_path, server.port, 4)
        server.db = str(project.db)
        done = project.run("send", "--now", NOW, "--json")
        assert done.returncode == 0, done.stderr
        assert server.problems == []
        assert json.loads(done.stdout)["counts"] == {"sent": 4}
        assert [r.recipient for r in server.received] == sorted(project.emails.values())
        assert {r.connection for r in server.received} == {1}  # one session for the batch
        # messages 1-3: the next envelope came before their dot was answered (one round trip)
        assert [r.envelope_behind for r in server.received] == [True, True, True, False]
        # in the dot's own write: a server that answers each read at once never holds the
        # envelope's replies for our delayed ACK (40 ms, Nagle), which cost 1 message in 80
        assert [r.envelope_with_dot for r in server.received] == [True, True, True, False]
        # a message's content came only once the message before it was recorded as sent
        assert [r.previous_recorded for r in server.received] == [None, True, True, True]
        assert project.statuses() == {"sent": 4}


def test_an_envelope_opened_for_a_message_skipped_at_its_recheck_delivers_nothing(tmp_path):
    cancelled = tmp_path / "cancelled.csv"

    def cancel_the_second(number: int) -> None:
        if number == 1:  # while the first waits for its 250, the shop cancels order 2
            done = project.run("import", str(cancelled), "--format", "mailflow", "--now", NOW)
            assert done.returncode == 0, done.stderr

    with ScriptedServer(expect_behind=lambda number: number == 1,
                        on_dot=cancel_the_second) as server:
        (tmp_path / "shop").mkdir()
        project = Project(tmp_path / "shop", server.port, 3)
        server.db = str(project.db)
        second = sorted(project.emails)[1]
        order = second.rsplit(":", 1)[1]
        cancelled.write_text("order_id,email,status,created_at\n"
                             f"{order},{project.emails[second]},cancelled,2026-03-02 11:00:05\n",
                             encoding="utf-8")
        done = project.run("send", "--now", NOW, "--json")
        assert done.returncode == 0, done.stderr
        assert server.problems == []
        recipients = sorted(project.emails.values())
        assert [r.recipient for r in server.received] == [recipients[0], recipients[2]]
        # the second's envelope was open (354) when its re-check skipped it: the connection
        # was closed before any of its content, and the third went over a new one
        assert server.cut_mid_data == [recipients[1]]
        assert [r.connection for r in server.received] == [1, 2]
        statuses = dict(project.query("SELECT key, status FROM outbox"))
        assert statuses == {sorted(project.emails)[0]: "sent", second: "skipped",
                            sorted(project.emails)[2]: "sent"}
        assert RULE in second


def test_lines_that_start_with_a_dot_arrive_as_written():
    """Dot-stuffing (RFC 5321 §4.5.2): a line of the message that starts with a dot, the
    message's first line too, reaches the server's mailbox unchanged, never as an end."""
    from smtp_server import SinkServer

    from mailflow.config import Smtp
    from mailflow.delivery.smtp import SmtpTransport

    lines = [b".first line", b"..two dots", b".", b"a . in the middle", b".last"]
    body = b"\r\n".join(lines) + b"\r\n"
    data = b"Subject: dots\r\nMessage-ID: <dots@shop.example>\r\n\r\n" + body
    with SinkServer() as sink:
        transport = SmtpTransport(Smtp(host="127.0.0.1", port=sink.port, security="none"))
        try:
            outcome = transport.deliver(data, mail_from="shop@shop.example",
                                        recipient="client@example.com", key="k")
        finally:
            transport.close()
        sink.wait_for(1)
        [message] = sink.received
    assert outcome.status == "sent"
    assert message.get_payload().splitlines() == [line.decode() for line in lines]
