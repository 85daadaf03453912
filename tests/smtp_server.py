"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, with behaviours to misbehave on
purpose. Every message it accepts is kept (by Message-ID) so tests can count deliveries."""

from __future__ import annotations

import email
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def free_port() -> int:
    # aiosmtpd's Controller(port=0) does not work (upstream #388): pick the port ourselves
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Behaviour:
    """What the server answers. Each hook returns an SMTP reply or None for the normal one."""

    mail: str | None = None  # e.g. "421 4.7.0 try again later"
    rcpt: dict[str, str] = field(default_factory=dict)  # address -> reply
    rcpt_all: str | None = None
    data: str | None = None  # the reply after the final dot
    disconnect_after_data: bool = False  # close without any reply after the dot
    stall_after_data: float = 0.0  # seconds to wait before answering the dot
    stall_from: int | None = None  # ... only once this many messages were received
    quit_reply: str | None = None
    times: int | None = None  # misbehave this many times, then behave


class Handler:
    def __init__(self, server: SinkServer) -> None:
        self.server = server

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.server.pipelining:  # aiosmtpd reads pipelined commands but never says so
            responses.insert(-1, "250-PIPELINING")
        return responses

    def _misbehave(self, reply: str | None) -> str | None:
        b = self.server.behaviour
        if reply is None or (b.times is not None and b.times <= 0):
            return None
        if b.times is not None:
            b.times -= 1
        return reply

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = self._misbehave(self.server.behaviour.mail)
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        b = self.server.behaviour
        reply = self._misbehave(b.rcpt.get(address) or b.rcpt_all)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        b = self.server.behaviour
        if b.disconnect_after_data and self._misbehave("x"):
            self.server.dropped.append(envelope.content)
            server.transport.close()
            return "250 never seen"
        if b.stall_after_data and (b.stall_from is None
                                   or len(self.server.received) >= b.stall_from):
            import asyncio

            await asyncio.sleep(b.stall_after_data)
        reply = self._misbehave(b.data)
        if reply:
            return reply
        self.server.accept(envelope)
        return "250 2.0.0 queued"


class QuitSMTP(SMTP):
    def connection_made(self, transport):
        self.event_handler.server.connected(+1)
        super().connection_made(transport)

    def connection_lost(self, exc):
        self.event_handler.server.connected(-1)
        super().connection_lost(exc)

    async def smtp_QUIT(self, arg):
        reply = self.event_handler.server.behaviour.quit_reply
        if reply:
            await self.push(reply)
            self.transport.close()
            return None
        return await super().smtp_QUIT(arg)


class SinkServer:
    # Most servers offer PIPELINING (RFC 2920), so the tests' does unless told otherwise:
    # tests/test_smtp_faults.py runs each fault with and without it.
    offers_pipelining = True

    def __init__(self, *, tls_context: ssl.SSLContext | None = None, starttls: bool = True,
                 implicit_tls: bool = False, users: dict[str, str] | None = None,
                 pipelining: bool | None = None) -> None:
        self.pipelining = self.offers_pipelining if pipelining is None else pipelining
        self.behaviour = Behaviour()
        self.received: list[email.message.EmailMessage] = []
        self.dropped: list[bytes] = []
        self.lock = threading.Lock()
        self.sessions = 0  # connections accepted so far
        self.open_sessions = 0
        self.most_open_sessions = 0  # the most connections open at one moment
        self.port = free_port()
        self.users = users
        handler = Handler(self)
        kwargs: dict = {"hostname": "127.0.0.1", "port": self.port, "auth_require_tls": False,
                        "decode_data": False}
        if users is not None:
            kwargs["authenticator"] = self._authenticate
        if tls_context is not None and implicit_tls:
            kwargs["ssl_context"] = tls_context
        elif tls_context is not None and starttls:
            kwargs["tls_context"] = tls_context
        self.controller = _Controller(handler, **kwargs)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and self.users.get(
            auth_data.login.decode()) == auth_data.password.decode()
        # handled=False makes aiosmtpd answer 535 at once (FIELD-NOTES)
        return AuthResult(success=True) if ok else AuthResult(success=False, handled=False)

    def connected(self, change: int) -> None:
        with self.lock:
            self.sessions += change > 0
            self.open_sessions += change
            self.most_open_sessions = max(self.most_open_sessions, self.open_sessions)

    def accept(self, envelope) -> None:
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self.lock:
            self.received.append(message)

    def message_ids(self) -> list[str]:
        with self.lock:
            return [m["Message-ID"] for m in self.received]

    def __enter__(self) -> SinkServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    def wait_for(self, count: int, seconds: float = 5.0) -> None:
        deadline = time.monotonic() + seconds
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)


class _Controller(Controller):
    def factory(self):
        return QuitSMTP(self.handler, **self.SMTP_kwargs)
