"""What the e-mails carry besides the order, as rules.yaml says it: a rule's offer (a fixed
code, or single-use codes from a pool), and the shop's service and legal content.

Read by config.py (which validates rules.yaml), used by the rules (which assign pool codes)
and by render (which shows them)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import quote

import yaml

from mailflow.localized import Localized, read_localized
from mailflow.yamlfile import Reader

_POOL = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
DEFAULT_WARN_BELOW = 1  # a pool that ran out makes every run exit 1 until codes are imported


@dataclass(frozen=True)
class Offer:
    """A rule's `offer:`: the code every recipient gets (`code`), or one single-use code per
    recipient from the pool of that name (`pool`, imported with `mailflow codes import`)."""

    code: str | None = None
    pool: str | None = None
    text: Localized = field(default_factory=Localized)
    expires_after: timedelta | None = None
    warn_below: int = DEFAULT_WARN_BELOW  # pool only: fewer codes left makes `run` exit 1
    line: int = 0


def read_offer(r: Reader, entry: tuple, where: str) -> Offer:
    """`offer:` of a rule: `code:` or `pool:`, with `text:` (one, or one per language),
    `expires_after:` and, for a pool, `warn_below:`."""
    node = entry[0]
    found = r.mapping(node, where, ("code", "pool", "text", "expires_after", "warn_below"))
    if ("code" in found) == ("pool" in found):
        raise r.fail(node, f"{where} needs either `code:` (one code for everyone) or `pool:`"
                     " (single-use codes: `mailflow codes import FILE --pool NAME`)")
    code = r.text(found["code"], f"{where}.code").strip() if "code" in found else None
    pool = r.text(found["pool"], f"{where}.pool").strip() if "pool" in found else None
    if code is not None and (not code or any(c.isspace() for c in code)):
        raise r.fail(found["code"][0], f"{where}.code {code!r}: a code has no spaces")
    if pool is not None and not _POOL.match(pool):
        raise r.fail(found["pool"][0], f"{where}.pool {pool!r}: use lower-case letters, digits,"
                     " - and _")
    if "warn_below" in found and pool is None:
        raise r.fail(found["warn_below"][0], f"{where}.warn_below is for a pool of codes")
    return Offer(
        code=code, pool=pool,
        text=read_localized(r, found["text"], f"{where}.text") if "text" in found else Localized(),
        expires_after=r.duration(found["expires_after"], f"{where}.expires_after")
        if "expires_after" in found else None,
        warn_below=r.whole(found["warn_below"], f"{where}.warn_below", 0, 1_000_000)
        if "warn_below" in found else DEFAULT_WARN_BELOW,
        line=node.start_mark.line + 1)


# -- the shop's service and legal content (`shop:` in rules.yaml) ---------------------------

_CONTENT_KEYS = ("logo", "service", "returns", "terms_url", "delivery_times", "social", "review")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HTTP = re.compile(r"^https?://[^/\s]+\S*$", re.I)
DEFAULT_WITHDRAWAL_DAYS = 14  # France: Code de la consommation, article L221-18


@dataclass(frozen=True)
class ShopContent:
    """What every e-mail may show beside the order, each block only when rules.yaml gives it:
    the logo, the customer service, returns and the right of withdrawal, the terms of sale, the
    estimated delivery per shipping method, the social pages."""

    logo: str | None = None
    service: dict[str, str | Localized] | None = None  # email, phone, hours
    returns: dict[str, str | int | Localized] | None = None  # url, days, text
    terms_url: str | None = None
    delivery_times: dict[str, Localized] = field(default_factory=dict)  # by method, lower case
    social: dict[str, str] = field(default_factory=dict)  # label → URL, in the order written
    review: ReviewLinks | None = None

    def view(self) -> dict[str, object]:
        """As templates see it under `shop.`: Localized texts stay (the renderer resolves them
        in the message's language)."""
        return {"logo": self.logo, "service": self.service, "returns": self.returns,
                "terms_url": self.terms_url, "delivery_times": dict(self.delivery_times),
                "social": dict(self.social)}


# The placeholders a review link may hold, and where (docs/rules.md, "Review links").
REVIEW_PLACEHOLDERS = {"url": ("order.number",),
                       "product": ("order.number", "line.sku", "line.product_url")}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class ReviewLinks:
    """`shop.review:`: where the review request leads. `url`: the shop's review page; `product`:
    one per product. Both are URL templates (`{order.number}`, `{line.sku}`,
    `{line.product_url}`)."""

    url: str | None = None
    product: str | None = None


def fill_link(template: str, values: dict[str, str | None]) -> str | None:
    """The URL a review template gives for these values, each percent-encoded; a
    placeholder that opens the template (`{line.product_url}#reviews`) is a URL of its own
    and goes in as it is, if it is http(s). None when a value it needs is missing."""
    out: list[str] = []
    at = 0
    for match in _PLACEHOLDER.finditer(template):
        value = values.get(match.group(1))
        if not value:
            return None
        if match.start() == 0:
            if not _HTTP.match(value):
                return None
            out.append(value)
        else:
            out.append(template[at:match.start()])
            out.append(quote(value, safe=""))
        at = match.end()
    out.append(template[at:])
    return "".join(out)


def _review(r: Reader, entry: tuple) -> ReviewLinks:
    found = r.mapping(entry[0], "shop.review", ("url", "product"))
    links: dict[str, str] = {}
    for key, allowed in REVIEW_PLACEHOLDERS.items():
        if key not in found:
            continue
        where = f"shop.review.{key}"
        template = r.text(found[key], where).strip()
        for name in _PLACEHOLDER.findall(template):
            if name not in allowed:
                raise r.fail(found[key][0], f"{where}: unknown placeholder {{{name}}}: use "
                             + ", ".join(f"{{{a}}}" for a in allowed))
        sample = fill_link(template, {"order.number": "1042", "line.sku": "MUG-B",
                                      "line.product_url": "https://shop.example/p/mug"})
        if sample is None or not _HTTP.match(sample):
            raise r.fail(found[key][0], f"{where} {template!r} must give an absolute http(s)"
                         " URL (https://…, or {line.product_url} first)")
        links[key] = template
    if not links:
        raise r.fail(entry[0], "shop.review needs a url (the shop's review page) or a product"
                     " link")
    return ReviewLinks(**links)


def content_keys() -> tuple[str, ...]:
    return _CONTENT_KEYS


def _url(r: Reader, entry: tuple, where: str) -> str:
    value = r.text(entry, where).strip()
    if not _HTTP.match(value):
        raise r.fail(entry[0], f"{where} {value!r} must be an absolute http(s) URL"
                     " (https://…)")
    return value


def read_content(r: Reader, found: dict[str, tuple]) -> ShopContent:
    """The content keys of `shop:` (the others are config.py's)."""
    values: dict[str, object] = {}
    if "logo" in found:
        values["logo"] = _url(r, found["logo"], "shop.logo")
    if "terms_url" in found:
        values["terms_url"] = _url(r, found["terms_url"], "shop.terms_url")
    if "service" in found:
        values["service"] = _service(r, found["service"])
    if "returns" in found:
        values["returns"] = _returns(r, found["returns"])
    if "delivery_times" in found:
        times = _named(r, found["delivery_times"], "shop.delivery_times")
        values["delivery_times"] = {
            name.strip().lower(): read_localized(r, entry, f"shop.delivery_times.{name}")
            for name, entry in times.items()}
    if "review" in found:
        values["review"] = _review(r, found["review"])
    if "social" in found:
        values["social"] = {label: _url(r, entry, f"shop.social.{label}") for label, entry
                            in _named(r, found["social"], "shop.social").items()}
    return ShopContent(**values)  # type: ignore[arg-type]


def _named(r: Reader, entry: tuple, where: str) -> dict[str, tuple]:
    """A mapping whose keys the shop chooses (shipping methods, social networks)."""
    node = entry[0]
    names = tuple(str(k.value) for k, _ in node.value) if isinstance(node, yaml.MappingNode) else ()
    return r.mapping(node, where, names)


def _service(r: Reader, entry: tuple) -> dict[str, str | Localized]:
    found = r.mapping(entry[0], "shop.service", ("email", "phone", "hours"))
    if not found:
        raise r.fail(entry[0], "shop.service needs an email, a phone or hours")
    service: dict[str, str | Localized] = {"email": "", "phone": "", "hours": Localized()}
    if "email" in found:
        email = r.text(found["email"], "shop.service.email").strip()
        if not _EMAIL.match(email):
            raise r.fail(found["email"][0], f"shop.service.email {email!r} is not an e-mail"
                         " address")
        service["email"] = email
    if "phone" in found:
        service["phone"] = r.text(found["phone"], "shop.service.phone").strip()
    if "hours" in found:
        service["hours"] = read_localized(r, found["hours"], "shop.service.hours")
    return service


def _returns(r: Reader, entry: tuple) -> dict[str, str | int | Localized]:
    found = r.mapping(entry[0], "shop.returns", ("url", "days", "text"))
    return {
        "url": _url(r, found["url"], "shop.returns.url") if "url" in found else "",
        "days": r.whole(found["days"], "shop.returns.days", 14, 365)
        if "days" in found else DEFAULT_WITHDRAWAL_DAYS,
        "text": read_localized(r, found["text"], "shop.returns.text")
        if "text" in found else Localized(),
    }
