"""Rendering a rule's template for one message: subject, HTML and text.

Jinja2 with autoescape for HTML and StrictUndefined (a missing value is an error, never
a blank). The locale variant `NAME.LOCALE.html` wins for the customer's locale, then
the shop's, then the plain `NAME.html`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError, select_autoescape

from mailflow.errors import RenderError

__all__ = ["RenderError", "Rendered", "Renderer", "html_to_text"]


@dataclass
class Rendered:
    subject: str
    html: str
    text: str
    locale: str


class Renderer:
    def __init__(self, folder: Path, shop_locale: str) -> None:
        self.folder = folder
        self.shop_locale = shop_locale
        self.env = Environment(loader=FileSystemLoader(str(folder)),
                               autoescape=select_autoescape(["html"]), undefined=StrictUndefined)
        self._names: dict[tuple[str, str | None, str], str | None] = {}

    def template_name(self, name: str, locale: str | None, ext: str = "html") -> str | None:
        key = (name, locale, ext)
        if key not in self._names:
            self._names[key] = next(
                (file for candidate in (locale, self.shop_locale, None)
                 if (self.folder / (file := f"{name}.{candidate}.{ext}" if candidate
                                    else f"{name}.{ext}")).is_file()), None)
        return self._names[key]

    def render(self, name: str, locale: str | None, context: dict[str, Any],
               subject_override: str | None = None) -> Rendered:
        html_name = self.template_name(name, locale)
        if html_name is None:
            raise RenderError(f"templates/{name}.html: no such template")
        try:
            template = self.env.get_template(html_name)
            html = template.render(context)
            if subject_override:
                subject = self.env.from_string(subject_override).render(context)
            elif "subject" in template.blocks:
                subject = "".join(template.blocks["subject"](template.new_context(context)))
            else:
                raise RenderError(f"templates/{html_name}: no {{% block subject %}}")
            text_name = self.template_name(name, locale, "txt")
            text = (self.env.get_template(text_name).render(context) if text_name
                    else html_to_text(html))
        except TemplateError as exc:
            line = getattr(exc, "lineno", None)
            where = f"templates/{html_name}" + (f":{line}" if line else "")
            raise RenderError(f"{where}: {exc.message if hasattr(exc, 'message') else exc}") from None
        used = html_name.split(".")
        return Rendered(" ".join(unescape(subject).split()), html, text,
                        used[1] if len(used) == 3 else self.shop_locale)


_BLOCKS = re.compile(r"<(br|/p|/div|/tr|/h\d|/li|/table)[^>]*>", re.I)
_TAGS = re.compile(r"<[^>]+>")
_HEAD = re.compile(r"<(head|style|title)[^>]*>.*?</\1>", re.I | re.S)


def html_to_text(html: str) -> str:
    text = _TAGS.sub("", _BLOCKS.sub("\n", _HEAD.sub("", html)))
    lines = [" ".join(unescape(line).split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line) + "\n"
