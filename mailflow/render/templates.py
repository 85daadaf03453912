"""Rendering one e-mail: subject, inlined HTML and text, in the customer's language.

Jinja2 with autoescape and StrictUndefined (a missing value is an error, never a blank).
`NAME.LOCALE.html` wins for the customer's locale, then the shop's, then `NAME.html`.
After rendering, every link is made absolute from `shop.url`, links to the shop get
`utm_source=mailflow&utm_campaign=<rule>`, and a link whose scheme is not http(s),
mailto or tel (`javascript:`, `data:`…) is neutralised to `#`. A tracked message's clicked
links to the shop then go through its Tracker (render/tracked.py), in both parts.
"""

from __future__ import annotations

import functools
import html as htmllib
import re
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
    select_autoescape,
)
from markupsafe import Markup, escape

from mailflow.config import Shop
from mailflow.errors import RenderError
from mailflow.localized import Localized, resolve_localized
from mailflow.render.filters import Formatter, line_total, normalize_locale
from mailflow.render.inline import inliner

__all__ = ["RenderError", "Rendered", "Renderer", "Tracker", "html_to_text", "render_failure",
           "safe_url"]

# href and src in either case without re.I, tried only where an h or an s follows a space:
# a fifth less time over a message's HTML, where the pattern was tried at every space
_LINK = re.compile(r"""(\s(?=[hHsS])(?:[hH][rR][eE][fF]|[sS][rR][cC]))\s*=\s*(["'])(.*?)\2""", re.S)
_SAFE_SCHEMES = ("http", "https")
_LOCALIZED_PARTS = ("shop", "offer")  # the context's parts that hold texts per language


@dataclass
class Rendered:
    """A rendered e-mail. Links, inlining and the text part are done on first use: a dry run,
    which shows subjects only, never pays for them (Jinja errors have surfaced already)."""

    subject: str
    locale: str
    template: str
    _text: str | None  # the rendered .txt twin, if the template has one
    _raw: str  # Jinja's output
    _fix: Callable[[str], str]  # absolute links, UTM, tracked links and pixel
    _inline: Callable[[str], str]
    _fix_text: Callable[[str], str] | None = None  # a tracked message's links in the .txt twin

    @functools.cached_property
    def linked(self) -> str:
        return self._fix(self._raw)

    @functools.cached_property
    def html(self) -> str:
        return self._inline(self.linked)

    @functools.cached_property
    def text(self) -> str:
        if self._text is None:
            return html_to_text(self.linked)
        return self._text if self._fix_text is None else self._fix_text(self._text)


def safe_url(value: object) -> str:
    """A URL from data, if it is http(s); else empty (never a `javascript:` link)."""
    text = str(value or "").strip()
    return text if urlsplit(text).scheme.lower() in _SAFE_SCHEMES else ""


def nl2br(value: object) -> Markup:
    lines = str(value or "").splitlines()
    return Markup("<br>\n").join(escape(line) for line in lines)


_DICT_ATTRIBUTES = frozenset(dir(dict))


class _Environment(Environment):
    """Template globals as a plain dict, not Jinja's ChainMap over the environment's: every
    `{% import %}` and every render reads them whole (a set difference, a copy), and through
    a ChainMap that was a tenth of a message's rendering. Ours are all set before the first
    template loads (as Jinja asks), so a copy sees them all."""

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}

    def getattr(self, obj: Any, attribute: str) -> Any:
        """`order.total`: a template's data are plain dicts (rows and views), and Jinja's way
        (the attribute first, the key after its AttributeError) cost a twentieth of a
        message's rendering. The same result: a plain dict's attributes are its class's."""
        if type(obj) is dict and attribute in obj and attribute not in _DICT_ATTRIBUTES:
            return obj[attribute]
        return super().getattr(obj, attribute)


class Renderer:
    def __init__(self, folder: Path, shop: Shop, inliner_name: str | None = None) -> None:
        self.folder = folder
        self.shop = shop
        self.inline = inliner(inliner_name)
        self._names: dict[tuple[str, str | None, str], str | None] = {}
        self._envs: dict[str, Environment] = {}

    def environment(self, locale: str) -> Environment:
        if locale not in self._envs:
            env = _Environment(loader=FileSystemLoader(str(self.folder)), auto_reload=False,
                              autoescape=select_autoescape(["html"]), undefined=StrictUndefined)
            fmt = Formatter(locale, self.shop.currency, self.shop.tz)
            env.filters.update(money=fmt.money, date=fmt.date, datetime=fmt.datetime,
                               safe_url=safe_url, nl2br=nl2br)
            env.globals.update(line_total=line_total)
            self._envs[locale] = env
        return self._envs[locale]

    def template_name(self, name: str, locale: str | None, ext: str = "html") -> str | None:
        key = (name, locale, ext)
        if key not in self._names:
            # the customer's language, the shop's, the plain file, English, then any language
            others = sorted(p.name for p in self.folder.glob(f"{name}.*.{ext}"))
            candidates = [f"{name}.{c}.{ext}" for c in (locale, normalize_locale(self.shop.locale))
                          if c] + [f"{name}.{ext}", f"{name}.en.{ext}", *others]
            self._names[key] = next((f for f in candidates if (self.folder / f).is_file()), None)
        return self._names[key]

    def render(self, name: str, locale: str | None, context: dict[str, Any], *, campaign: str,
               subject_override: Localized | str | None = None,
               tracker: Tracker | None = None) -> Rendered:
        """`tracker`: this message is tracked; its shop links go through it."""
        wanted = normalize_locale(locale)
        html_name = self.template_name(name, wanted)
        if html_name is None:
            raise RenderError(f"templates/{name}.html: no such template")
        parts = html_name.split(".")
        used = parts[1] if len(parts) == 3 else normalize_locale(self.shop.locale) or "en"
        env = self.environment(used)
        language = locale if locale and wanted == used else used  # fr_CA's own text, in French
        context = self._localized(context, language)
        override = Localized.of(subject_override).for_locale(language, self.shop.locale)
        try:
            template = env.get_template(html_name)
            raw = template.render(context)
            if override:
                subject = self._subject(env, override, context, html_name)
            elif "subject" in template.blocks:
                subject = "".join(template.blocks["subject"](template.new_context(context)))
            else:
                raise RenderError(f"templates/{html_name}: no {{% block subject %}}")
            text_name = self.template_name(name, wanted, "txt")
            text = env.get_template(text_name).render(context) if text_name else None
        except RenderError:
            raise
        except Exception as exc:  # not only Jinja's: `order.total * 0.2` on a string too
            raise render_failure(exc, html_name) from None
        subject = " ".join(htmllib.unescape(subject).split())
        if not subject:
            raise RenderError(f"templates/{html_name}: the subject block is empty")
        skip = context.get("unsubscribe_url")
        fix = functools.partial(fix_links, shop_url=self.shop.url, campaign=campaign, skip=skip,
                                tracker=tracker)
        fix_text = None if tracker is None else functools.partial(
            track_text_links, shop_url=self.shop.url, campaign=campaign, skip=skip,
            tracker=tracker)
        return Rendered(subject, used, html_name, text, raw, fix, self.inline, fix_text)

    @staticmethod
    def _subject(env: Environment, text: str, context: dict[str, Any], html_name: str) -> str:
        try:
            return env.from_string(text).render(context)
        except Exception as exc:
            raise RenderError(f"templates/{html_name}: the rule's subject {text!r}: "
                              f"{_what(exc)}") from None

    def _localized(self, context: dict[str, Any], language: str) -> dict[str, Any]:
        """The context with the shop's and the offer's Localized texts in the message's
        language."""
        return {**context, **{name: resolve_localized(context[name], language, self.shop.locale)
                              for name in _LOCALIZED_PARTS if isinstance(context.get(name), dict)}}


def render_failure(exc: BaseException, fallback: str) -> RenderError:
    """One message's rendering failed: `templates/FILE:LINE: what`, for any exception."""
    return exc if isinstance(exc, RenderError) else RenderError(_where(exc, fallback))


def _what(exc: BaseException) -> str:
    if isinstance(exc, TemplateError):
        return str(exc.message or exc)
    return f"{type(exc).__name__}: {exc}"


def _where(exc: BaseException, fallback: str) -> str:
    """`templates/FILE:LINE: message`. Jinja rewrites tracebacks so that a runtime error's
    frames (any exception's, not only its own) name the template file and line; syntax
    errors carry them on the exception."""
    name, line = (exc.filename, exc.lineno) if isinstance(exc, TemplateSyntaxError) else (None, None)
    tb = exc.__traceback__ if line is None else None
    while tb is not None:  # the innermost template frame is where it happened
        if tb.tb_frame.f_code.co_filename.endswith((".html", ".txt")):
            name, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
        tb = tb.tb_next
    return f"templates/{Path(str(name or fallback)).name}" + (f":{line}" if line else "") + \
        f": {_what(exc)}"


class Tracker(Protocol):
    """What a tracked message does to its links (render/tracked.py)."""

    def link(self, url: str) -> str:
        """The tracked URL that redirects to `url`."""
        ...

    def pixel(self) -> str | None:
        """The open pixel's `<img>`, if opens are tracked."""
        ...


def fix_links(html: str, shop_url: str, campaign: str, skip: str | None = None,
              tracker: Tracker | None = None) -> str:
    shop_host = urlsplit(shop_url).netloc.lower()

    def replace(match: re.Match) -> str:
        attribute, _quote, raw = match.groups()
        if skip is not None and htmllib.unescape(raw).strip() == skip:  # one per recipient:
            fixed = _fixed_link.__wrapped__(attribute, raw, shop_url, campaign, skip)  # not cached
            return fixed or match.group(0)
        fixed = _fixed_link(attribute, raw, shop_url, campaign, None)
        if tracker is not None and fixed and attribute.strip().lower() == "href" and \
                _CLICKABLE.match(html, html.rfind("<", 0, match.start())):
            url = htmllib.unescape(fixed.split('="', 1)[1][:-1])
            if urlsplit(url).netloc.lower() == shop_host:
                return f'{attribute}="{escape(tracker.link(url))}"'
        return fixed or match.group(0)

    fixed = _LINK.sub(replace, html)
    pixel = tracker.pixel() if tracker is not None else None
    if pixel is None:
        return fixed
    end = fixed.lower().rfind("</body>")
    return fixed[:end] + pixel + fixed[end:] if end >= 0 else fixed + pixel


_CLICKABLE = re.compile(r"<(a|area)\s", re.I)  # not a <link> of the head: only what is clicked
_TEXT_URL = re.compile(r"""https?://[^\s<>"'()\[\]]+""", re.I)


def track_text_links(text: str, shop_url: str, campaign: str, skip: str | None,
                     tracker: Tracker) -> str:
    """A .txt twin's links to the shop, as the HTML part's: with UTM, through the tracker."""
    shop_host = urlsplit(shop_url).netloc.lower()

    def replace(match: re.Match) -> str:
        url = match.group(0).rstrip(".,;:!?")
        if url == skip or urlsplit(url).netloc.lower() != shop_host:
            return match.group(0)
        fixed = _fixed_link(" href", htmllib.escape(url), shop_url, campaign, None)
        final = htmllib.unescape(fixed.split('="', 1)[1][:-1]) if fixed else url
        return tracker.link(final) + match.group(0)[len(url):]

    return _TEXT_URL.sub(replace, text)


@functools.lru_cache(maxsize=4096)  # a batch repeats the same few links thousands of times
def _fixed_link(attribute: str, raw: str, shop_url: str, campaign: str, skip: str | None
                ) -> str | None:
    """`attribute="URL"` made absolute, with UTM on shop links; None: leave it as it is."""
    url = htmllib.unescape(raw).strip()
    if not url or url.startswith("#") or url.lower().startswith(("mailto:", "tel:")):
        return None
    absolute = urljoin(shop_url.rstrip("/") + "/", url)
    parts = urlsplit(absolute)
    if parts.scheme.lower() not in _SAFE_SCHEMES:
        return f'{attribute}="#"'
    if attribute.strip().lower() == "href" and absolute != skip and \
            parts.netloc.lower() == urlsplit(shop_url).netloc.lower():
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        query.setdefault("utm_source", "mailflow")
        query.setdefault("utm_campaign", campaign)
        absolute = urlunsplit(parts._replace(path=parts.path or "/", query=urlencode(query)))
    return f'{attribute}="{escape(absolute)}"'


_BLOCK = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "tr",
          "blockquote", "section", "header", "footer", "address", "pre", "hr"}
_SKIP = {"head", "style", "script", "title", "template"}


@functools.cache
def _html_parser():
    from lxml import etree

    return etree.HTMLParser()


def _string(node) -> str:
    """All the text inside an element, as lxml.html's text_content() gives it."""
    return str(node.xpath("string()"))


def html_to_text(html: str) -> str:
    """The text part: paragraphs and table rows as lines, list items as `- `, links as
    `label ( URL )`, images and elements marked `data-text="skip"` dropped. lxml parses in
    C: ~10x faster than html2text here; its plain tree, not lxml.html's, which looks up a
    Python class for every element."""
    from lxml import etree

    root = etree.fromstring(html, _html_parser())
    if root is None:
        return "\n"
    out: list[str] = []

    def walk(node) -> None:
        tag = node.tag if isinstance(node.tag, str) else ""
        if not tag:  # a comment (Outlook's [if mso] tables) or a processing instruction
            if node.tail:
                out.append(node.tail)
            return
        if tag in _SKIP or node.get("data-text") == "skip":  # the preheader, the header's logo
            if node.tail:
                out.append(node.tail)
            return
        if tag in _BLOCK or tag == "li":
            out.append("\n")
        if tag == "li":
            out.append("- ")
        if tag == "br":
            out.append("\n")
        elif tag in ("td", "th"):
            out.append(" ")
        if node.text:
            out.append(node.text)
        for child in node:
            walk(child)
        if tag == "a":
            url = (node.get("href") or "").strip()
            label = " ".join(_string(node).split())
            shown = url.removeprefix("mailto:").removeprefix("tel:")
            says_itself = label in (shown, shown.split("?")[0].rstrip("/")) or (
                url.startswith("tel:") and label.replace(" ", "") == shown)
            if url and not url.startswith("#") and not says_itself:
                out.append(f" ( {url} )")
        if tag in _BLOCK:
            out.append("\n")
        if node.tail:
            out.append(node.tail)

    walk(root)
    lines = [" ".join(line.split()) for line in "".join(out).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
