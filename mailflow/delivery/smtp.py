"""SMTP delivery: the only module that uses smtplib.

One connection for a batch (RSET between messages), TLS verified against the system's
trust store (or $SSL_CERT_FILE), a timeout on every step, login only over TLS. DATA is
driven by hand so that we know whether the final dot left: a failure before it means the
message was not accepted (deferred, retried later); no reply after it means we cannot
know (unknown, never resent by itself).
"""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import ssl
from collections.abc import Mapping

from mailflow.config import Smtp
from mailflow.delivery.transports import Outcome
from mailflow.errors import ConfigError, DeliveryBlocked
from mailflow.records import OutboxStatus

_ENHANCED = re.compile(rb"^\s*([245])\.(\d{1,3})\.(\d{1,3})")
_LEADING_DOT = re.compile(rb"(?m)^\.")
LOCALHOST = ("localhost", "127.0.0.1", "::1")


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}".strip()


def enhanced_status(text: bytes) -> str | None:
    match = _ENHANCED.match(text)
    return ".".join(m.decode() for m in match.groups()) if match else None


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

    def close(self) -> None:
        if self.conn is not None:
            # a bad reply to QUIT after 250 changes nothing: the mail was accepted and recorded
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.conn.quit()
            self._drop()

    # -- one message ---------------------------------------------------------------------------

    def deliver(self, data: bytes, *, mail_from: str, recipient: str, key: str) -> Outcome:
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
        self.dirty = True
        options = " SMTPUTF8" if not (mail_from + recipient).isascii() else ""
        try:
            replies = self._envelope(conn, f"MAIL FROM:<{mail_from}>{options}", f"RCPT TO:<{recipient}>")
            for (code, text), stage, ok in zip(replies, ("MAIL FROM", "RCPT TO", "DATA"),
                                               ((250,), (250, 251), (354,)), strict=True):
                if code not in ok:
                    return self._refused(code, text, stage)
            payload = _LEADING_DOT.sub(b"..", data)
            if not payload.endswith(b"\r\n"):
                payload += b"\r\n"
            conn.send(payload + b".\r\n")
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            return Outcome(OutboxStatus.DEFERRED, f"connection to {self.where} lost before the"
                                                  f" end of the message: {exc}")
        try:
            code, text = conn.getreply()
        except (OSError, smtplib.SMTPException) as exc:  # TimeoutError is an OSError
            self._drop()
            return Outcome(OutboxStatus.UNKNOWN, f"no reply from {self.where} after the message"
                                                 f" was sent: {exc or 'timeout'}")
        if 200 <= code < 300:
            self.dirty = False
            return Outcome(OutboxStatus.SENT, _reply(code, text))
        return self._refused(code, text, "end of DATA")

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
        replies = [conn.getreply() for _ in range(3)]
        if replies[2][0] == 354 and (replies[0][0] >= 400 or replies[1][0] >= 400):
            conn.send(b".\r\n")  # DATA was accepted after a refusal: end it empty
            conn.getreply()
        return replies

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
