"""SMTP delivery: the only module that uses smtplib.

One connection for a batch (RSET between messages), TLS verified against the system's
trust store (or $SSL_CERT_FILE), a timeout on every step, login only over TLS. DATA is
driven by hand so that we know whether the final dot left: a failure before it means the
message was not accepted (deferred, retried later); no reply after it means we cannot
know (unknown, never resent by itself).

With a server that offers PIPELINING (RFC 2920) a message costs one round trip: its
envelope (MAIL, RCPT, DATA) leaves in one write, and from the second message on it leaves
right behind the previous message's final dot (`then`), its replies read after that
message's. An envelope opened ahead delivers nothing by itself: the message's content
leaves only in its own `deliver`, after the caller claimed it. An envelope opened for a
message that is then not sent (its re-check skipped it) is dropped with the connection
if the server already said 354 (a transaction cut before its final dot is discarded,
RFC 5321 §3.8), else reset.
"""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Mapping

from mailflow.config import Smtp
from mailflow.delivery.transports import Outcome
from mailflow.errors import ConfigError, DeliveryBlocked
from mailflow.records import OutboxStatus

_ENHANCED = re.compile(rb"^\s*([245])\.(\d{1,3})\.(\d{1,3})")
LOCALHOST = ("localhost", "127.0.0.1", "::1")


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}".strip()


def _commands(mail_from: str, recipient: str) -> tuple[str, str]:
    """MAIL and RCPT of one envelope (SMTPUTF8 when an address needs it)."""
    options = " SMTPUTF8" if not (mail_from + recipient).isascii() else ""
    return f"MAIL FROM:<{mail_from}>{options}", f"RCPT TO:<{recipient}>"


def _dot_stuffed(data: bytes) -> bytes:
    """Each line that starts with a dot gets another (RFC 5321 §4.5.2); bytes.replace, not a
    multiline regex, which took 3% of the send process's time."""
    stuffed = data.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


def _ended_if_refused(conn: smtplib.SMTP, replies: list[tuple[int, bytes]]
                      ) -> list[tuple[int, bytes]]:
    """The replies to a pipelined MAIL, RCPT and DATA. A server may accept DATA after refusing
    MAIL or RCPT: the transaction is ended empty (it has no recipient) and DATA not sent."""
    if replies[2][0] == 354 and (replies[0][0] >= 400 or replies[1][0] >= 400):
        conn.send(b".\r\n")
        conn.getreply()
        replies[2] = (0, b"not sent")
    return replies


def enhanced_status(text: bytes) -> str | None:
    match = _ENHANCED.match(text)
    return ".".join(m.decode() for m in match.groups()) if match else None


class _Cut(Exception):
    """A write that failed after the kernel took `sent` bytes of it."""

    def __init__(self, sent: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.sent, self.error = sent, error


def _send_all(conn: smtplib.SMTP, data: bytes, timeout: float) -> None:
    """`sendall` that says how far it got: the bytes before a failure may hold a final dot.
    `timeout` bounds the whole write, as `sendall` does."""
    sock, view, sent = conn.sock, memoryview(data), 0
    if sock is None:
        raise _Cut(0, smtplib.SMTPServerDisconnected("not connected"))
    deadline = time.monotonic() + timeout
    try:
        while sent < len(view):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            sock.settimeout(left)
            sent += sock.send(view[sent:])
    except OSError as exc:
        raise _Cut(sent, exc) from None
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(timeout)


class SmtpTransport:
    def __init__(self, settings: Smtp, env: Mapping[str, str] = os.environ) -> None:
        self.settings = settings
        self.password: str | None = None
        if settings.security == "none" and settings.host not in LOCALHOST:
            raise ConfigError(f"delivery.smtp.security: none sends in clear text: only for"
                              f" localhost, not {settings.host}; use starttls or ssl")
        if settings.username:
            if not settings.password_env or not env.get(settings.password_env):
                raise ConfigError(f"delivery.smtp: {settings.username} needs a password in the"
                                  f" environment variable named by password_env"
                                  f" ({settings.password_env or 'not set'})")
            self.password = env[settings.password_env]
        self.conn: smtplib.SMTP | None = None
        self.dirty = False  # a transaction was begun and not completed: RSET before the next
        self.where = f"{settings.host}:{settings.port}"
        # the envelope sent ahead behind the last message: (mail_from, recipient), replies
        self.opened: tuple[tuple[str, str], list[tuple[int, bytes]]] | None = None

    # -- the connection ---------------------------------------------------------------------

    def _connect(self) -> smtplib.SMTP:
        s, timeout = self.settings, self.settings.timeout.total_seconds()
        context = ssl.create_default_context()
        try:
            conn = smtplib.SMTP_SSL(s.host, s.port, timeout=timeout, context=context) \
                if s.security == "ssl" else smtplib.SMTP(s.host, s.port, timeout=timeout)
            conn.ehlo()
            if s.security == "starttls":
                if not conn.has_extn("starttls"):
                    conn.close()
                    raise DeliveryBlocked(f"{self.where} does not offer STARTTLS: mailflow will"
                                          " not send (or log in) in clear text")
                conn.starttls(context=context)
                conn.ehlo()
            if s.username:
                conn.login(s.username, self.password or "")
            if conn.sock is not None:  # an envelope written behind a message leaves at once
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except DeliveryBlocked:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryBlocked(f"{self.where} refused the login of {s.username}:"
                                  f" {_reply(exc.smtp_code, exc.smtp_error)}") from None
        except ssl.SSLError as exc:
            raise DeliveryBlocked(f"TLS with {self.where} failed: {exc.reason or exc}"
                                  " (certificates are verified)") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryBlocked(f"cannot reach the SMTP server {self.where}: {exc}") from None
        return conn

    def _drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
        self.conn = None
        self.opened = None

    def _abandon_opened(self) -> None:
        """The envelope opened ahead is not for the message now sent (or for none)."""
        if self.opened is not None:
            replies = self.opened[1]
            self.opened = None
            if replies[2][0] == 354:  # mid-DATA: only closing the connection ends it unsent
                self._drop()

    def close(self) -> None:
        self._abandon_opened()
        if self.conn is not None:
            # a bad reply to QUIT after 250 changes nothing: the mail was accepted and recorded
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.conn.quit()
            self._drop()

    # -- one message ---------------------------------------------------------------------------

    def deliver(self, data: bytes, *, mail_from: str, recipient: str, key: str,
                then: tuple[str, str] | None = None,
                while_waiting: Callable[[], None] | None = None) -> Outcome:
        """`then`: (mail_from, recipient) of the message the caller will most likely send next,
        whose envelope goes out behind this message's final dot when the server pipelines.
        `while_waiting`: the caller's work for the time the server takes to answer the dot."""
        opened, self.opened = self.opened, None
        if opened is not None and opened[0] != (mail_from, recipient):
            self.opened = opened
            self._abandon_opened()
            opened = None
        if opened is None:
            if self.conn is not None and self.dirty:  # after a completed mail the state is clean
                try:
                    code, _ = self.conn.rset()
                    if code != 250:
                        self._drop()
                except (OSError, smtplib.SMTPException):
                    self._drop()
            if self.conn is None:
                self.conn = self._connect()
        conn = self.conn
        assert conn is not None, "an envelope is opened ahead only on a live connection"
        self.dirty = True
        try:
            replies = opened[1] if opened is not None else \
                self._envelope(conn, *_commands(mail_from, recipient))
            for (code, text), stage, ok in zip(replies, ("MAIL FROM", "RCPT TO", "DATA"),
                                               ((250,), (250, 251), (354,)), strict=True):
                if code not in ok:
                    return self._refused(code, text, stage)
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            return self._lost_before_the_dot(exc)
        payload = _dot_stuffed(data)
        if not payload.endswith(b"\r\n"):
            payload += b"\r\n"
        payload += b".\r\n"
        ahead = then is not None and conn.has_extn("pipelining")
        # the next envelope in the same write as the dot: a server that answers each read at
        # once would otherwise answer the dot alone and hold the envelope's replies (Nagle)
        # until our delayed ACK, 40 ms on Linux
        envelope = "".join(f"{c}\r\n" for c in (*_commands(*then), "DATA")).encode() \
            if ahead and then is not None else b""
        cut = False  # the message left whole, the envelope behind it did not
        try:
            _send_all(conn, payload + envelope, self.settings.timeout.total_seconds())
        except _Cut as exc:
            if exc.sent < len(payload):
                self._drop()
                return self._lost_before_the_dot(exc.error)
            ahead, cut = False, True  # its reply first: the connection's fate is read there
        if while_waiting is not None:
            while_waiting()
        try:
            code, text = conn.getreply()
        except (OSError, smtplib.SMTPException) as exc:  # TimeoutError is an OSError
            self._drop()
            return Outcome(OutboxStatus.UNKNOWN, f"no reply from {self.where} after the message"
                                                 f" was sent: {exc or 'timeout'}")
        if cut:
            self._drop()  # half an envelope is on the wire: the next message reconnects
        if 200 <= code < 300:
            self.dirty = False
            outcome = Outcome(OutboxStatus.SENT, _reply(code, text))
        else:
            try:
                outcome = self._refused(code, text, "end of DATA")
            except DeliveryBlocked:
                if ahead:  # the batch stops: no QUIT into the envelope opened ahead
                    self._drop()
                raise
        if ahead and then is not None and self.conn is conn:
            self._read_ahead(conn, then)
        return outcome

    def _lost_before_the_dot(self, exc: BaseException) -> Outcome:
        return Outcome(OutboxStatus.DEFERRED, f"connection to {self.where} lost before the"
                                              f" end of the message: {exc}")

    def _read_ahead(self, conn: smtplib.SMTP, then: tuple[str, str]) -> None:
        """The replies to the envelope sent behind the last message; the next `deliver` for
        `then` goes on from them (a refusal among them is that message's)."""
        try:
            replies = _ended_if_refused(conn, [conn.getreply() for _ in range(3)])
        except (OSError, smtplib.SMTPException):
            self._drop()
            return
        self.dirty = True
        if any(code == 421 for code, _ in replies):
            self._drop()  # the server is closing: the next message reconnects
            return
        self.opened = (then, replies)

    def _envelope(self, conn: smtplib.SMTP, mail: str, rcpt: str) -> list[tuple[int, bytes]]:
        """MAIL, RCPT and DATA; in one write when the server offers PIPELINING (RFC 2920),
        which saves two round trips a message. A refusal stops at its command either way."""
        if not conn.has_extn("pipelining"):
            replies = []
            for command in (mail, rcpt, "DATA"):
                conn.send(f"{command}\r\n".encode())  # putcmd would refuse an SMTPUTF8 address
                replies.append(conn.getreply())
                if replies[-1][0] >= 400:
                    return replies + [(0, b"not sent")] * (3 - len(replies))
            return replies
        conn.send(f"{mail}\r\n{rcpt}\r\nDATA\r\n".encode())
        return _ended_if_refused(conn, [conn.getreply() for _ in range(3)])

    def _refused(self, code: int, text: bytes, stage: str) -> Outcome:
        reply = _reply(code, text)
        status = enhanced_status(text)
        if code == 421:
            self._drop()  # the server is closing: reconnect for the next message
            return Outcome(OutboxStatus.DEFERRED, f"{stage}: {reply}")
        if 400 <= code < 500:
            return Outcome(OutboxStatus.DEFERRED, f"{stage}: {reply}")
        if (status or "").startswith("5.7.") or code in (530, 535):
            raise DeliveryBlocked(f"{self.where} refuses our mail ({stage}: {reply}): check the"
                                  " sender's authentication (SPF, DKIM, DMARC) and login")
        suppress = status is not None and (status.startswith("5.1.") or status == "5.2.1")
        return Outcome(OutboxStatus.FAILED, f"{stage}: {reply}", suppress=suppress)
