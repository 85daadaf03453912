"""The one-click unsubscribe endpoint of RFC 8058, as a WSGI application.

It answers only at the path of `unsubscribe.url`, reading its `token` query parameter:
POST with the body `List-Unsubscribe=One-Click` unsubscribes and answers 200; GET shows
a page in the customer's language with a button that posts the same; a bad or altered
token gets 400 and changes nothing. It keeps no access log: the URLs hold addresses.
"""

from __future__ import annotations

import html
import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, unquote_to_bytes, urlsplit

from mailflow import console
from mailflow.config import Config
from mailflow.consent.suppressions import BadToken, address_of, unsubscribe
from mailflow.errors import ConfigError, MailflowError, UsageError
from mailflow.render.filters import normalize_locale
from mailflow.store import Store

MAX_BODY = 1024
ONE_CLICK = "List-Unsubscribe=One-Click"
PAGES = {
    "fr": {"ask": "Ne plus recevoir nos e-mails promotionnels à l'adresse {email} ?",
           "button": "Me désabonner", "done": "C'est fait : {email} ne recevra plus nos e-mails"
           " promotionnels. Les e-mails liés à vos commandes continueront d'arriver.",
           "bad": "Ce lien de désabonnement n'est pas valide.",
           "failed": "Une erreur nous empêche de vous désabonner : réessayez dans un moment."},
    "en": {"ask": "Stop receiving our marketing e-mails at {email}?", "button": "Unsubscribe",
           "done": "Done: {email} will no longer receive our marketing e-mails. E-mails about"
           " your orders will still arrive.", "bad": "This unsubscribe link is not valid.",
           "failed": "An error keeps us from unsubscribing you: please try again in a moment."},
}

Response = tuple[HTTPStatus, list[tuple[str, str]], bytes]


class _Refused(Exception):
    """Ends a request early with the answer it gets."""

    def __init__(self, response: Response) -> None:
        self.response = response


class UnsubscribeApp:
    """`UnsubscribeApp(config, db)` is a WSGI callable; each request opens the store and closes it."""

    def __init__(self, config: Config, db: Path) -> None:
        if not config.unsubscribe.url:
            raise ConfigError(f"{config.path.name}: unsubscribe.url is needed to serve it")
        self.config = config
        self.db = db
        # PATH_INFO arrives percent-decoded (as latin-1, PEP 3333): compare it decoded alike
        self.path = unquote_to_bytes(urlsplit(config.unsubscribe.url).path or "/").decode("latin-1")
        self.shop_lang = normalize_locale(config.shop.locale) or "en"

    def __call__(self, environ: dict, start_response: Callable[..., object]) -> Iterable[bytes]:
        try:
            status, headers, body = self.answer(environ)
        except (sqlite3.Error, MailflowError) as exc:  # a bad token never gets here: it is a 400
            console.warn(f"serve: the store failed, the visitor was asked to retry: {exc}")
            status, headers, body = self._page(HTTPStatus.INTERNAL_SERVER_ERROR,
                                               f"<p>{PAGES[_lang(self.shop_lang)]['failed']}</p>",
                                               self.shop_lang)
        start_response(f"{status.value} {status.phrase}", headers)
        return [body]

    def answer(self, environ: dict) -> Response:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "POST"):
            return HTTPStatus.METHOD_NOT_ALLOWED, [("Allow", "GET, POST"), ("Content-Length", "0")], b""
        try:
            return self._get(environ) if method == "GET" else self._post(environ)
        except _Refused as refused:
            return refused.response

    def _get(self, environ: dict) -> Response:
        email, lang = self._resolve(environ)
        text = PAGES[lang]
        return self._page(HTTPStatus.OK,
                          f"<p>{html.escape(text['ask'].format(email=email))}</p>"
                          f'<form method="post"><input type="hidden" name="List-Unsubscribe"'
                          f' value="One-Click"><button type="submit">{text["button"]}</button></form>',
                          lang)

    def _post(self, environ: dict) -> Response:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:  # read(-1) would wait for the client to close
            return self._error(HTTPStatus.BAD_REQUEST)
        if length > MAX_BODY:  # waitress refuses it before reading it (server.py); any other server
            return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        body = environ["wsgi.input"].read(length).decode("ascii", "replace").strip()
        email, lang = self._resolve(environ)
        if body != ONE_CLICK:
            return self._page(HTTPStatus.BAD_REQUEST, "<p>Expected List-Unsubscribe=One-Click.</p>",
                              lang)
        store = Store.open(self.db)
        try:
            unsubscribe(store, [email], datetime.now(UTC).replace(microsecond=0), "link")
        except UsageError:  # a well-signed token for something that is not an address
            return self._bad_token()
        finally:
            store.close()
        return self._page(HTTPStatus.OK,
                          f"<p>{html.escape(PAGES[lang]['done'].format(email=email))}</p>", lang)

    def _resolve(self, environ: dict) -> tuple[str, str]:
        """(address, language) for a good token at our path; otherwise refused with 404 or 400."""
        if environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "") != self.path:
            raise _Refused(self._error(HTTPStatus.NOT_FOUND))
        token = (parse_qs(environ.get("QUERY_STRING", "")).get("token") or [""])[0]
        try:
            email = address_of(token, self.config)
        except BadToken:
            raise _Refused(self._bad_token()) from None
        store = Store.open(self.db)
        try:
            customer = store.customer(email.lower())
        finally:
            store.close()
        return email, _lang(normalize_locale((customer or {}).get("locale")) or self.shop_lang)

    def _bad_token(self) -> Response:
        return self._page(HTTPStatus.BAD_REQUEST, f"<p>{PAGES[_lang(self.shop_lang)]['bad']}</p>",
                          self.shop_lang)

    def _error(self, status: HTTPStatus) -> Response:
        return self._page(status, f"<p>{status.value} {status.phrase}</p>", self.shop_lang)

    def _page(self, status: HTTPStatus, body: str, lang: str) -> Response:
        shop = html.escape(self.config.shop.name)
        data = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{shop}</title></head><body"
                f' style="font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem">'
                f"<h1>{shop}</h1>{body}</body></html>").encode()
        return status, [("Content-Type", "text/html; charset=utf-8"),
                        ("Content-Length", str(len(data))), ("Cache-Control", "no-store")], data


def _lang(code: str) -> str:
    return code if code in PAGES else "en"
