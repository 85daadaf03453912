"""`mailflow init`: a working starter project from the files shipped with the package, and
the one list of its placeholders (sample shop name, address, domain, IBAN), which `check`
flags and which stop a real SMTP send while any is left."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from mailflow.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from mailflow.config import Config

_ADDRESSES = ("shop.url", "sender.from", "sender.reply_to", "unsubscribe.url",
              "unsubscribe.mailto", "shop.logo", "shop.terms_url", "shop.service", "shop.returns",
              "shop.review")
_WRITTEN = ("shop.payment_instructions",)  # and each of its languages


@dataclass(frozen=True)
class Placeholder:
    """A value `init` writes that no real shop has: found in `fields`, it must be replaced."""

    text: str
    fields: tuple[str, ...]
    fix: str
    domain: bool = False  # match a whole domain (and its subdomains), not any substring

    @property
    def pattern(self) -> re.Pattern:
        if self.domain:  # boutique.example, www.boutique.example; not maboutique.example
            return re.compile(rf"(?<![A-Za-z0-9-]){re.escape(self.text)}"
                              r"(?![A-Za-z0-9-]|\.[A-Za-z0-9])", re.I)
        return re.compile(r"\s*".join(map(re.escape, self.text.split())))  # IBAN with or without spaces


PLACEHOLDERS = (
    Placeholder("Boutique Exemple", ("shop.name", "sender.from", *_WRITTEN),
                "write your shop's name"),
    Placeholder("boutique.example", _ADDRESSES, "use your shop's own domain", domain=True),
    Placeholder("12 rue de la Paix", ("shop.address", *_WRITTEN),
                "write your shop's postal address"),
    Placeholder("FR76 3000 6000 0112 3456 7890 189", _WRITTEN, "write your own bank's IBAN"),
    Placeholder("AGRIFRPP", _WRITTEN, "write your own bank's BIC"),
)


def starter_files() -> resources.abc.Traversable:
    return resources.files("mailflow") / "data"


PLATFORMS = ("shopify", "woocommerce", "prestashop")
_SOURCES = re.compile(r"^sources:\n(?:[ #].*\n|\n)*", re.M)


def starter_rules(platform: str | None = None) -> str:
    """The starter rules.yaml; with a platform, its `sources:` pull that platform's API."""
    text = (starter_files() / "rules.yaml").read_text(encoding="utf-8")
    if platform is None:
        return text
    if platform not in PLATFORMS:
        raise UsageError(f"--platform {platform!r}: use one of {', '.join(PLATFORMS)}")
    block = (starter_files() / "sources" / f"{platform}.yaml").read_text(encoding="utf-8")
    return _SOURCES.sub(lambda _: block + "\n", text, count=1)


def init_project(folder: Path, platform: str | None = None) -> list[Path]:
    """Write rules.yaml, templates/ and exports/ into `folder`; never overwrite a file."""
    data = starter_files()
    target = folder / "rules.yaml"
    if target.exists():
        raise UsageError(f"{target} already exists: init never overwrites a project")
    rules = starter_rules(platform)
    folder.mkdir(parents=True, exist_ok=True)
    written = [target]
    target.write_text(rules, encoding="utf-8")
    templates = folder / "templates"
    templates.mkdir(exist_ok=True)
    for item in (data / "templates").iterdir():
        destination = templates / item.name
        if item.is_file() and not destination.exists():
            destination.write_bytes(item.read_bytes())
            written.append(destination)
    exports = folder / "exports"
    exports.mkdir(exist_ok=True)
    written.append(exports)
    return written


def placeholders_left(config: Config) -> list[str]:
    """`rules.yaml:LINE: FIELD is still the starter's placeholder '…': what to write`, one
    line for each placeholder left in each field, in the order of the file."""
    if not config.exists or config.node is None:
        return []
    lines: list[str] = []
    found: list[tuple[int, int, str]] = []
    for name, node in _values(config.node):
        where = name if name.count(".") < 2 else name.rsplit(".", 1)[0]
        value = str(node.value)
        for rank, p in enumerate(PLACEHOLDERS):
            if where not in p.fields or not p.pattern.search(value):
                continue
            lines = lines or config.path.read_text(encoding="utf-8-sig").splitlines()
            line = _line_of(lines, node, p.pattern)
            verb = "is still" if value.strip() == p.text else "still has"
            found.append((line, rank, f"{config.path.name}:{line}: {name} {verb} the starter's"
                                      f" placeholder {p.text!r}: {p.fix}"))
    return [message for *_, message in sorted(found)]


class StarterPlaceholders(ConfigError):
    """A real send refused while the starter's sample values are in rules.yaml."""


def refuse_placeholders(config: Config) -> None:
    """Raise (exit 2) if `init`'s sample values are still in the config: mail that says
    "Boutique Exemple" and asks for a transfer to the sample IBAN must never reach a customer."""
    left = placeholders_left(config)
    if left:
        error = StarterPlaceholders(
            f"{config.path.name} still has {len(left)} of the starter project's placeholders:"
            " nothing is sent over SMTP until you replace them (`mailflow check` lists them)")
        error.details = tuple(left)
        raise error


def _values(root: yaml.Node):
    """(dotted name, scalar node) of the config values placeholders may hide in."""
    if not isinstance(root, yaml.MappingNode):
        return
    for key, section in root.value:
        if not isinstance(section, yaml.MappingNode):
            continue
        for field, value in section.value:
            name = f"{key.value}.{field.value}"
            if isinstance(value, yaml.ScalarNode):
                yield name, value
            elif isinstance(value, yaml.MappingNode):  # one text per language
                for language, text in value.value:
                    if isinstance(text, yaml.ScalarNode):
                        yield f"{name}.{language.value}", text


def _line_of(lines: list[str], node: yaml.Node, pattern: re.Pattern) -> int:
    """The file line where the placeholder is written (inside a block of several lines too)."""
    for number in range(node.start_mark.line, min(node.end_mark.line + 1, len(lines))):
        if pattern.search(lines[number]):
            return number + 1
    return node.start_mark.line + 1
