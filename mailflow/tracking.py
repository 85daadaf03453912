"""`tracking:` of rules.yaml: whether the e-mails' links go through `serve` (clicks), whether
they carry an open pixel (opens), and the windows an order is attributed to a message in.

Read by config.py; used by render (which rewrites the links), web (which records clicks and
opens) and the report (which attributes orders)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from mailflow.yamlfile import Reader

KEYS = ("url", "opens", "transactional", "attribution")
DEFAULT_AFTER_CLICK = timedelta(days=5)
DEFAULT_AFTER_RECEIVING = timedelta(days=1)


@dataclass(frozen=True)
class Attribution:
    """An order within `after_click` of a click is the last clicked message's; without a click,
    within `after_receiving` of a delivery it is counted apart, as "after receiving"."""

    after_click: timedelta = DEFAULT_AFTER_CLICK
    after_receiving: timedelta = DEFAULT_AFTER_RECEIVING


@dataclass(frozen=True)
class Tracking:
    """Without `url` nothing is tracked; with it marketing e-mails are, and transactional ones
    only when `transactional` is true. The open pixel only when `opens` is true."""

    url: str | None = None  # the public base URL of `mailflow serve`, without a trailing /
    opens: bool = False
    transactional: bool = False
    attribution: Attribution = field(default_factory=Attribution)
    line: int = 0  # of `tracking:` in rules.yaml
    lines: dict[str, int] = field(default_factory=dict)  # of each key given

    @property
    def enabled(self) -> bool:
        return self.url is not None

    def tracks(self, category: str) -> bool:
        """Whether a message of this category (a rule's `category:`) has its links rewritten."""
        return self.url is not None and (category == "marketing" or self.transactional)


def read_tracking(r: Reader, entry: tuple, where: str = "tracking") -> Tracking:
    """`tracking:` with `url:`, `opens:`, `transactional:` and `attribution:` (`after_click:`,
    `after_receiving:`), every error naming its line."""
    node = entry[0]
    found = r.mapping(node, where, KEYS)
    url = None
    if "url" in found:
        url = r.text(found["url"], f"{where}.url").strip().rstrip("/")
        if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", url):
            raise r.fail(found["url"][0], f"{where}.url {url!r} must be the absolute http(s) URL"
                         " `mailflow serve` answers at, without a query (like"
                         " https://boutique.example/mf)")
    flags = {}
    for key in ("opens", "transactional"):
        if key in found:
            if not isinstance(found[key][1], bool):
                raise r.fail(found[key][0], f"{where}.{key} is true or false")
            flags[key] = found[key][1]
    attribution = Attribution()
    if "attribution" in found:
        a = r.mapping(found["attribution"][0], f"{where}.attribution",
                      ("after_click", "after_receiving"))
        attribution = Attribution(
            r.duration(a["after_click"], f"{where}.attribution.after_click")
            if "after_click" in a else DEFAULT_AFTER_CLICK,
            r.duration(a["after_receiving"], f"{where}.attribution.after_receiving")
            if "after_receiving" in a else DEFAULT_AFTER_RECEIVING)
    return Tracking(url=url, attribution=attribution, line=node.start_mark.line + 1,
                    lines={k: v[0].start_mark.line + 1 for k, v in found.items()}, **flags)


def tracking_problems(tracking: Tracking, file: str) -> list[str]:
    """What `check` says of `tracking:`: keys that do nothing, and clicks sent in clear text."""
    problems = []
    if tracking.url is None:
        for key in ("opens", "transactional"):
            if getattr(tracking, key):
                problems.append(f"{file}:{tracking.lines[key]}: tracking.{key} does nothing"
                                " without tracking.url (the public address of `mailflow serve`)")
    elif tracking.url.startswith("http://") and not re.match(
            r"^http://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?(/|$)", tracking.url):
        problems.append(f"{file}:{tracking.lines['url']}: tracking.url is plain http: every"
                        " click would cross the network in clear text, use https://")
    return problems
