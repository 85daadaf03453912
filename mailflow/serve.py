"""`mailflow serve`: the one-click unsubscribe endpoint of RFC 8058, standard library only.

It answers only at the path of `unsubscribe.url`, reading its `token` query parameter:
POST with the body `List-Unsubscribe=One-Click` unsubscribes and answers 200; GET shows
a page in the customer's language with a button that posts the same; a bad or altered
token gets 400 and changes nothing. Run it behind the shop's reverse proxy (docs).
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from mailflow.config import Config
from mailflow.errors import ConfigError
from mailflow.formatting import normalize_locale
from mailflow.store import Store
from mailflow.subscriptions import BadToken, address_of, unsubscribe

MAX_BODY = 1024
ONE_CLICK = "List-Unsubscribe=One-Click"
PAGES = {
    "fr": {"ask": "Ne plus recevoir nos e-mails promotionnels à l'adresse {email} ?",
           "button": "Me désabonner", "done": "C'est fait : {email} ne recevra plus nos e-mails"
           " promotionnels. Les e-mails liés à vos commandes continueront d'arriver.",
           "bad": "Ce lien de désabonnement n'est pas valide."},
    "en": {"ask": "Stop receiving our marketing e-mails at {email}?", "button": "Unsubscribe",
           "done": "Done: {email} will no longer receive our marketing e-mails. E-mails about"
           " your orders will still arrive.", "bad": "This unsubscribe link is not valid."},
}


def make_server(config: Config, db: Path, host: str, port: int) -> ThreadingHTTPServer:
    if not config.unsubscribe.url:
        raise ConfigError(f"{config.path.name}: unsubscribe.url is needed to serve it")
    path = urlsplit(config.unsubscribe.url).path or "/"
    handler = type("Handler", (UnsubscribeHandler,), {"config": config, "db": db, "path_": path})
    return ThreadingHTTPServer((host, port), handler)


class UnsubscribeHandler(BaseHTTPRequestHandler):
    config: Config
    db: Path
    path_: str
    server_version = "mailflow"

    def log_message(self, format: str, *args) -> None:
        pass  # addresses are personal data: no access log

    def _page(self, status: HTTPStatus, body: str, lang: str) -> None:
        data = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{html.escape(self.config.shop.name)}</title></head><body"
                f' style="font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem">'
                f"<h1>{html.escape(self.config.shop.name)}</h1>{body}</body></html>").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _resolve(self) -> tuple[str, str] | None:
        """(address, language) for a good token; otherwise answers 404/400 and returns None."""
        parts = urlsplit(self.path)
        lang = normalize_locale(self.config.shop.locale) or "en"
        if parts.path != self.path_:
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        token = (parse_qs(parts.query).get("token") or [""])[0]
        try:
            email = address_of(token, self.config)
        except BadToken:
            self._page(HTTPStatus.BAD_REQUEST, f"<p>{PAGES[_lang(lang)]['bad']}</p>", lang)
            return None
        store = Store.open(self.db)
        try:
            customer = store.customer(email.lower())
        finally:
            store.close()
        return email, _lang(normalize_locale((customer or {}).get("locale")) or lang)

    def do_GET(self) -> None:
        found = self._resolve()
        if found is None:
            return
        email, lang = found
        text = PAGES[lang]
        self._page(HTTPStatus.OK,
                   f"<p>{html.escape(text['ask'].format(email=email))}</p>"
                   f'<form method="post"><input type="hidden" name="List-Unsubscribe"'
                   f' value="One-Click"><button type="submit">{text["button"]}</button></form>',
                   lang)

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:  # read(-1) would wait for the client to close: never
            self.send_error(HTTPStatus.BAD_REQUEST)
            return
        if length > MAX_BODY:
            self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return
        body = self.rfile.read(length).decode("ascii", "replace").strip()
        found = self._resolve()
        if found is None:
            return
        email, lang = found
        if body != ONE_CLICK:
            self._page(HTTPStatus.BAD_REQUEST, "<p>Expected List-Unsubscribe=One-Click.</p>", lang)
            return
        store = Store.open(self.db)
        try:
            unsubscribe(store, [email], datetime.now(UTC).replace(microsecond=0), "link")
        finally:
            store.close()
        self._page(HTTPStatus.OK, f"<p>{html.escape(PAGES[lang]['done'].format(email=email))}</p>",
                   lang)

    def _not_allowed(self) -> None:
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", "GET, POST")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_DELETE = do_PATCH = _not_allowed


def _lang(code: str) -> str:
    return code if code in PAGES else "en"
