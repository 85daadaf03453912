"""The one module that fetches over HTTP: shops' APIs, for `mailflow pull`.

httpx, with TLS verified against the system's trust store (or `$SSL_CERT_FILE`), `https`
only (plain `http` to localhost alone, for tests and a shop's own reverse proxy), a timeout
on every request. 429 and 5xx answers and connection trouble are retried with exponential
backoff, honouring `Retry-After`; 401/403 stop the source (`SourceRefused`), and what is
still failing after the retries is `SourceUnavailable`. Messages name the source and the
URL without its query, never a credential; a platform may pass `error_detail`, which turns
the error document of a refused request (its body) into the one line its message ends with.
"""

from __future__ import annotations

import email.utils
import json
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mailflow.errors import ConfigError, SourceError, SourceRefused, SourceUnavailable

LOCALHOST = ("localhost", "127.0.0.1", "::1")
ATTEMPTS = 6  # 1 + 5 retries: 1, 2, 4, 8, 16 s of backoff, about half a minute in all
FIRST_BACKOFF = 1.0
LONGEST_WAIT = 120.0  # a Retry-After beyond this is not waited for in one cron tick
RETRIED = frozenset({429, 500, 502, 503, 504})
USER_AGENT = "mailflow (+https://github.com/mailflow) httpx"
ErrorDetail = Callable[[bytes], str | None]


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str  # as shown in messages: without the query

    def json(self, source: str) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SourceError(f"{source}: {self.url} answered something that is not JSON"
                              f" ({exc}); nothing was imported from this answer") from None


def checked_url(url: str, where: str) -> str:
    """`url` if it may carry a shop's data: https, or http to this machine only."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "http" and parts.hostname in LOCALHOST:
        return url.rstrip("/")
    raise ConfigError(f"{where}: {url!r} must be an https:// URL (plain http only to localhost):"
                      " the shop's data and credentials never travel in clear text")


def shown(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="", fragment="", netloc=parts.hostname or ""
                                     if parts.port is None else f"{parts.hostname}:{parts.port}"))


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a `Retry-After` header asks for: a number, or an HTTP date."""
    if not value:
        return None
    text = value.strip()
    if text.replace(".", "", 1).isdigit():
        return float(text)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - now).total_seconds(), 0.0)


class HttpClient:
    """Requests to one source's API. `sleep` and `clock` are injected: tests never wait."""

    def __init__(self, source: str, base_url: str, *, headers: Mapping[str, str] | None = None,
                 auth: tuple[str, str] | None = None, timeout: timedelta = timedelta(seconds=30),
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 attempts: int = ATTEMPTS, error_detail: ErrorDetail | None = None) -> None:
        import httpx  # ~40 ms: only for a run that pulls

        self.source = source
        self.base_url = checked_url(base_url, source)
        self.sleep, self.clock, self.attempts = sleep, clock, attempts
        self.waited = 0.0  # seconds slept on retries and throttling, for the report
        self.error_detail = error_detail
        self._httpx = httpx
        self._client = httpx.Client(
            verify=ssl.create_default_context(), timeout=timeout.total_seconds(),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
            auth=auth, follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def wait(self, seconds: float) -> None:
        self.waited += seconds
        self.sleep(seconds)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Response:
        return self.request("GET", path, params=params)

    def post_json(self, path: str, body: Any) -> Response:
        return self.request("POST", path, json_body=body)

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                json_body: Any = None) -> Response:
        url = self.url(path)
        where = shown(url)
        backoff = FIRST_BACKOFF
        problem = ""
        for attempt in range(1, self.attempts + 1):
            try:
                answer = self._client.request(method, url, params=params, json=json_body)
            except self._httpx.TimeoutException:
                problem = f"no answer within {self._client.timeout.read or 0:g}s"
            except self._httpx.ConnectError as exc:
                if _is_certificate_error(exc):
                    raise SourceRefused(f"{self.source}: TLS with {where} failed: {_reason(exc)}"
                                        " (certificates are verified)") from None
                problem = f"cannot connect: {_reason(exc)}"
            except self._httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {_reason(exc)}"
            else:
                status = answer.status_code
                if status in (401, 403):
                    raise SourceRefused(
                        f"{self.source}: {where} refused mailflow's credentials (HTTP {status}):"
                        " check the key or token in the environment variable the source names,"
                        " and its read permissions (docs/sources.md)")
                if status not in RETRIED:
                    if 300 <= status < 400:
                        raise SourceError(f"{self.source}: {where} redirects (HTTP {status}):"
                                          " give the source's final https:// URL")
                    if status >= 400:
                        said = self.error_detail(answer.content) if self.error_detail else None
                        raise SourceError(f"{self.source}: {where} answered HTTP {status}: "
                                          + (one_line(said) if said else
                                             "check the source's url and api version"))
                    return Response(status, dict(answer.headers), answer.content, where)
                problem = f"HTTP {status}"
                asked = retry_after(answer.headers.get("Retry-After"), self.clock())
                if asked is not None:
                    if asked > LONGEST_WAIT:
                        break
                    backoff = max(backoff, asked)
            if attempt < self.attempts:
                self.wait(backoff)
                backoff = min(backoff * 2, LONGEST_WAIT)
        raise SourceUnavailable(f"{self.source}: {where} is unavailable ({problem}, after"
                                f" {self.attempts} attempts): nothing was skipped, the next pull"
                                " starts where this one could not")


def one_line(text: str, longest: int = 300) -> str:
    """What a shop's error document says, as the end of a one-line message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= longest else flat[:longest - 1] + "…"


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _is_certificate_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)
