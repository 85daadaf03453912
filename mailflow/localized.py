"""Texts the shop writes into its e-mails from rules.yaml: one text for every language, or
one per language code (`{fr: …, en: …}`), resolved once the message's language is known."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from mailflow.yamlfile import Reader

_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:_[A-Z]{2})?$")


def language_key(locale: str | None) -> str | None:
    """`fr-ca`, `fr_CA`, `FR` → `fr_CA`, `fr`: how a Localized value's keys are written."""
    if not locale or not locale.strip():
        return None
    language, _, region = locale.strip().replace("-", "_").partition("_")
    return f"{language.lower()}_{region.upper()}" if region else language.lower()


@dataclass(frozen=True)
class Localized:
    """A sentence the shop writes into its e-mails: one text for every language (`texts` is
    `(("", text),)`), or one per language code (`fr`, `en`, `fr_CA`)."""

    texts: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, value: str | dict[str, str] | Localized | None) -> Localized:
        if isinstance(value, Localized):
            return value
        if isinstance(value, dict):
            return cls(tuple((str(k), str(v)) for k, v in value.items()))
        return cls((("", value),)) if value else cls()

    def __bool__(self) -> bool:
        return any(text.strip() for _, text in self.texts)

    def for_locale(self, locale: str | None, shop_locale: str | None = None) -> str:
        """The text for a message in `locale`: that language (or its region's variant), else
        the shop's language, else English, else the first one written."""
        if not self.texts:
            return ""
        by_language = dict(self.texts)
        if "" in by_language:
            return by_language[""]
        for wanted in (language_key(locale), language_key(shop_locale), "en"):
            if not wanted:
                continue
            base = wanted.split("_")[0]
            for code in (wanted, base):
                if code in by_language:
                    return by_language[code]
            for code, text in self.texts:  # fr_CA for a message in fr
                if code.split("_")[0] == base:
                    return text
        return self.texts[0][1]


def resolve_localized(value: object, language: str, shop_locale: str | None) -> object:
    """`value` with every Localized in it (at any depth of dicts and lists) replaced by its
    text in `language`."""
    if isinstance(value, Localized):
        return value.for_locale(language, shop_locale)
    if isinstance(value, dict):
        return {k: resolve_localized(v, language, shop_locale) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_localized(v, language, shop_locale) for v in value]
    return value


def read_localized(reader: Reader, entry: tuple, where: str) -> Localized:
    """One text, or a mapping of language code → text; a key that is not a language code
    is an error naming its line."""
    node = entry[0]
    if not isinstance(node, yaml.MappingNode):
        return Localized.of(reader.text(entry, where))
    texts: list[tuple[str, str]] = []
    for key_node, value_node in node.value:
        code = str(key_node.value)
        if not _LANGUAGE.match(code):
            raise reader.fail(key_node, f"{where}: {code!r} is not a language code: write"
                              " one text, or one per language like fr, en or fr_CA")
        if code in dict(texts):
            raise reader.fail(key_node, f"{where}: {code!r} appears twice")
        texts.append((code, reader.text((value_node, yaml.safe_load(yaml.serialize(value_node))),
                                        f"{where}.{code}")))
    if not texts:
        raise reader.fail(node, f"{where} needs a text, or one per language like fr, en")
    return Localized(tuple(texts))
