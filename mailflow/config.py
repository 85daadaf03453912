"""rules.yaml: loading and validating every key of CONTRACT §4.

Errors name `rules.yaml:LINE` and suggest the nearest valid word. Commands that only
need the shop's timezone (import, status) run without a rules.yaml (UTC, defaults);
commands that send need one (`mailflow init` writes it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import yaml

from mailflow.clock import timezone_named
from mailflow.content import Offer, ShopContent, content_keys, read_content, read_offer
from mailflow.errors import UsageError
from mailflow.importing.api.base import PLATFORMS, ApiSettings
from mailflow.localized import Localized, read_localized
from mailflow.records import KINDS
from mailflow.rules.suggestions import ProductSettings, read_products
from mailflow.rules.triggers import CONDITIONS, TRIGGERS
from mailflow.rules.where import compile_where
from mailflow.tracking import Tracking, read_tracking
from mailflow.yamlfile import Reader, compose_yaml, nearest

CATEGORIES = ("transactional", "marketing")
SECURITY = ("starttls", "ssl", "none")
MAX_CONNECTIONS = 16  # SMTP connections one run may open at once (delivery.connections)
_NAME = re.compile(r"^[a-z0-9_-]+\Z")
_TEMPLATE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_CAP = re.compile(r"^\s*(\d+)\s+per\s+(\S+)\s*$")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\S+)\s*$")
_QUIET = re.compile(r"^\s*(\d{1,2}):(\d\d)\s*-\s*(\d{1,2}):(\d\d)\s*$")


@dataclass
class Shop:
    name: str = "My shop"
    url: str = "https://shop.example"
    address: str = ""
    timezone: str = "UTC"
    locale: str = "en"
    currency: str = "EUR"
    consent: str = "optional"
    payment_instructions: Localized = field(default_factory=Localized)
    content: ShopContent = field(default_factory=ShopContent)  # service, returns, logo…
    timezone_given: bool = False  # rules.yaml names it: naive export times are shop time

    @property
    def tz(self) -> ZoneInfo:
        return timezone_named(self.timezone)

    @property
    def import_tz(self) -> ZoneInfo | None:
        """The timezone of naive export timestamps; None when rules.yaml sets none (the
        import then reads them as UTC and says so)."""
        return self.tz if self.timezone_given else None


@dataclass
class SenderSettings:
    """`sender:`: the From of every e-mail, and its Reply-To."""

    from_: str = ""
    reply_to: str | None = None


@dataclass
class Smtp:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    username: str | None = None
    password_env: str | None = None
    timeout: timedelta = timedelta(seconds=30)


@dataclass
class Delivery:
    transport: str = "file"
    dir: str = "outbox"
    smtp: Smtp | None = None
    rate_limit: tuple[int, timedelta] | None = None
    max_data_age: timedelta | None = None
    connections: int = 1
    # at most one marketing e-mail per customer in this long, whatever the rule (0: none)
    marketing_gap: timedelta = timedelta(hours=24)


@dataclass
class UnsubscribeSettings:
    """`unsubscribe:`: the one-click link's URL, the mailto, and where its secret is."""

    url: str | None = None
    mailto: str | None = None
    secret_env: str = "MAILFLOW_SECRET"


@dataclass
class Source:
    path: str
    kind: str | None = None
    format: str | None = None
    mapping: str | None = None


@dataclass
class Rule:
    name: str
    on: str
    template: str
    line: int = 0
    after: timedelta = timedelta(0)
    category: str = "transactional"
    cap: tuple[int, timedelta] | None = None
    skip_if: tuple[str, ...] = ()
    where: str | None = None
    expire_after: timedelta = timedelta(days=2)
    quiet_hours: tuple[time, time] | None = None
    subject: Localized | None = None
    enabled: bool = True
    # `order.delivered` only: for orders the data never says arrived, count them delivered
    # this long after they shipped (None: only a real delivery fires the rule)
    assume_delivered_after: timedelta | None = None
    offer: Offer | None = None  # a discount code the e-mail carries (content.py)
    products: ProductSettings | None = None  # products bought together (rules/suggestions.py)

    @property
    def marketing(self) -> bool:
        return self.category == "marketing"


@dataclass
class Config:
    path: Path
    exists: bool
    shop: Shop = field(default_factory=Shop)
    sender: SenderSettings = field(default_factory=SenderSettings)
    delivery: Delivery = field(default_factory=Delivery)
    unsubscribe: UnsubscribeSettings = field(default_factory=UnsubscribeSettings)
    sources: list[Source] = field(default_factory=list)
    apis: list[ApiSettings] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    tracking: Tracking = field(default_factory=Tracking)
    node: yaml.Node | None = field(default=None, repr=False, compare=False)  # with its lines

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def sends_marketing(self) -> bool:
        """Some enabled rule sends marketing: consent in the exports matters."""
        return any(r.enabled and r.marketing for r in self.rules)

    @property
    def offer_pools(self) -> dict[str, int]:
        """pool -> warn_below (the highest) of the enabled rules whose offer uses a pool."""
        pools: dict[str, int] = {}
        for r in self.rules:
            if r.enabled and r.offer is not None and r.offer.pool is not None:
                pools[r.offer.pool] = max(pools.get(r.offer.pool, 0), r.offer.warn_below)
        return pools

    def rule(self, name: str) -> Rule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise UsageError(f"no rule named {name!r}" + nearest(name, [r.name for r in self.rules]))

    def require(self) -> Config:
        if not self.exists:
            raise UsageError(f"{self.path}: no such file: write one with `mailflow init`,"
                             " or point --config / $MAILFLOW_CONFIG at yours")
        return self


class _Reader(Reader):
    def localized(self, entry: tuple, where: str) -> Localized:
        """One text, or a mapping of language code → text."""
        return read_localized(self, entry, where)


def load_config(path: Path | str, *, check_templates: bool = True) -> Config:
    path = Path(path)
    if not path.exists():
        return Config(path, exists=False)
    root = compose_yaml(path, path.name)
    config = Config(path, exists=True, node=root)
    if root is None:
        return config
    r = _Reader(path)
    top = r.mapping(root, "rules.yaml", ("shop", "sender", "delivery", "unsubscribe", "sources",
                                         "rules", "tracking"))
    if "shop" in top:
        config.shop = _shop(r, top["shop"][0])
    if "sender" in top:
        s = r.mapping(top["sender"][0], "sender", ("from", "reply_to"))
        config.sender = SenderSettings(
            r.text(s["from"], "sender.from") if "from" in s else "",
            r.text(s["reply_to"], "sender.reply_to") if "reply_to" in s else None)
    if "delivery" in top:
        config.delivery = _delivery(r, top["delivery"][0])
    if "unsubscribe" in top:
        u = r.mapping(top["unsubscribe"][0], "unsubscribe", ("url", "mailto", "secret_env"))
        config.unsubscribe = UnsubscribeSettings(**{
            k: r.text(u[k], f"unsubscribe.{k}") for k in ("url", "mailto", "secret_env")
            if k in u})
    if "sources" in top:
        config.sources, config.apis = _sources(r, top["sources"][0])
    if "tracking" in top:
        config.tracking = read_tracking(r, top["tracking"])
    if "rules" in top:
        config.rules = _rules(r, top["rules"][0], config.folder if check_templates else None)
    return config


def _shop(r: _Reader, node: yaml.Node) -> Shop:
    keys = ("name", "url", "address", "timezone", "locale", "currency", "consent",
            "payment_instructions")
    found = r.mapping(node, "shop", keys + content_keys())
    values: dict[str, Any] = {k: r.localized(v, f"shop.{k}") if k == "payment_instructions"
                              else r.text(v, f"shop.{k}") for k, v in found.items() if k in keys}
    shop = Shop(**values, content=read_content(r, found))
    shop.timezone_given = "timezone" in found
    if "timezone" in found:
        try:
            shop.tz  # noqa: B018 - validate now, not at first use
        except UsageError as exc:
            raise r.fail(found["timezone"][0], f"shop.timezone: {exc}") from None
    if "consent" in found:
        r.choice(found["consent"], "shop.consent", ("optional", "required"))
    if "url" in found and not re.match(r"^https?://[^/\s]+", shop.url):
        raise r.fail(found["url"][0], f"shop.url {shop.url!r} must be an absolute http(s) URL")
    return shop


def _delivery(r: _Reader, node: yaml.Node) -> Delivery:
    d = r.mapping(node, "delivery", ("transport", "dir", "smtp", "rate_limit", "max_data_age",
                                     "connections", "marketing_gap"))
    delivery = Delivery()
    if "transport" in d:
        delivery.transport = r.choice(d["transport"], "delivery.transport", ("file", "smtp"))
    if "dir" in d:
        delivery.dir = r.text(d["dir"], "delivery.dir")
    if "rate_limit" in d:
        delivery.rate_limit = r.per(d["rate_limit"], "delivery.rate_limit", _RATE, "200/h")
    if "max_data_age" in d:
        delivery.max_data_age = r.duration(d["max_data_age"], "delivery.max_data_age")
    if "connections" in d:
        delivery.connections = r.whole(d["connections"], "delivery.connections", 1, MAX_CONNECTIONS)
    if "marketing_gap" in d:
        delivery.marketing_gap = r.duration(d["marketing_gap"], "delivery.marketing_gap")
    if "smtp" in d:
        s = r.mapping(d["smtp"][0], "delivery.smtp", ("host", "port", "security", "username",
                                                        "password_env", "timeout", "password"))
        if "password" in s:
            raise r.fail(s["password"][0], "secrets never go in rules.yaml: put the password in an"
                         " environment variable and name it with password_env")
        smtp = Smtp()
        for key in ("host", "username", "password_env"):
            if key in s:
                setattr(smtp, key, r.text(s[key], f"delivery.smtp.{key}"))
        if "port" in s:
            smtp.port = r.whole(s["port"], "delivery.smtp.port", 1, 65535)
        if "security" in s:
            smtp.security = r.choice(s["security"], "delivery.smtp.security", SECURITY)
        if "timeout" in s:
            smtp.timeout = r.duration(s["timeout"], "delivery.smtp.timeout",
                                      shortest=timedelta(seconds=1), longest=timedelta(minutes=10))
        delivery.smtp = smtp
    if delivery.transport == "smtp" and delivery.smtp is None:
        raise r.fail(d["transport"][0], "transport smtp needs a delivery.smtp section")
    return delivery


def _sources(r: _Reader, node: yaml.Node) -> tuple[list[Source], list[ApiSettings]]:
    if not isinstance(node, yaml.SequenceNode):
        raise r.fail(node, "sources should be a list of `- path: ...` or `- platform: ...`"
                     " entries")
    files: list[Source] = []
    apis: list[ApiSettings] = []
    for item in node.value:
        if isinstance(item, yaml.MappingNode) and any(k.value == "platform" for k, _ in item.value):
            api = _api(r, item)
            if api.name in {a.name for a in apis}:
                raise r.fail(item, f"two sources are named {api.name!r}: give one a `name:`")
            apis.append(api)
            continue
        s = r.mapping(item, "a source", ("path", "kind", "format", "mapping"))
        if "path" not in s:
            raise r.fail(item, "a source needs a path (an export file) or a platform (an API)")
        kind = r.choice(s["kind"], "kind", KINDS) if "kind" in s else None
        files.append(Source(r.text(s["path"], "path"), kind,
                            r.text(s["format"], "format") if "format" in s else None,
                            r.text(s["mapping"], "mapping") if "mapping" in s else None))
    return files, apis


_API_KEYS = {"shopify": ("url", "api_version"), "woocommerce": ("url",), "prestashop": ("url",)}


def _api(r: _Reader, item: yaml.Node) -> ApiSettings:
    f = r.mapping(item, "an API source", ("platform", "name", "url", "api_version", "token_env",
                                          "key_env", "secret_env", "webhook_secret_env",
                                          "backfill", "page_size"))
    platform = r.choice(f["platform"], "platform", PLATFORMS)
    for key in _API_KEYS[platform]:
        if key not in f:
            raise r.fail(item, f"a {platform} source needs {key!r} (docs/sources.md)")
    name = r.text(f["name"], "name") if "name" in f else platform
    if not _NAME.match(name):
        raise r.fail(f.get("name", f["platform"])[0],
                     f"source name {name!r}: use lower-case letters, digits, - and _")
    url = r.text(f["url"], f"source {name}: url")
    parts = urlsplit(url)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and local)):
        raise r.fail(f["url"][0], f"source {name}: url {url!r} must be https:// (plain http only"
                     " to localhost): the shop's data and credentials never travel in clear text")
    api = ApiSettings(name=name, platform=platform, url=url.rstrip("/"),
                      line=item.start_mark.line + 1)
    for key in ("api_version", "token_env", "key_env", "secret_env", "webhook_secret_env"):
        if key in f:
            setattr(api, key, r.text(f[key], f"source {name}: {key}"))
    if "backfill" in f:
        api.backfill = r.duration(f["backfill"], f"source {name}: backfill")
    if "page_size" in f:
        api.page_size = r.whole(f["page_size"], f"source {name}: page_size", 1, 250)
    return api


_RULE_KEYS = ("name", "on", "after", "template", "category", "cap", "skip_if", "where",
              "expire_after", "quiet_hours", "subject", "enabled", "assume_delivered_after",
              "offer", "products")


def _rules(r: _Reader, node: yaml.Node, folder: Path | None) -> list[Rule]:
    if not isinstance(node, yaml.SequenceNode):
        raise r.fail(node, "rules should be a list of `- name: ...` entries")
    rules: list[Rule] = []
    for item in node.value:
        rules.append(_rule(r, item, folder, {x.name for x in rules}))
    return rules


def _rule(r: _Reader, item: yaml.Node, folder: Path | None, taken: set[str]) -> Rule:
    f = r.mapping(item, "a rule", _RULE_KEYS)
    for key in ("name", "on", "template"):
        if key not in f:
            raise r.fail(item, f"a rule needs {key!r}")
    name = r.text(f["name"], "name")
    if not _NAME.match(name):
        raise r.fail(f["name"][0], f"rule name {name!r}: use lower-case letters, digits, - and _")
    if name in taken:
        raise r.fail(f["name"][0], f"two rules are named {name!r}")
    rule = Rule(name=name, on=r.choice(f["on"], f"rule {name}: trigger", tuple(TRIGGERS)),
                template=r.text(f["template"], "template"), line=item.start_mark.line + 1)
    if not _TEMPLATE.fullmatch(rule.template):
        raise r.fail(f["template"][0], f"rule {name}: template {rule.template!r}: the name of an"
                     " e-mail in templates/ (like order_confirmation), without a folder or"
                     " extension")
    on = TRIGGERS[rule.on]
    rule.skip_if = on.skip_if
    if "after" in f:
        rule.after = r.duration(f["after"], f"rule {name}: after")
    if "category" in f:
        rule.category = r.choice(f["category"], f"rule {name}: category", CATEGORIES)
    if "cap" in f:
        rule.cap = r.per(f["cap"], f"rule {name}: cap", _CAP, "1 per 24h")
    if "skip_if" in f:
        node, value = f["skip_if"]
        values = value if isinstance(value, list) else [value]
        for condition in values:
            if condition not in CONDITIONS:
                raise r.fail(node, f"rule {name}: unknown condition {condition!r}"
                             + nearest(str(condition), tuple(CONDITIONS)))
        rule.skip_if = tuple(values)
    if "where" in f:
        rule.where = r.text(f["where"], "where")
        try:
            compile_where(rule.where)
        except Exception as exc:
            raise r.fail(f["where"][0], f"rule {name}: where: {exc}") from None
    if "expire_after" in f:
        rule.expire_after = r.duration(f["expire_after"], f"rule {name}: expire_after")
    if "quiet_hours" in f:
        match = _QUIET.fullmatch(str(f["quiet_hours"][1]))
        h1, m1, h2, m2 = map(int, match.groups()) if match else (99, 0, 0, 0)
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise r.fail(f["quiet_hours"][0], f"rule {name}: quiet_hours: write it like"
                         " \"21:00-08:00\" (shop time, hours 0-23, minutes 0-59)")
        if (h1, m1) == (h2, m2):
            raise r.fail(f["quiet_hours"][0], f"rule {name}: quiet_hours starts and ends at the"
                         " same minute: a window of nothing, or of the whole day (then set"
                         " `enabled: false`)")
        rule.quiet_hours = (time(h1, m1), time(h2, m2))
    if "subject" in f:
        rule.subject = r.localized(f["subject"], f"rule {name}: subject")
    if "enabled" in f:
        if not isinstance(f["enabled"][1], bool):
            raise r.fail(f["enabled"][0], f"rule {name}: enabled is true or false")
        rule.enabled = f["enabled"][1]
    if "assume_delivered_after" in f:
        if not on.may_assume_delivery:
            allowed = ", ".join(t.name for t in TRIGGERS.values() if t.may_assume_delivery)
            raise r.fail(f["assume_delivered_after"][0], f"rule {name}: assume_delivered_after"
                         f" is for rules on {allowed}")
        rule.assume_delivered_after = r.duration(f["assume_delivered_after"],
                                                 f"rule {name}: assume_delivered_after")
    if "offer" in f:
        rule.offer = read_offer(r, f["offer"], f"rule {name}: offer")
    if "products" in f:
        rule.products = read_products(r, f["products"], f"rule {name}: products")
    if on.needs_after and not rule.after:
        raise r.fail(item, f"rule {name}: {rule.on} needs `after` (how long inactive)")
    if folder is not None and not _template_exists(folder, rule.template):
        raise r.fail(f["template"][0], f"rule {name}: no template templates/{rule.template}.html"
                     + nearest(rule.template, template_names_in(folder)))
    return rule


def template_names_in(folder: Path) -> list[str]:
    """The e-mails a project's templates/ holds (files starting with `_` are not e-mails)."""
    return sorted({p.name.split(".")[0] for p in (folder / "templates").glob("*.html")
                   if not p.name.startswith("_")})


def _template_exists(folder: Path, name: str) -> bool:
    templates = folder / "templates"
    return (templates / f"{name}.html").is_file() or any(templates.glob(f"{name}.*.html"))
